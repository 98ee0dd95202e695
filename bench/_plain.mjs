import Fastify from 'fastify';
const app = Fastify(); app.get('/', async () => ({a:1})); await app.listen({port: 3556});
