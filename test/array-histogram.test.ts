// The request path's histogram on plain arrays scrapes exactly as prom-client's own
// Histogram does for the same observations: same buckets, sums, counts and labels.
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { arrayHistogram } from '../src/ops/array-histogram.js';

const BUCKETS = [0.0005, 0.001, 0.01, 0.1, 1];
const observations: [string, string, number][] = [
  ['getSession', '200', 0.0002],
  ['getSession', '200', 0.0005], // on a bound: counted in it (le is "less or equal")
  ['getSession', '200', 0.05],
  ['getSession', '404', 0.001],
  ['createSession', '201', 2.5], // above every bound: only in +Inf
  ['createSession', '201', 0],
];

describe('arrayHistogram', () => {
  it('scrapes as the same prom-client Histogram would', async () => {
    const [ours, theirs] = [new Registry(), new Registry()];
    const fast = arrayHistogram({ name: 'h', help: 'help text', labelNames: ['operationId', 'status'], buckets: BUCKETS, registry: ours });
    const reference = new Histogram({ name: 'h', help: 'help text', labelNames: ['operationId', 'status'], buckets: BUCKETS, registers: [theirs] });
    fast.child('unused', '500'); // a series without observations is not scraped
    for (const [operationId, status, seconds] of observations) {
      fast.child(operationId, status).observe(seconds);
      reference.labels(operationId, status).observe(seconds);
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toContain('h_bucket{le="0.0005",operationId="getSession",status="200"} 2');
  });

  it('scrapes a histogram without labels', async () => {
    const registry = new Registry();
    const child = arrayHistogram({ name: 'plain', help: 'p', buckets: BUCKETS, registry }).child();
    child.observe(0.003);
    expect(await registry.metrics()).toContain('plain_bucket{le="0.01"} 1\nplain_bucket{le="0.1"} 1');
    expect(await registry.metrics()).toContain('plain_count 1');
  });
});
