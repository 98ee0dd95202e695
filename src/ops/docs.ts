// GET /docs: the interactive reference (Scalar), its script served by this server and
// the spec read from /openapi.json, so the page works with no network at all.
import type { FastifyInstance } from 'fastify';
import scalar from '@scalar/fastify-api-reference';

export const DOCS_PATH = '/docs';

export async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(scalar, {
    routePrefix: DOCS_PATH,
    logLevel: 'warn',
    configuration: {
      url: '/openapi.json',
      // Everything from this server: no web fonts, no request proxy, no hosted client.
      withDefaultFonts: false,
      proxyUrl: '',
      hideClientButton: true,
      telemetry: false,
    } as never,
  });
}
