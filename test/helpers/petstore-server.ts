// A small Petstore for test/fixtures/petstore.yaml, written by hand (no spec tooling),
// to run the conformance suite against an API that is not ours. `fault` breaks it on purpose.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export type PetstoreFault =
  | 'long-name-crashes'
  | 'health-as-html'
  | 'extra-field'
  | 'lets-anyone-list'
  | 'dies-after-30-requests'
  | 'refuses-creates'
  | 'no-location'
  | 'count-in-words'
  | 'malformed-id-as-unknown'
  | 'string-ids'
  | 'list-unavailable';

interface Pet {
  id: number;
  name: string;
  tag?: string | null;
}

const MAX_BODY = 1_000_000;

function validatePet(body: unknown): string | undefined {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return 'body must be an object';
  const record = body as Record<string, unknown>;
  for (const key of Object.keys(record)) if (key !== 'name' && key !== 'tag') return `${key} is not allowed`;
  if (!('name' in record)) return 'name is required';
  if (typeof record.name !== 'string') return 'name must be a string';
  if (record.name.length < 1 || record.name.length > 50) return 'name must have 1 to 50 characters';
  if ('tag' in record && record.tag !== null && (typeof record.tag !== 'string' || record.tag.length > 20)) return 'tag must be a string of at most 20 characters, or null';
  return undefined;
}

/** With `apiKey`, every route but /health wants it in X-API-KEY (401 without). */
export async function startPetstore(fault?: PetstoreFault, apiKey?: string) {
  const pets = new Map<number, Pet>();
  let nextId = 1;
  let requests = 0;
  let unanswered = 0;
  const server = createServer((request, response) => {
    requests += 1;
    if (fault === 'dies-after-30-requests' && requests > 30) {
      // Hangs up on every request from then on, counting them.
      unanswered += 1;
      request.socket.destroy();
      return;
    }
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      response.writeHead(status, { 'content-type': 'application/json', ...headers });
      response.end(JSON.stringify(body));
    };
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://petstore');
      const method = request.method ?? 'GET';
      if (size > MAX_BODY) return json(413, { code: 413, message: 'body too large' });
      const open = url.pathname === '/health' || (fault === 'lets-anyone-list' && url.pathname === '/pets' && method === 'GET');
      if (apiKey && !open && request.headers['x-api-key'] !== apiKey) return json(401, { code: 401, message: 'an API key is required' });
      if (url.pathname === '/health' && method === 'GET') {
        response.writeHead(200, { 'content-type': fault === 'health-as-html' ? 'text/html' : 'text/plain; charset=utf-8' });
        return response.end('ok');
      }
      if (url.pathname === '/pets' && method === 'GET') {
        if (fault === 'list-unavailable') return json(503, { code: 503, message: 'the list is down' });
        const limit = url.searchParams.get('limit');
        if (limit !== null && !(/^\d+$/.test(limit) && Number(limit) >= 1 && Number(limit) <= 100)) return json(400, { code: 400, message: 'limit must be an integer from 1 to 100' });
        const total = fault === 'count-in-words' ? 'many' : String(pets.size);
        return json(200, [...pets.values()].slice(0, limit === null ? 100 : Number(limit)), { 'x-total-count': total });
      }
      if (url.pathname === '/pets' && method === 'POST') {
        if (!/^application\/json\b/.test(request.headers['content-type'] ?? '')) return json(415, { code: 415, message: 'body must be application/json' });
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return json(400, { code: 400, message: 'body is not valid JSON' });
        }
        const record = body as Record<string, unknown> | null;
        if (fault === 'long-name-crashes' && typeof record?.name === 'string' && record.name.length > 50) return json(500, { code: 500, message: 'internal error' });
        const problem = fault === 'refuses-creates' ? 'creates are refused today' : validatePet(body);
        if (problem) return json(400, { code: 400, message: problem });
        const pet: Pet = { id: nextId++, name: record!.name as string, ...('tag' in record! ? { tag: record!.tag as string | null } : {}) };
        pets.set(pet.id, pet);
        const location: Record<string, string> = fault === 'no-location' ? {} : { location: `/pets/${pet.id}` };
        const answered = fault === 'extra-field' ? { ...pet, owner: 'nobody' } : fault === 'string-ids' ? { ...pet, id: `pet-${pet.id}` } : pet;
        return json(201, answered, location);
      }
      const match = /^\/pets\/([^/]*)$/.exec(url.pathname);
      if (match && (method === 'GET' || method === 'DELETE')) {
        const id = decodeURIComponent(match[1]!);
        if (!/^[1-9]\d{0,15}$/.test(id)) {
          return fault === 'malformed-id-as-unknown' ? json(404, { code: 404, message: 'no such pet' }) : json(400, { code: 400, message: 'petId must be an integer >= 1' });
        }
        const pet = pets.get(Number(id));
        if (!pet) return json(404, { code: 404, message: 'no such pet' });
        if (method === 'GET') return json(200, pet);
        pets.delete(pet.id);
        response.writeHead(204);
        return response.end();
      }
      return json(404, { code: 404, message: 'no such route' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    pets,
    unanswered: () => unanswered,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
