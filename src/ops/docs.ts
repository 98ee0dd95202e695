// GET /docs: the interactive reference (Scalar), its script served by this server and
// the spec read from /openapi.json, so the page works with no network at all.
import type { FastifyInstance } from 'fastify';
import scalar, { type ApiReferenceConfiguration } from '@scalar/fastify-api-reference';

export const DOCS_PATH = '/docs';

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

export async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(scalar, { routePrefix: DOCS_PATH, logLevel: 'warn', configuration });
}
