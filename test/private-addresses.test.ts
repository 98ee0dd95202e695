// Which addresses WEBHOOK_PRIVATE_ADDRESSES=deny keeps webhooks from: private, loopback,
// link-local and special ranges, IPv4 inside IPv6 included; and the lookup that refuses
// a name resolving to one.
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { isPrivateAddress, publicOnlyLookup } from '../src/events/private-addresses.js';

describe('isPrivateAddress', () => {
  it.each([
    '127.0.0.1', '127.255.0.9', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.0.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '255.255.255.255', '198.18.0.1',
    '::1', '::', 'fd00::1', 'fc00::1', 'fe80::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '64:ff9b::a00:1',
    // Documentation, discard, and the forms that carry an IPv4 address (6to4, IPv4-compatible, local NAT64, Teredo).
    '192.0.2.2', '198.51.100.1', '203.0.113.1', '2001:db8::1', '100::1', '2002:7f00:1::', '::127.0.0.1', '64:ff9b:1::7f00:1', '2001:0:4136:e378::1',
  ])('%s is private or special', (address) => expect(isPrivateAddress(address)).toBe(true));

  it("refuses this machine's own addresses, whatever their range", () => {
    const own = Object.values(networkInterfaces()).flat().filter((entry) => entry !== undefined);
    expect(own.length).toBeGreaterThan(0);
    for (const { address } of own) expect(isPrivateAddress(address.replace(/%.*$/, '')), address).toBe(true);
  });

  it.each(['8.8.8.8', '172.32.0.1', '100.128.0.1', '192.169.0.1', '2001:4860:4860::8888', '::ffff:8.8.8.8', '64:ff9b::808:808', 'example.com'])('%s is not', (address) =>
    expect(isPrivateAddress(address)).toBe(false),
  );
});

describe('publicOnlyLookup', () => {
  const lookup = (hostname: string, all: boolean) =>
    new Promise<{ error: NodeJS.ErrnoException | null; result: unknown }>((resolve) =>
      publicOnlyLookup(hostname, { all } as never, ((error: NodeJS.ErrnoException | null, result: unknown) => resolve({ error, result })) as never),
    );

  it('refuses a name that resolves to a private address, naming both', async () => {
    for (const all of [true, false]) {
      const { error } = await lookup('localhost', all);
      expect(error).toMatchObject({ code: 'ERR_WEBHOOK_PRIVATE_ADDRESS', message: 'localhost resolves to 127.0.0.1, a private or special address (WEBHOOK_PRIVATE_ADDRESSES=deny)' });
    }
  });

  it('passes a lookup failure on as it is', async () => {
    const { error } = await lookup('no-such-host.invalid', true);
    expect(error?.code).toBe('ENOTFOUND');
  });
});
