/**
 * The benchmark harness: pure statistics over samples, `measure()` to collect them, and the
 * types every scenario implements. Reporting (table and JSON files) lives in report.ts.
 */

/** One measured quantity: a sample per iteration, in milliseconds. */
export interface Figure {
  name: string;
  unit: "ms";
  samples: number[];
  /** The name of another figure in the same scenario run to compare medians with. */
  baseline?: string;
}

/** What the harness hands a scenario. */
export interface ScenarioContext {
  /** The iteration count to use: `--iterations` when given, else the scenario's default. */
  iterations(defaultCount: number): number;
  /** Facts the scenario learns about the system under test (e.g. `containerd: "1.6.20"`). */
  facts: Record<string, string>;
  /** Progress output (stderr), never mixed into the report. */
  log(message: string): void;
  /** Path of containerd's socket. */
  containerdSocket: string;
}

/** A named set of measurements. */
export interface Scenario {
  name: string;
  description: string;
  run(ctx: ScenarioContext): Promise<Figure[]>;
}

/** The summary statistics of one figure. */
export interface Summary {
  n: number;
  median: number;
  p95: number;
  min: number;
  max: number;
  mean: number;
}

/** The median; the mean of the two middle values for an even count, NaN when empty. */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return NaN;
  const s = sorted(samples);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * The p-th percentile by nearest rank: the smallest sample with at least p% of the samples at
 * or below it (rank ⌈p/100 · n⌉). NaN when empty.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return NaN;
  if (p < 0 || p > 100) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const s = sorted(samples);
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[rank - 1];
}

/** The arithmetic mean, NaN when empty. */
export function mean(samples: readonly number[]): number {
  if (samples.length === 0) return NaN;
  return samples.reduce((a, b) => a + b, 0) / samples.length;
}

/** n, median, p95 (nearest rank), min, max and mean of the samples. */
export function summarize(samples: readonly number[]): Summary {
  const n = samples.length;
  return {
    n,
    median: median(samples),
    p95: percentile(samples, 95),
    min: n ? Math.min(...samples) : NaN,
    max: n ? Math.max(...samples) : NaN,
    mean: mean(samples),
  };
}

/** How many times slower (>1) or faster (<1) `value` is than `baseline`. */
export function ratio(value: number, baseline: number): number {
  return value / baseline;
}

/** Formats a ratio of medians as `x1.23`; `x?` when it is not a finite number. */
export function formatRatio(r: number): string {
  if (!Number.isFinite(r)) return "x?";
  return `x${r >= 100 ? r.toFixed(0) : r.toFixed(2)}`;
}

/** Options for {@link measure}. */
export interface MeasureOptions {
  iterations: number;
  /** Untimed iterations run first (JIT, connection and page-cache warm-up). */
  warmup?: number;
  baseline?: string;
  /** Untimed work before each iteration (warm-up ones included). */
  before?: (i: number) => Promise<void> | void;
  /** Untimed work after each iteration, run even when the iteration throws. */
  after?: (i: number) => Promise<void> | void;
}

/** Runs `fn` warmup + iterations times and records the wall time of each timed run in ms. */
export async function measure(
  name: string,
  fn: (i: number) => Promise<unknown> | unknown,
  opts: MeasureOptions,
): Promise<Figure> {
  const warmup = opts.warmup ?? 0;
  const samples: number[] = [];
  for (let i = 0; i < warmup + opts.iterations; i++) {
    await opts.before?.(i);
    try {
      const t0 = performance.now();
      await fn(i);
      const elapsed = performance.now() - t0;
      if (i >= warmup) samples.push(elapsed);
    } finally {
      await opts.after?.(i);
    }
  }
  const figure: Figure = { name, unit: "ms", samples };
  if (opts.baseline) figure.baseline = opts.baseline;
  return figure;
}

function sorted(samples: readonly number[]): number[] {
  return [...samples].sort((a, b) => a - b);
}
