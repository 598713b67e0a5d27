/**
 * The autoscaler: about once a second it looks at every function that opts in with
 * `com.openfaas.scale.type` or `.target`, measures its load since the last look (requests per
 * second, or average requests in flight), and sets the replicas to ceil(load / target) within the
 * function's bounds — up at once, down only once every recommendation within the scale-down
 * window was lower. Functions with `com.openfaas.scale.zero=true` go to zero replicas after
 * `com.openfaas.scale.zero-duration` without a request; the next request wakes them (the
 * provider). Functions that opt into neither are never touched, so a manual scale stands.
 */

import type { Logger } from "../log.ts";
import type { FunctionLoad } from "../metrics/invocations.ts";
import { type ScalePolicy, scalePolicy } from "./scale_policy.ts";

/** A deployed function as the autoscaler sees it, read from memory. */
export interface ScaledFunction {
  name: string;
  namespace: string;
  labels?: Record<string, string>;
  /** The replica count asked for now. */
  replicas: number;
}

/** What the autoscaler reads and drives; `now` is the clock `load` uses too (milliseconds). */
export interface AutoscalerDeps {
  functions(): ScaledFunction[];
  /** The function's load counters; undefined when it has had no request. */
  load(name: string, namespace: string): FunctionLoad | undefined;
  scale(name: string, namespace: string, replicas: number): Promise<void>;
  now(): number;
  log: Logger;
}

/** Timing of the autoscaler. */
export interface AutoscalerOptions {
  /** Time between two looks at the load (default 1 s). */
  intervalMs?: number;
  /** How long a lower replica count must hold before scaling down (default 30 s). */
  scaleDownWindowMs?: number;
}

/** The scale-down window when none is configured. */
export const DEFAULT_SCALE_DOWN_WINDOW_MS = 30_000;

interface FunctionState {
  labels?: Record<string, string>;
  policy?: ScalePolicy;
  /** When the function was first seen, or its replicas were last changed by someone else. */
  changedAt: number;
  /** The replica count last seen or set by us. */
  replicas: number;
  prev?: FunctionLoad;
  /** When the previous look was. */
  lookedAt?: number;
  /** Recommendations within the scale-down window, oldest first. */
  history: Array<{ at: number; want: number }>;
  pending: boolean;
  warned?: string;
}

