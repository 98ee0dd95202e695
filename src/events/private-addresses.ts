// WEBHOOK_PRIVATE_ADDRESSES=deny: webhooks reach only public addresses. A URL naming a
// private, loopback, link-local or otherwise special address is refused when the webhook
// is made; a host name is checked each time it is resolved, at the connection itself, so
// that a name resolving to a public address when checked and to a private one when
// connecting (DNS rebinding) still cannot reach inside.
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';

export type PrivateAddresses = 'allow' | 'deny';

const SPECIAL_RANGES: Array<[string, number, 'ipv4' | 'ipv6']> = [
  ['0.0.0.0', 8, 'ipv4'], // this network
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'], // carrier-grade NAT
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'], // link-local, cloud metadata services
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['192.0.2.0', 24, 'ipv4'], // documentation (TEST-NET-1..3): no public host is there
  ['192.88.99.0', 24, 'ipv4'], // 6to4 relays (deprecated)
  ['198.18.0.0', 15, 'ipv4'], // benchmarking
  ['198.51.100.0', 24, 'ipv4'],
  ['203.0.113.0', 24, 'ipv4'],
  ['224.0.0.0', 4, 'ipv4'], // multicast
  ['240.0.0.0', 4, 'ipv4'], // reserved, broadcast
  ['::', 96, 'ipv6'], // unspecified, loopback and IPv4-compatible (::a.b.c.d, deprecated)
  ['64:ff9b:1::', 48, 'ipv6'], // local-use NAT64
  ['100::', 64, 'ipv6'], // discard-only
  ['2001::', 32, 'ipv6'], // Teredo (an IPv4 address inside, obfuscated)
  ['2001:db8::', 32, 'ipv6'], // documentation
  ['2002::', 16, 'ipv6'], // 6to4 (an IPv4 address inside)
  ['fc00::', 7, 'ipv6'], // unique local
  ['fe80::', 10, 'ipv6'], // link-local
  ['ff00::', 8, 'ipv6'], // multicast
];

const special = new BlockList();
for (const [network, prefix, family] of SPECIAL_RANGES) special.addSubnet(network, prefix, family);

/** An IPv4 address an IPv6 one carries (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`), as a dotted quad. */
function embeddedIpv4(address: string): string | undefined {
  const groups = new URL(`http://[${address}]/`).hostname.slice(1, -1); // canonical form
  const match = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(groups);
  if (!match) return undefined;
  const [high, low] = [parseInt(match[1]!, 16), parseInt(match[2]!, 16)];
  return [high >> 8, high & 255, low >> 8, low & 255].join('.');
}

/** The addresses of this machine's own interfaces, whatever their range (a public one included). */
function ownAddresses(): Set<string> {
  const own = new Set<string>();
  for (const addresses of Object.values(networkInterfaces())) for (const { address } of addresses ?? []) own.add(canonicalAddress(address));
  return own;
}

const canonicalAddress = (address: string) => (isIP(address) === 6 ? new URL(`http://[${address.replace(/%.*$/, '')}]/`).hostname.slice(1, -1) : address);

/** Whether `address` (an IP address) is one a webhook may not reach under `deny`: a special range, or this machine. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  if (ownAddresses().has(canonicalAddress(address))) return true;
  if (family === 4) return special.check(address, 'ipv4');
  const ipv4 = embeddedIpv4(address);
  return ipv4 === undefined ? special.check(address, 'ipv6') : special.check(ipv4, 'ipv4') || ownAddresses().has(ipv4);
}

const hostOf = (url: URL) => url.hostname.replace(/^\[|\]$/g, '').toLowerCase();

/** Why the URL's host, an IP address (never looked up), is refused under `deny`; undefined when it is not. */
export function privateAddressIn(url: URL): string | undefined {
  const host = hostOf(url);
  return isPrivateAddress(host) ? `${host} is a private or special address` : undefined;
}

/** As privateAddressIn, and `localhost` refused by its name too (RFC 6761), where the answer can say so at once. */
export function privateHostOf(url: URL): string | undefined {
  const host = hostOf(url).replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return `${host} is this machine`;
  return privateAddressIn(url);
}

export const PRIVATE_ADDRESS_CODE = 'ERR_WEBHOOK_PRIVATE_ADDRESS';

/** A DNS lookup that fails when the name resolves to any private or special address. */
export const publicOnlyLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
    if (error) return callback(error, '', 0);
    const refused = addresses.find(({ address }) => isPrivateAddress(address));
    if (refused) {
      const denied = Object.assign(new Error(`${hostname} resolves to ${refused.address}, a private or special address (WEBHOOK_PRIVATE_ADDRESSES=deny)`), { code: PRIVATE_ADDRESS_CODE });
      return callback(denied, '', 0);
    }
    if ((options as { all?: boolean }).all) return (callback as unknown as (error: null, addresses: LookupAddress[]) => void)(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
};
