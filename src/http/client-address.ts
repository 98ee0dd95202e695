// Who sent a request: the one address rate limits count and the request log shows.
import { isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';

/** `::ffff:192.0.2.1` is 192.0.2.1: one client, however a proxy (or a dual-stack socket) writes it. */
const unmapped = (address: string) => /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)?.[1] ?? address;

/**
 * The address a request comes from: the client X-Forwarded-For names behind a trusted
 * proxy (TRUST_PROXY), an `ip:port` there read as its ip; an entry that is no address
 * (`unknown`, say) counts as the connection's own peer, the proxy: a client cannot get a
 * budget of its own by writing one, nor a new one per connection by its port.
 */
export function clientAddress(request: FastifyRequest): string {
  const { ip } = request;
  if (isIP(ip)) return unmapped(ip);
  const withPort = /^(?:\[([0-9A-Fa-f:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):\d{1,5}$/.exec(ip);
  const address = withPort?.[1] ?? withPort?.[2];
  if (address !== undefined && isIP(address)) return unmapped(address);
  return unmapped(request.socket.remoteAddress ?? ip);
}

/**
 * The request in the log (Fastify's fields) with the client's address as counted. One that
 * came through a trusted proxy (it named an X-Forwarded-For entry, even one counted as the
 * proxy itself) shows the proxy as `proxyAddress`: the connection's port is the proxy's.
 */
export function requestForLog(request: FastifyRequest) {
  // Fastify's `ips`: the peer, then the entries it trusted the peer to name (TRUST_PROXY only).
  const forwarded = (request.ips?.length ?? 0) > 1;
  return {
    method: request.method,
    url: request.url,
    host: request.host,
    remoteAddress: clientAddress(request),
    ...(forwarded ? { proxyAddress: request.socket.remoteAddress } : { remotePort: request.socket.remotePort }),
  };
}
