// Who sent a request: the one address rate limits count and the request log shows.
import { isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';

/**
 * The address a request comes from: the client X-Forwarded-For names behind a trusted
 * proxy (TRUST_PROXY), an `ip:port` there read as its ip; an entry that is no address
 * (`unknown`, say) counts as the connection's own peer, the proxy: a client cannot get a
 * budget of its own by writing one, nor a new one per connection by its port.
 */
export function clientAddress(request: FastifyRequest): string {
  const { ip } = request;
  if (isIP(ip)) return ip;
  const withPort = /^(?:\[([0-9A-Fa-f:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):\d{1,5}$/.exec(ip);
  const address = withPort?.[1] ?? withPort?.[2];
  if (address !== undefined && isIP(address)) return address;
  return request.socket.remoteAddress ?? ip;
}

/**
 * The request in the log (Fastify's fields) with the client's address as counted; behind a
 * proxy the connection's address and port are the proxy's, shown as `proxyAddress`.
 */
export function requestForLog(request: FastifyRequest) {
  const client = clientAddress(request);
  const peer = request.socket.remoteAddress;
  return {
    method: request.method,
    url: request.url,
    host: request.host,
    remoteAddress: client,
    ...(client === peer ? { remotePort: request.socket.remotePort } : { proxyAddress: peer }),
  };
}