/** The autoscaler; `start()` runs the loop, `tick()` is one look (tests call it directly). */
export class Autoscaler {
  readonly #deps: AutoscalerDeps;
  readonly #log: Logger;
  readonly #intervalMs: number;
  readonly #windowMs: number;
  readonly #state = new Map<string, FunctionState>();
  readonly #pending = new Set<Promise<void>>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(deps: AutoscalerDeps, opts: AutoscalerOptions = {}) {
    this.#deps = deps;
    this.#log = deps.log.child({ component: "autoscaler" });
    this.#intervalMs = opts.intervalMs ?? 1000;
    this.#windowMs = opts.scaleDownWindowMs ?? DEFAULT_SCALE_DOWN_WINDOW_MS;
  }

  /** Starts looking every interval until `close()`. */
  start(): void {
    const loop = () => {
      if (this.#closed) return;
      try {
        this.tick();
      } catch (err) {
        this.#log.error("autoscaler pass failed", { err });
      }
      this.#timer = setTimeout(loop, this.#intervalMs);
    };
    this.#timer = setTimeout(loop, this.#intervalMs);
  }

  /** Stops the loop and waits for scale operations under way. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.settled();
  }

  /** Resolves once the scale operations started so far have finished. */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  /** One look at every function: measure, decide, and start the scale operations needed. */
  tick(): void {
    const now = this.#deps.now();
    const seen = new Set<string>();
    for (const f of this.#deps.functions()) {
      const key = `${f.namespace}/${f.name}`;
      seen.add(key);
      let s = this.#state.get(key);
      if (!s) {
        s = { changedAt: now, replicas: f.replicas, history: [], pending: false };
        this.#state.set(key, s);
      }
      this.#decide(f, s, now);
    }
    for (const key of this.#state.keys()) if (!seen.has(key)) this.#state.delete(key);
  }

  #decide(f: ScaledFunction, s: FunctionState, now: number): void {
    const policy = this.#policy(f, s);
    const load = this.#deps.load(f.name, f.namespace);
    // A function without requests at the previous look had all of these since then.
    const prev = s.prev ??
      (load && s.lookedAt !== undefined
        ? { at: s.lookedAt, started: 0, inflight: 0, busyMs: 0 }
        : undefined);
    s.prev = load;
    s.lookedAt = now;
    if (!policy || (!policy.load && policy.zeroAfterMs === undefined) || s.pending) return;
    if (f.replicas !== s.replicas) {
      // Scaled by someone else (a manual scale, a request waking it from zero): that count
      // holds for a window before the autoscaler lowers it.
      s.replicas = f.replicas;
      s.changedAt = now;
      s.history = [];
    }
    // At zero the function waits for a request to wake it.
    if (f.replicas === 0) return;

    if (policy.zeroAfterMs !== undefined && (load?.inflight ?? 0) === 0) {
      const lastActive = Math.max(s.changedAt, load?.lastActiveAt ?? -Infinity);
      if (now - lastActive >= policy.zeroAfterMs) {
        s.history = [];
        this.#scale(f, s, 0, { reason: "idle", idleSeconds: (now - lastActive) / 1000 });
        return;
      }
    }
    if (!policy.load) return;
    const measured = measure(policy.load.type, prev, load);
    if (measured === undefined) return;
    const lower = Math.max(policy.min, 1);
    // The epsilon keeps a load of exactly N targets at N replicas despite rounding.
    const need = Math.ceil(measured / policy.load.target - 1e-9);
    const want = Math.min(Math.max(need, lower), policy.max);
    s.history.push({ at: now, want });
    while (s.history.length > 0 && s.history[0].at <= now - this.#windowMs) s.history.shift();

    const details = { reason: policy.load.type, load: Math.round(measured * 100) / 100 };
    if (want > f.replicas) {
      this.#scale(f, s, want, details);
      return;
    }
    const keep = s.history.reduce((n, h) => Math.max(n, h.want), want);
    if (keep < f.replicas && now - s.changedAt >= this.#windowMs) {
      this.#scale(f, s, keep, details);
    }
  }

  // The policy is read again only when the labels change (an update); a bad label is logged once
  // and leaves the function alone.
  #policy(f: ScaledFunction, s: FunctionState): ScalePolicy | undefined {
    if (s.labels === f.labels && (s.policy || s.warned)) return s.policy;
    s.labels = f.labels;
    try {
      s.policy = scalePolicy(f.name, f.labels);
      s.warned = undefined;
    } catch (err) {
      s.policy = undefined;
      const message = (err as Error).message;
      if (s.warned !== message) {
        this.#log.warn("not autoscaling: bad scale label", {
          function: f.name,
          namespace: f.namespace,
          err: message,
        });
      }
      s.warned = message;
    }
    return s.policy;
  }

  #scale(
    f: ScaledFunction,
    s: FunctionState,
    replicas: number,
    details: Record<string, unknown>,
  ): void {
    s.pending = true;
    this.#log.info("autoscaling", {
      function: f.name,
      namespace: f.namespace,
      from: f.replicas,
      to: replicas,
      ...details,
    });
    const op = this.#deps.scale(f.name, f.namespace, replicas).then(() => {
      s.replicas = replicas;
    }, (err) => {
      this.#log.warn("autoscaling failed", {
        function: f.name,
        namespace: f.namespace,
        to: replicas,
        err: String(err),
      });
    }).finally(() => {
      s.pending = false;
      this.#pending.delete(op);
    });
    this.#pending.add(op);
  }
}

// Requests per second, or the average number in flight, between two samples.
function measure(
  type: "rps" | "capacity",
  prev: FunctionLoad | undefined,
  load: FunctionLoad | undefined,
): number | undefined {
  if (!load) return 0;
  if (!prev || load.at <= prev.at || load.started < prev.started) return undefined;
  const dt = load.at - prev.at;
  return type === "rps"
    ? (load.started - prev.started) * 1000 / dt
    : Math.max(0, load.busyMs - prev.busyMs) / dt;
}
