// Who sent a request, as rate limits count it and the request log shows it: behind a
// trusted proxy the X-Forwarded-For entry (its ip when written ip:port), else the peer.
import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import { clientAddress } from '../src/http/client-address.js';

const PROXY = '10.0.0.9';
/** A request as Fastify hands it over: `ip` is what X-Forwarded-For names through a trusted proxy. */
const through = (ip: string) => ({ ip, socket: { remoteAddress: PROXY } }) as unknown as FastifyRequest;

describe('clientAddress', () => {
  it.each([
    ['203.0.113.5', '203.0.113.5'],
    ['2001:db8::1', '2001:db8::1'],
    ['203.0.113.5:54321', '203.0.113.5'],
    ['203.0.113.5:1', '203.0.113.5'],
    ['[2001:db8::1]:443', '2001:db8::1'],
    ['::ffff:203.0.113.5', '203.0.113.5'],
    ['[::ffff:203.0.113.5]:443', '203.0.113.5'],
    ['::FFFF:203.0.113.5', '203.0.113.5'], // as a proxy may write it: the same client
  ])('takes %s as the client %s', (forwarded, client) => {
    expect(clientAddress(through(forwarded))).toBe(client);
  });

  // Else a client could get a budget of its own by writing any such entry.
  it.each(['unknown', '999.1.1.1:80', '[zz::1]:1', '203.0.113.5:80junk', '203.0.113.5:123456', '203.0.113.5:', ':80', '_hidden'])(
    'takes %s, which names no address, as the proxy',
    (forwarded) => {
      expect(clientAddress(through(forwarded))).toBe(PROXY);
    },
  );

  it('takes a proxy on a dual-stack socket (::ffff:10.0.0.9) as 10.0.0.9 when its entry names no address', () => {
    const request = { ip: 'unknown', socket: { remoteAddress: `::ffff:${PROXY}` } } as unknown as FastifyRequest;
    expect(clientAddress(request)).toBe(PROXY);
  });
});
