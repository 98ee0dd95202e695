// A Prometheus histogram for the request path: an observation is a bucket search and
// three additions on plain arrays. prom-client's own Histogram builds, validates and
// hashes a label object on every observation, even through a cached `labels()` child,
// which cost more than a getSession's own store work. This one is read into prom-client's
// registry, and formatted by it, only when /metrics is scraped.
import type { Metric, Registry } from 'prom-client';

export interface HistogramChild {
  observe(seconds: number): void;
}

interface Series {
  labels: Record<string, string>;
  /** counts[i]: observations ≤ buckets[i] and > buckets[i - 1]; the last: above every bucket. */
  counts: Float64Array;
  sum: number;
}

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

export interface ArrayHistogram {
  /** One series per distinct label values; keep the child, the lookup is not free. */
  child(...labelValues: string[]): HistogramChild;
}

export function arrayHistogram(config: { name: string; help: string; labelNames?: string[]; buckets: number[]; registry: Registry }): ArrayHistogram {
  const { name, help, buckets, registry } = config;
  const labelNames = config.labelNames ?? [];
  const series = new Map<string, Series>();

  const metric = {
    name,
    help,
    type: 'histogram',
    aggregator: 'sum',
    async get() {
      const values: Sample[] = [];
      for (const { labels, counts, sum } of series.values()) {
        // As prom-client does: a series appears once it has an observation.
        if (counts.every((n) => n === 0)) continue;
        let cumulative = 0;
        buckets.forEach((le, i) => {
          cumulative += counts[i]!;
          values.push({ labels: { le, ...labels }, value: cumulative, metricName: `${name}_bucket` });
        });
        cumulative += counts[buckets.length]!;
        values.push({ labels: { le: '+Inf', ...labels }, value: cumulative, metricName: `${name}_bucket` });
        values.push({ labels, value: sum, metricName: `${name}_sum` });
        values.push({ labels, value: cumulative, metricName: `${name}_count` });
      }
      return { name, help, type: 'histogram', values, aggregator: 'sum' };
    },
  };
  // The registry reads a metric through `get()` only; this is not a prom-client class.
  registry.registerMetric(metric as unknown as Metric);

  return {
    child(...labelValues) {
      const key = labelValues.join('\u0000');
      let found = series.get(key);
      if (!found) {
        const labels = Object.fromEntries(labelNames.map((label, i) => [label, labelValues[i] ?? '']));
        found = { labels, counts: new Float64Array(buckets.length + 1), sum: 0 };
        series.set(key, found);
      }
      const { counts } = found;
      const target = found;
      return {
        observe(seconds) {
          let i = 0;
          while (i < buckets.length && seconds > buckets[i]!) i += 1;
          counts[i]! += 1;
          target.sum += seconds;
        },
      };
    },
  };
}
