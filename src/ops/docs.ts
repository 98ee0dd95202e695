// GET /docs: the interactive reference (Scalar), its script served by this server and
// the spec read from /openapi.json, so the page works with no network at all.
import Fastify, { type FastifyInstance, type RouteHandlerMethod } from 'fastify';
import type { ApiReferenceConfiguration } from '@scalar/fastify-api-reference';

const DOCS_PATH = '/docs';

/** Everything from this server: no web fonts, no request proxy, no hosted services. */
const configuration: Partial<ApiReferenceConfiguration> = {
  url: '/openapi.json',
  pageTitle: 'Sessions API reference',
  // "Test Request" sends to the server that serves the page, whatever its port.
  servers: [{ url: '/', description: 'This server' }],
  withDefaultFonts: false,
  proxyUrl: '',
  telemetry: false,
  hideClientButton: true,
  showDeveloperTools: 'never',
  agent: { disabled: true },
  mcp: { disabled: true },
};

/**
 * Scalar's plugin holds its 5 MB script in memory from the moment it is imported (about
 * 28 MB of RSS), so it is loaded on the first request for the docs, into an instance of
 * its own that the docs routes relay to.
 */
/**
 * Resolved at start: Node keeps a package.json it could not read as missing (X19: no file
 * descriptor was left at the first request for the docs, and every later one failed).
 */
const SCALAR_URL = import.meta.resolve('@scalar/fastify-api-reference');

async function loadReference(attempt: number): Promise<FastifyInstance> {
  // Node also keeps a failed import() of a URL for good: another attempt, another URL.
  const url = attempt === 0 ? SCALAR_URL : `${SCALAR_URL}?attempt=${attempt}`;
  const { default: scalar } = (await import(url)) as typeof import('@scalar/fastify-api-reference');
  const reference = Fastify({ logger: false });
  await reference.register(scalar, { routePrefix: DOCS_PATH, configuration });
  await reference.ready();
  return reference;
}

export async function registerDocs(app: FastifyInstance): Promise<void> {
  let reference: Promise<FastifyInstance> | undefined;
  let failed = 0;
  const relay: RouteHandlerMethod = async (request, reply) => {
    // One that failed is loaded again by the next request.
    reference ??= loadReference(failed).catch((error: unknown) => {
      reference = undefined;
      failed += 1;
      throw error;
    });
    const answer = await (await reference).inject({ method: 'GET', url: request.routeOptions.url! });
    return reply.code(answer.statusCode).type(String(answer.headers['content-type'])).send(answer.rawPayload);
  };
  app.get(DOCS_PATH, (_request, reply) => reply.redirect(`${DOCS_PATH}/`, 301));
  app.get(`${DOCS_PATH}/`, relay);
  app.get(`${DOCS_PATH}/js/scalar.js`, relay);
  app.addHook('onClose', async () => {
    if (reference) await (await reference).close();
  });
}
