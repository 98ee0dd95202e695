// Which URLs a webhook may have: one every delivery could be POSTed to. The spec's pattern
// lets through what fetch then refuses on every attempt (no host, a port out of range or one
// fetch blocks, credentials in the URL), which would be retried for 24 hours and show the
// credentials in its deliveries; and, under `deny`, a host that is a private address or
// this machine.
import { type PrivateAddresses, privateHostOf } from './private-addresses.js';

/**
 * Ports fetch refuses to connect to, whatever answers there (the Fetch standard's "bad
 * ports": SMTP, IRC, X11 and the like), and port 0.
 */
const FETCH_BAD_PORTS = new Set([
  0, 1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123,
  135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995,
  1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

/** Why no delivery could reach `url`, one the spec's pattern let through (http or https), as a phrase following the field name; undefined when one can. */
export function undeliverableReason(url: string, privateAddresses: PrivateAddresses): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a valid URL';
  }
  // `http:///path` parses with host "path": as written, it names none. (An http(s) URL
  // with an empty host does not parse at all.)
  if (/^https?:\/\/\//i.test(url)) return 'has no host';
  if (parsed.port !== '' && FETCH_BAD_PORTS.has(Number(parsed.port))) return `port ${parsed.port} is one fetch never connects to (the Fetch standard's bad ports)`;
  if (parsed.username !== '' || parsed.password !== '') return 'must not carry credentials (user:password@); authenticate the deliveries by their signature';
  const privateHost = privateAddresses === 'deny' ? privateHostOf(parsed) : undefined;
  if (privateHost) return `host ${privateHost}: this server delivers to public addresses only (WEBHOOK_PRIVATE_ADDRESSES=deny)`;
  return undefined;
}
