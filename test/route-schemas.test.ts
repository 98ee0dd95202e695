// Route schemas are compiled on first use when the spec is its checked JSON copy; npm run
// generate writes that copy only once every route's schemas compile, and a server started
// from a YAML edited since compiles them all at start. A schema its compiler refuses thus
// stops generate or the start, never answers 500 on its route (R43).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildApp } from '../src/app.js';
import { compileSpecRouteSchemas } from '../src/http/route-schemas.js';
import * as spec from '../src/spec.js';
import { openSqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { createSweeper } from '../src/sweeper.js';
import { fakeClock } from './helpers/fake-clock.js';

afterEach(() => vi.restoreAllMocks());

/** The spec with one schema its compiler refuses: a typo'd keyword in a request body, or a type no JSON has in an answer. */
function specWith(fault: 'request' | 'response') {
  const document = spec.apiSpecification() as { components: { schemas: Record<string, any> } };
  if (fault === 'request') document.components.schemas.CreateWebhookRequest.properties.url.minimumm = 1;
  else document.components.schemas.Webhook.properties.url = { type: 'text' };
  return document;
}

async function start(fromJsonCopy: boolean) {
  vi.spyOn(spec, 'specReadFromJsonCopy').mockReturnValue(fromJsonCopy);
  const clock = fakeClock();
  const store = openSqliteStore(':memory:');
  const app = buildApp({ store, clock, sessionDefaults: {}, retentionMs: 0, sweeper: createSweeper({ store, clock, retentionMs: 0, intervalMs: 1000, batchSize: 1 }) });
  try {
    await app.ready();
    return 'started';
  } catch (error) {
    return String(error);
  } finally {
    await app.close();
  }
}

describe('a schema its compiler refuses', () => {
  it('fails npm run generate, naming why; the spec as it is passes', async () => {
    await compileSpecRouteSchemas();
    const [request, response] = [specWith('request'), specWith('response')];
    vi.spyOn(spec, 'apiSpecification').mockReturnValue(request);
    await expect(compileSpecRouteSchemas()).rejects.toThrow(/a schema of the spec does not compile: .*minimumm/);
    vi.spyOn(spec, 'apiSpecification').mockReturnValue(response);
    await expect(compileSpecRouteSchemas()).rejects.toThrow(/a schema of the spec does not compile: .*url\/type must be equal to one of the allowed values/);
  });

  it.each(['request', 'response'] as const)('in a %s, stops a server whose spec was read from the YAML (edited since its JSON copy), at start', async (fault) => {
    vi.spyOn(spec, 'apiSpecification').mockReturnValue(specWith(fault));
    expect(await start(false)).toMatch(/a schema of the spec does not compile/);
  });

  it('is not looked for at start when the spec is its JSON copy (generate compiled it): the start compiles no schema', async () => {
    vi.spyOn(spec, 'apiSpecification').mockReturnValue(specWith('request'));
    expect(await start(true)).toBe('started');
    expect(await start(false)).toMatch(/minimumm/);
  });
});
