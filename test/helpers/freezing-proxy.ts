// A TCP proxy in front of the test database that can stop passing bytes either way while
// keeping its connections open: a database frozen (SIGSTOP, a paused VM) or a network
// partition without a reset.
import { createServer, connect, type Socket } from 'node:net';

export interface FreezingProxy {
  /** The database URL through the proxy. */
  url: string;
  /** Every socket it made, client and upstream sides. */
  sockets: Socket[];
  freeze(): void;
  /** Passes again, what was held first. */
  thaw(): void;
  close(): Promise<void>;
}

export async function freezingProxy(databaseUrl: string): Promise<FreezingProxy> {
  const target = new URL(databaseUrl);
  let frozen = false;
  const held: Array<() => void> = [];
  const sockets: Socket[] = [];
  const pass = (from: Socket, to: Socket) => from.on('data', (chunk) => (frozen ? held.push(() => to.write(chunk)) : to.write(chunk)));
  const proxy = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.push(client, upstream);
    for (const socket of [client, upstream]) socket.on('error', () => undefined);
    pass(client, upstream);
    pass(upstream, client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const proxied = new URL(databaseUrl);
  proxied.port = String((proxy.address() as { port: number }).port);
  return {
    url: proxied.href,
    sockets,
    freeze: () => (frozen = true),
    thaw() {
      frozen = false;
      for (const flush of held.splice(0)) flush();
    },
    async close() {
      frozen = false;
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}
