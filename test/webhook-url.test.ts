// Which URLs a webhook may have (src/events/webhook-url.ts): each refusal says why.
import { describe, expect, it } from 'vitest';
import { undeliverableReason } from '../src/events/webhook-url.js';

describe('undeliverableReason', () => {
  it('names why no delivery could reach a URL the spec pattern lets through', () => {
    const reasons = Object.fromEntries(
      ['not a url', 'http://', 'http:///path', 'http://127.0.0.1:0/x', 'http://127.0.0.1:1/x', 'http://127.0.0.1:25/x', 'http://hooks.example.com:6000/x', 'http://hooks.example.com:10080/x', 'http://user:secret@hooks.example.com/x', 'https://:secret@hooks.example.com/x'].map(
        (url) => [url, undeliverableReason(url, 'allow')],
      ),
    );
    expect(reasons).toEqual({
      'not a url': 'is not a valid URL',
      'http://': 'is not a valid URL',
      'http:///path': 'has no host',
      'http://127.0.0.1:0/x': "port 0 is one fetch never connects to (the Fetch standard's bad ports)",
      'http://127.0.0.1:1/x': "port 1 is one fetch never connects to (the Fetch standard's bad ports)",
      'http://127.0.0.1:25/x': "port 25 is one fetch never connects to (the Fetch standard's bad ports)",
      'http://hooks.example.com:6000/x': "port 6000 is one fetch never connects to (the Fetch standard's bad ports)",
      'http://hooks.example.com:10080/x': "port 10080 is one fetch never connects to (the Fetch standard's bad ports)",
      'http://user:secret@hooks.example.com/x': 'must not carry credentials (user:password@); authenticate the deliveries by their signature',
      'https://:secret@hooks.example.com/x': 'must not carry credentials (user:password@); authenticate the deliveries by their signature',
    });
  });

  it('takes a public URL on any port fetch uses, and a private host only under allow', () => {
    for (const url of ['https://hooks.example.com/x', 'http://hooks.example.com:8080/x', 'http://93.184.216.34:443/x']) expect(undeliverableReason(url, 'deny'), url).toBeUndefined();
    for (const url of ['http://127.0.0.1:8080/x', 'http://10.1.2.3/x', 'http://[::1]/x', 'http://localhost/x']) {
      expect(undeliverableReason(url, 'allow'), url).toBeUndefined();
      expect(undeliverableReason(url, 'deny'), url).toMatch(/^host .+: this server delivers to public addresses only \(WEBHOOK_PRIVATE_ADDRESSES=deny\)$/);
    }
  });
});
