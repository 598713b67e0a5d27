/**
 * The async worker: takes deliveries from the queue and invokes the functions through the
 * gateway's synchronous path (so metrics count them), at most N at a time per function. 429, 502,
 * 503, 504 and unreachable replicas are retried with exponential backoff up to a bounded number
 * of attempts; then the result is POSTed to the request's `X-Callback-Url` with
 * `X-Function-Status`, `X-Call-Id` and `X-Duration-Seconds`. A delivery whose previous attempt was
 * interrupted by a crash, or whose function is gone, is reported failed without an invocation.
 */

import { statusFor } from "../gateway/errors.ts";
import type { Invoke } from "../gateway/router.ts";
import type { Logger } from "../log.ts";
import type { Delivery, QueueBackend, QueuedRequest } from "./types.ts";

/** Annotation that sets a function's async concurrency (default 8). */
export const QUEUE_CONCURRENCY_ANNOTATION = "com.openfaas.queue.concurrency";

/** Backoff between attempts (of an invocation or of a callback). */
export interface Backoff {
  baseMs: number;
  maxMs: number;
}

/** Options of the worker. */
export interface WorkerOptions {
  queue: QueueBackend;
  /** The gateway's synchronous invocation. */
  invoke: Invoke;
  /** A function's annotations; undefined when it is not deployed. */
  lookup(name: string, namespace: string): Promise<Record<string, string> | undefined>;
  log: Logger;
  /** Invocations in flight per function unless its annotation says otherwise (default 8). */
  concurrency?: number;
  /** Deliveries taken from the queue at once, all functions together (default 64). */
  maxInflight?: number;
  /** Attempts of an invocation before its last result is reported (default 5). */
  maxAttempts?: number;
  /** Between invocation attempts (default 1 s doubling to 30 s). */
  retry?: Backoff;
  /** Callback attempts (default 4), the backoff between them, and each one's timeout. */
  callback?: { attempts?: number; backoff?: Backoff; timeoutMs?: number };
  fetch?: typeof fetch;
}

/** The delay before attempt `attempt + 1`: `baseMs` doubling per attempt, at most `maxMs`. */
export function retryDelayMs(attempt: number, b: Backoff): number {
  return Math.min(b.maxMs, b.baseMs * 2 ** Math.max(0, attempt - 1));
}

/** What an invocation produced, as the callback reports it. */
export interface Outcome {
  status: number;
  headers: Headers;
  body: Uint8Array;
  seconds: number;
  /** A transient failure worth another attempt. */
  retryable: boolean;
}

const RETRY_STATUSES = new Set([429, 502, 503, 504]);

// Hop-by-hop headers and those the callback request sets itself.
const NOT_FORWARDED = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "content-length",
  "host",
]);

