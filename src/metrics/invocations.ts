/**
 * The gateway's invocation metrics under the names OpenFaaS dashboards use
 * (`gateway_function_invocation_total`, `gateway_functions_seconds`,
 * `gateway_function_invocation_started`), kept by wrapping the synchronous invoke, plus the load
 * figures the autoscaler reads: requests started, requests in flight, and in-flight time.
 */

import { statusFor } from "../gateway/errors.ts";
import type { Invoke } from "../gateway/router.ts";
import {
  type Counter,
  type CounterSeries,
  DEFAULT_BUCKETS,
  type Histogram,
  type HistogramSeries,
  type Registry,
} from "./registry.ts";

/** A function's load as the autoscaler samples it; times in the clock's milliseconds. */
export interface FunctionLoad {
  /** When the sample was taken. */
  at: number;
  /** Requests started since the gateway started (a counter). */
  started: number;
  /** Requests waiting for their response headers now. */
  inflight: number;
  /** The integral of `inflight` over time, in milliseconds (a counter). */
  busyMs: number;
  /** When a request last started or got its response headers; undefined before the first. */
  lastActiveAt?: number;
}

interface CodeSeries {
  total: CounterSeries;
  seconds: HistogramSeries;
}

// Everything kept per function, made on its first request so later ones allocate nothing.
class FunctionEntry {
  readonly functionName: string;
  readonly started: CounterSeries;
  readonly codes = new Map<number, CodeSeries>();
  total = 0;
  inflight = 0;
  busyMs = 0;
  changedAt = 0;
  lastActiveAt: number | undefined;

  constructor(functionName: string, started: CounterSeries) {
    this.functionName = functionName;
    this.started = started;
  }

  // The in-flight integral is brought up to `now` before the count changes.
  advance(now: number): void {
    this.busyMs += this.inflight * (now - this.changedAt);
    this.changedAt = now;
    this.lastActiveAt = now;
  }
}

/** The invocation metrics of one gateway. */
export class InvocationMetrics {
  readonly #now: () => number;
  readonly #total: Counter;
  readonly #seconds: Histogram;
  readonly #started: Counter;
  // namespace → name → entry: two map lookups per request, no key string built.
  readonly #fns = new Map<string, Map<string, FunctionEntry>>();

  /** Declares the metrics in `registry`; `now` is a monotonic clock in milliseconds. */
  constructor(registry: Registry, opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? (() => performance.now());
    this.#total = registry.counter({
      name: "gateway_function_invocation_total",
      help: "Function invocations by status code",
      labelNames: ["function_name", "code"],
    });
    this.#seconds = registry.histogram({
      name: "gateway_functions_seconds",
      help: "Function time taken until the response headers, by status code",
      labelNames: ["function_name", "code"],
      buckets: DEFAULT_BUCKETS,
    });
    this.#started = registry.counter({
      name: "gateway_function_invocation_started",
      help: "Function invocations started",
      labelNames: ["function_name"],
    });
  }

  /**
   * Wraps `invoke`: a request counts as started when called, and is counted with its status and
   * duration when the response headers arrive; a thrown error counts with the status it maps to.
   */
  instrument(invoke: Invoke): Invoke {
    return async (req, target, pathAndQuery) => {
      const end = this.begin(target.name, target.namespace);
      let status = 500;
      try {
        const res = await invoke(req, target, pathAndQuery);
        status = res.status;
        return res;
      } catch (err) {
        status = statusFor(err);
        throw err;
      } finally {
        end(status);
      }
    };
  }

  /**
   * Counts a request to a function as started now; the returned callback counts it with its
   * status and duration (call it once, when the response headers arrive or the request fails).
   * What `instrument` does, for callers that are not an Invoke (the gateway's front door).
   */
  begin(name: string, namespace: string): (status: number) => void {
    const e = this.#entry(name, namespace);
    const start = this.#now();
    e.started.value++;
    e.advance(start);
    e.inflight++;
    return (status) => {
      const end = this.#now();
      e.advance(end);
      e.inflight--;
      e.total++;
      const c = e.codes.get(status) ?? this.#code(e, status);
      c.total.value++;
      c.seconds.observe((end - start) / 1000);
    };
  }

  /** The sum of `gateway_function_invocation_total` for a function. */
  invocationCount(name: string, namespace: string): number {
    return this.#fns.get(namespace)?.get(name)?.total ?? 0;
  }

  /** The function's load now; undefined when it has had no request. */
  load(name: string, namespace: string): FunctionLoad | undefined {
    const e = this.#fns.get(namespace)?.get(name);
    if (!e) return undefined;
    const at = this.#now();
    return {
      at,
      started: e.started.value,
      inflight: e.inflight,
      busyMs: e.busyMs + e.inflight * (at - e.changedAt),
      lastActiveAt: e.lastActiveAt,
    };
  }

  /**
   * Drops the series of functions `exists` says are gone (deleted, or names that never existed
   * and were answered 404), so the metrics do not grow with every name a client tries.
   */
  retain(exists: (name: string, namespace: string) => boolean): void {
    for (const [namespace, byName] of this.#fns) {
      for (const [name, e] of byName) {
        if (e.inflight > 0 || exists(name, namespace)) continue;
        byName.delete(name);
        this.#started.remove(e.functionName);
        for (const code of e.codes.keys()) {
          this.#total.remove(e.functionName, String(code));
          this.#seconds.remove(e.functionName, String(code));
        }
      }
      if (byName.size === 0) this.#fns.delete(namespace);
    }
  }

  #entry(name: string, namespace: string): FunctionEntry {
    let byName = this.#fns.get(namespace);
    if (!byName) this.#fns.set(namespace, byName = new Map());
    let e = byName.get(name);
    if (!e) {
      const functionName = `${name}.${namespace}`;
      e = new FunctionEntry(functionName, this.#started.labels(functionName));
      e.changedAt = this.#now();
      byName.set(name, e);
    }
    return e;
  }

  #code(e: FunctionEntry, status: number): CodeSeries {
    const code = String(status);
    const c = {
      total: this.#total.labels(e.functionName, code),
      seconds: this.#seconds.labels(e.functionName, code),
    };
    e.codes.set(status, c);
    return c;
  }
}
