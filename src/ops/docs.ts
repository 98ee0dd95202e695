// GET /docs: the interactive reference (Scalar), its script served by this server and
// the spec read from /openapi.json, so the page works with no network at all.
import { Worker } from 'node:worker_threads';
import type { FastifyInstance, RouteHandlerMethod } from 'fastify';
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

/** The docs' pages, as Scalar's plugin answers them (the same for every request). */
interface DocsPage {
  statusCode: number;
  contentType: string;
  body: Uint8Array;
}

const PAGE_URLS = [`${DOCS_PATH}/`, `${DOCS_PATH}/js/scalar.js`];

/**
 * Scalar's plugin holds its 5 MB script from the moment it is imported (about 28 MB of
 * RSS); and Node keeps a module it failed to load, or a package.json it could not read, for
 * the process's life (X19, R50: no file descriptor was left at the first request for the
 * docs, and /docs failed until a restart; each new attempt in the process kept another copy
 * of the script). So a worker of its own, with its own modules, imports it and answers the
 * two pages, kept here (the script: 5 MB), and exits; one that fails leaves nothing behind,
 * and the next request starts another.
 */
const DOCS_WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
(async () => {
  const { default: Fastify } = await import(workerData.fastifyUrl);
  const { default: scalar } = await import(workerData.scalarUrl);
  const reference = Fastify({ logger: false });
  await reference.register(scalar, { routePrefix: workerData.prefix, configuration: workerData.configuration });
  await reference.ready();
  const pages = {};
  for (const url of workerData.urls) {
    const answer = await reference.inject({ method: 'GET', url });
    pages[url] = { statusCode: answer.statusCode, contentType: String(answer.headers['content-type']), body: answer.rawPayload };
  }
  await reference.close();
  parentPort.postMessage(pages);
})();
`;

/** Resolved at start, while descriptors are there to read the package.json files. */
const WORKER_DATA = {
  fastifyUrl: import.meta.resolve('fastify'),
  scalarUrl: import.meta.resolve('@scalar/fastify-api-reference'),
  prefix: DOCS_PATH,
  configuration,
  urls: PAGE_URLS,
};

/** The docs' pages, made in a worker; rejects when it fails (an EMFILE, say) or exits without them. */
export function loadDocsPages(): Promise<Map<string, DocsPage>> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(DOCS_WORKER_SOURCE, { eval: true, workerData: WORKER_DATA });
    worker.unref(); // a request waiting for it keeps the process up; a closing app does not wait
    worker.once('message', (pages: Record<string, DocsPage>) => resolve(new Map(Object.entries(pages))));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the docs worker exited (${code}) before making the pages`)));
  });
}

export async function registerDocs(app: FastifyInstance): Promise<void> {
  let pages: Promise<Map<string, DocsPage>> | undefined;
  const relay: RouteHandlerMethod = async (request, reply) => {
    // One that failed is made again by the next request.
    pages ??= loadDocsPages().catch((error: unknown) => {
      pages = undefined;
      throw error;
    });
    const page = (await pages).get(request.routeOptions.url!)!;
    return reply.code(page.statusCode).type(page.contentType).send(Buffer.from(page.body.buffer, page.body.byteOffset, page.body.byteLength));
  };
  app.get(DOCS_PATH, (_request, reply) => reply.redirect(`${DOCS_PATH}/`, 301));
  for (const url of PAGE_URLS) app.get(url, relay);
}