/** Starts consuming the queue; `close()` stops callbacks in the background and the queue. */
export function startWorker(opts: WorkerOptions) {
  const log = opts.log.child({ component: "queue-worker" });
  const doFetch = opts.fetch ?? fetch;
  const perFunction = opts.concurrency ?? 8;
  const maxAttempts = opts.maxAttempts ?? 5;
  const retry = opts.retry ?? { baseMs: 1000, maxMs: 30_000 };
  const cbAttempts = opts.callback?.attempts ?? 4;
  const cbBackoff = opts.callback?.backoff ?? { baseMs: 500, maxMs: 8000 };
  const cbTimeoutMs = opts.callback?.timeoutMs ?? 10_000;
  const stop = new AbortController();
  const background = new Set<Promise<void>>();
  const slots = new Map<string, { active: number; waiters: Array<() => void> }>();

  /** Waits for a slot of the function; false when the worker stops meanwhile. */
  async function acquire(key: string, limit: number): Promise<boolean> {
    let s = slots.get(key);
    if (!s) slots.set(key, s = { active: 0, waiters: [] });
    while (s.active >= limit && !stop.signal.aborted) {
      await new Promise<void>((r) => s!.waiters.push(r));
    }
    if (stop.signal.aborted) {
      if (s.active === 0 && s.waiters.length === 0) slots.delete(key);
      return false;
    }
    s.active++;
    return true;
  }

  function release(key: string): void {
    const s = slots.get(key)!;
    s.active--;
    const next = s.waiters.shift();
    if (next) next();
    else if (s.active === 0) slots.delete(key);
  }

  async function invokeOnce(r: QueuedRequest): Promise<Outcome> {
    const headers = new Headers(r.headers);
    headers.set("x-call-id", r.id);
    const hasBody = r.method !== "GET" && r.method !== "HEAD";
    // A known length goes along, so the function gets the body as sent, never re-chunked.
    if (hasBody) headers.set("content-length", String(r.body.length));
    const req = new Request(`http://queue.invalid${r.pathAndQuery}`, {
      method: r.method,
      headers,
      body: hasBody ? r.body as BodyInit : undefined,
    });
    const target = { name: r.name, namespace: r.namespace, path: new URL(req.url).pathname };
    const started = performance.now();
    try {
      const res = await opts.invoke(req, target, r.pathAndQuery);
      const body = new Uint8Array(await res.arrayBuffer());
      return {
        status: res.status,
        headers: res.headers,
        body,
        seconds: (performance.now() - started) / 1000,
        retryable: RETRY_STATUSES.has(res.status),
      };
    } catch (err) {
      // The proxy's errors: 404 (removed meanwhile), 502 (unreachable), 503, 504 (timeout).
      const status = statusFor(err);
      if (status === 500) log.error("async invocation failed", { callId: r.id, err });
      return failure(status, `${(err as Error).message}\n`, performance.now() - started);
    }
  }

  async function postCallback(
    r: QueuedRequest,
    o: Outcome,
    attempt: number,
    cancel?: AbortSignal,
  ): Promise<boolean> {
    const headers = new Headers();
    for (const [k, v] of o.headers) if (!NOT_FORWARDED.has(k)) headers.append(k, v);
    headers.set("x-function-status", String(o.status));
    headers.set("x-call-id", r.id);
    headers.set("x-duration-seconds", o.seconds.toFixed(6));
    headers.set("x-function-name", `${r.name}.${r.namespace}`);
    try {
      const res = await doFetch(r.callbackUrl!, {
        method: "POST",
        headers,
        body: o.body as BodyInit,
        signal: timeoutSignal(cbTimeoutMs, cancel),
      });
      await res.body?.cancel();
      if (res.status < 500 && res.status !== 429) return true;
      log.warn("callback refused", {
        callId: r.id,
        url: r.callbackUrl,
        status: res.status,
        attempt,
      });
    } catch (err) {
      log.warn("callback failed", {
        callId: r.id,
        url: r.callbackUrl,
        err: (err as Error).message,
        attempt,
      });
    }
    return false;
  }

  /**
   * Delivers the callback: the first attempt before the request is acknowledged (so a crash
   * before it leads to a report after restart), the others in the background so an unreachable
   * receiver holds up no other work.
   */
  async function report(r: QueuedRequest, o: Outcome): Promise<void> {
    if (!r.callbackUrl) return;
    if (await postCallback(r, o, 1)) return;
    const task = (async () => {
      for (let i = 2; i <= cbAttempts && !stop.signal.aborted; i++) {
        await sleep(retryDelayMs(i - 1, cbBackoff), stop.signal);
        if (!stop.signal.aborted && await postCallback(r, o, i, stop.signal)) return;
      }
      log.error("callback not delivered; giving up", { callId: r.id, url: r.callbackUrl });
    })();
    background.add(task);
    void task.finally(() => background.delete(task));
  }

  async function handle(d: Delivery): Promise<void> {
    // Stopping: leave the delivery unsettled, so the queue keeps it for the next start.
    if (stop.signal.aborted) return;
    const r = d.request;
    const fn = `${r.name}.${r.namespace}`;
    if (d.interrupted) {
      log.warn("async request interrupted by a stop; reporting it failed", { callId: r.id, fn });
      await report(
        r,
        failure(
          500,
          `the result of this call is unknown: the appliance stopped while invoking function "${fn}"\n`,
          0,
        ),
      );
      await d.ack();
      return;
    }
    const annotations = await opts.lookup(r.name, r.namespace);
    if (!annotations) {
      await report(r, failure(404, `function "${fn}" not found\n`, 0));
      await d.ack();
      return;
    }
    const limit = concurrencyOf(annotations, perFunction);
    if (!(await acquire(fn, limit))) return;
    let outcome: Outcome;
    try {
      await d.begin();
      outcome = await invokeOnce(r);
    } finally {
      release(fn);
    }
    if (outcome.retryable && d.attempt < maxAttempts) {
      const delay = retryDelayMs(d.attempt, retry);
      log.info("async invocation will be retried", {
        callId: r.id,
        fn,
        status: outcome.status,
        attempt: d.attempt,
        delayMs: delay,
      });
      await d.retry(delay);
      return;
    }
    log.debug("async invocation done", { callId: r.id, fn, status: outcome.status });
    await report(r, outcome);
    await d.ack();
  }

  opts.queue.consume(handle, { concurrency: opts.maxInflight ?? 64 });
  return {
    /** Stops callback retries in the background; deliveries in progress finish (queue.close). */
    close: async (): Promise<void> => {
      stop.abort();
      // Deliveries waiting for a slot give up (not begun, they stay queued).
      for (const s of slots.values()) for (const wake of s.waiters.splice(0)) wake();
      await Promise.all([...background]);
    },
  };
}

/** The per-function limit from its annotation, else `fallback`. */
export function concurrencyOf(annotations: Record<string, string>, fallback: number): number {
  const v = Number(annotations[QUEUE_CONCURRENCY_ANNOTATION]);
  return Number.isInteger(v) && v >= 1 ? v : fallback;
}

function failure(status: number, message: string, ms: number): Outcome {
  return {
    status,
    headers: new Headers({ "content-type": "text/plain" }),
    body: new TextEncoder().encode(message),
    seconds: ms / 1000,
    retryable: RETRY_STATUSES.has(status),
  };
}

/** A signal that fires after `ms` or with `also` (no AbortSignal.any on Node.js 18). */
function timeoutSignal(ms: number, also?: AbortSignal): AbortSignal {
  const timeout = AbortSignal.timeout(ms);
  if (!also) return timeout;
  const ctl = new AbortController();
  const fire = () => ctl.abort();
  timeout.addEventListener("abort", fire, { once: true });
  also.addEventListener("abort", fire, { once: true });
  if (also.aborted) ctl.abort();
  return ctl.signal;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}
