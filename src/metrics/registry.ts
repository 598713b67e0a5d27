/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * format. A labelled child (a series) is made once per label set and kept by the caller, so the
 * hot path is a property increment with no string building.
 */

import { InvalidArgumentError } from "../errors.ts";
import {
  braces,
  formatValue,
  header,
  isLabelName,
  isMetricName,
  labelPairs,
} from "./exposition.ts";

/** What every metric is declared with. */
export interface MetricOptions {
  name: string;
  help: string;
  labelNames?: readonly string[];
}

/** A histogram's options; `buckets` are the upper bounds, ascending (`+Inf` is implied). */
export interface HistogramOptions extends MetricOptions {
  buckets?: readonly number[];
}

/** The Prometheus client default buckets, which the OpenFaaS gateway uses too. */
export const DEFAULT_BUCKETS: readonly number[] = Object.freeze([
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
]);

/** One series of a counter. */
export class CounterSeries {
  value = 0;
  /** Adds `n` (default 1); a counter never goes down. */
  inc(n = 1): void {
    if (n > 0) this.value += n;
  }
}

/** One series of a gauge. */
export class GaugeSeries {
  value = 0;
  set(v: number): void {
    this.value = v;
  }
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
}

/** One series of a histogram: per-bucket counts (cumulated when rendered), sum and count. */
export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(v: number): void {
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= b[i]) {
        this.counts[i]++;
        break;
      }
    }
    this.sum += v;
    this.count++;
  }
}

abstract class Family<S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];
  abstract readonly type: "counter" | "gauge" | "histogram";
  // Keyed by the label values; the value keeps the rendered label pairs with the series.
  readonly #series = new Map<string, { pairs: string; values: string[]; series: S }>();

  constructor(opts: MetricOptions) {
    if (!isMetricName(opts.name)) {
      throw new InvalidArgumentError(`metric name "${opts.name}" is not valid`);
    }
    for (const l of opts.labelNames ?? []) {
      if (!isLabelName(l)) {
        throw new InvalidArgumentError(`label name "${l}" of metric "${opts.name}" is not valid`);
      }
    }
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = Object.freeze([...opts.labelNames ?? []]);
  }

  protected abstract create(): S;

  /** The series for these label values (in the order of `labelNames`), made on first use. */
  labels(...values: string[]): S {
    const key = this.#key(values);
    const found = this.#series.get(key);
    if (found) return found.series;
    const series = this.create();
    this.#series.set(key, { pairs: labelPairs(this.labelNames, values), values, series });
    return series;
  }

  /** Removes the series for these label values, if there is one. */
  remove(...values: string[]): void {
    this.#series.delete(this.#key(values));
  }

  /** Removes every series. */
  clear(): void {
    this.#series.clear();
  }

  /** The label values of each series. */
  labelValues(): string[][] {
    return [...this.#series.values()].map((s) => s.values);
  }

  /** The family in the text format; nothing when it has no series. */
  render(): string {
    if (this.#series.size === 0) return "";
    let out = header(this.name, this.help, this.type);
    for (const { pairs, series } of this.#series.values()) out += this.renderSeries(pairs, series);
    return out;
  }

  protected abstract renderSeries(pairs: string, series: S): string;

  #key(values: string[]): string {
    if (values.length !== this.labelNames.length) {
      throw new InvalidArgumentError(
        `metric "${this.name}" has labels ${
          JSON.stringify(this.labelNames)
        }, got ${values.length} values`,
      );
    }
    return values.length === 1 ? values[0] : JSON.stringify(values);
  }
}

/** A counter with labels. */
export class Counter extends Family<CounterSeries> {
  readonly type = "counter";
  protected create(): CounterSeries {
    return new CounterSeries();
  }
  protected renderSeries(pairs: string, s: CounterSeries): string {
    return `${this.name}${braces(pairs)} ${formatValue(s.value)}\n`;
  }
}

/** A gauge with labels. */
export class Gauge extends Family<GaugeSeries> {
  readonly type = "gauge";
  protected create(): GaugeSeries {
    return new GaugeSeries();
  }
  protected renderSeries(pairs: string, s: GaugeSeries): string {
    return `${this.name}${braces(pairs)} ${formatValue(s.value)}\n`;
  }
}

/** A histogram with labels. */
export class Histogram extends Family<HistogramSeries> {
  readonly type = "histogram";
  readonly buckets: readonly number[];
  readonly #le: string[];

  constructor(opts: HistogramOptions) {
    super(opts);
    if (this.labelNames.includes("le")) {
      throw new InvalidArgumentError(`histogram "${opts.name}" cannot have a label named "le"`);
    }
    const buckets = [...opts.buckets ?? DEFAULT_BUCKETS].filter((b) => b !== Infinity);
    if (buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]))) {
      throw new InvalidArgumentError(
        `histogram "${opts.name}": buckets must be finite and ascending, got ${buckets}`,
      );
    }
    this.buckets = Object.freeze(buckets);
    this.#le = buckets.map((b) => `le="${formatValue(b)}"`);
  }

  protected create(): HistogramSeries {
    return new HistogramSeries(this.buckets);
  }

  protected renderSeries(pairs: string, s: HistogramSeries): string {
    const sep = pairs === "" ? "" : ",";
    let out = "";
    let cumulative = 0;
    for (let i = 0; i < this.#le.length; i++) {
      cumulative += s.counts[i];
      out += `${this.name}_bucket{${pairs}${sep}${this.#le[i]}} ${formatValue(cumulative)}\n`;
    }
    out += `${this.name}_bucket{${pairs}${sep}le="+Inf"} ${formatValue(s.count)}\n`;
    out += `${this.name}_sum${braces(pairs)} ${formatValue(s.sum)}\n`;
    out += `${this.name}_count${braces(pairs)} ${formatValue(s.count)}\n`;
    return out;
  }
}

/** A set of metrics rendered together, with hooks that refresh values computed at scrape time. */
export class Registry {
  readonly #families: Family<unknown>[] = [];
  readonly #collectors: Array<() => void | Promise<void>> = [];

  /** Declares a counter. */
  counter(opts: MetricOptions): Counter {
    return this.#add(new Counter(opts));
  }

  /** Declares a gauge. */
  gauge(opts: MetricOptions): Gauge {
    return this.#add(new Gauge(opts));
  }

  /** Declares a histogram. */
  histogram(opts: HistogramOptions): Histogram {
    return this.#add(new Histogram(opts));
  }

  /** Runs `collect` before each render (gauges read from elsewhere: replicas, queue depth). */
  onCollect(collect: () => void | Promise<void>): void {
    this.#collectors.push(collect);
  }

  /** Every family in the text format, after running the collect hooks. */
  async render(): Promise<string> {
    for (const collect of this.#collectors) await collect();
    let out = "";
    for (const f of this.#families) out += f.render();
    return out;
  }

  #add<F extends Family<unknown>>(family: F): F {
    if (this.#families.some((f) => f.name === family.name)) {
      throw new InvalidArgumentError(`metric "${family.name}" is declared twice`);
    }
    this.#families.push(family);
    return family;
  }
}
