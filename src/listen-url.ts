/** The URL of a server listening on `host` and `port`: an IPv6 address goes in brackets (`http://[::1]:3000`). */
export const listenUrl = (host: string, port: number): string => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
