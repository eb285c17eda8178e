// Summaries of latency samples (milliseconds): nearest-rank percentiles, so a p99 is always a
// latency that was actually observed, never an interpolation between two.

export function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** { n, median, p99, mean, max } of `samples`, rounded to microseconds. */
export function summarize(samples) {
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  if (n === 0) return { n: 0, median: null, p99: null, mean: null, max: null };
  let sum = 0;
  for (const s of sorted) sum += s;
  return { n, median: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), mean: round(sum / n), max: round(sorted[n - 1]) };
}

export function round(x, digits = 3) {
  if (x === null || x === undefined || !Number.isFinite(x)) return x ?? null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
