/**
 * The cron connector, built into the gateway: functions annotated `topic: cron-function` and
 * `schedule: "<cron expression>"` are invoked on schedule with `POST /`, header
 * `X-Connector: cron` and an empty body — synchronously through the gateway's own `invoke` (so
 * metrics count it), or through the async queue when also annotated `async: "true"`.
 *
 * One timer waits for the next due time, capped at the next whole minute; every wake re-reads
 * the deployed functions, so deploys, updates and deletes are picked up without a restart (and
 * at once when `refresh()` is called after a change). A run that is missed (the machine was
 * suspended) fires once, late; a run due while the previous one is still in flight is skipped.
 */

import type { Logger } from "../log.ts";
import type { FunctionStatus } from "../provider/types.ts";
import { type CronSchedule, parseCron } from "./cron_expression.ts";
import type { Invoke } from "./router.ts";

/** The annotation value (in `topic`) that puts a function on the schedule. */
export const CRON_TOPIC = "cron-function";

/** Time and timers, injected so tests can move time by hand. */
export interface CronClock {
  now(): number;
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(id: unknown): void;
}

/** The real clock. */
export const systemClock: CronClock = {
  now: () => Date.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (id) => clearTimeout(id as number),
};

/** What the scheduler needs. */
export interface CronDeps {
  /** Every deployed function, in every namespace (read on each wake). */
  listFunctions(): Promise<Array<Pick<FunctionStatus, "name" | "namespace" | "annotations">>>;
  /** Synchronous invocation through the gateway (metrics included). */
  invoke: Invoke;
  /** Stores the request on the async queue (answers 202); without it, async functions are invoked synchronously. */
  enqueue?: Invoke;
  log: Logger;
  clock?: CronClock;
}

interface Entry {
  name: string;
  namespace: string;
  /** The `schedule` annotation as deployed. */
  source: string;
  /** Undefined when the schedule is bad (logged once). */
  schedule?: CronSchedule;
  nextDue: number;
  async?: boolean;
  inflight: boolean;
}

/** Starts the scheduler; it wakes at once to read the functions. */
export function startCron(deps: CronDeps): CronScheduler {
  const cron = new CronScheduler(deps);
  cron.refresh();
  return cron;
}

/** The cron scheduler. */
export class CronScheduler {
  readonly #deps: CronDeps;
  readonly #clock: CronClock;
  readonly #log: Logger;
  readonly #entries = new Map<string, Entry>();
  #timer: unknown;
  #lastWake: number;
  #wake: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #warnedNoQueue = false;

  constructor(deps: CronDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#log = deps.log.child({ component: "cron" });
    this.#lastWake = this.#clock.now();
  }

  /** Re-reads the functions now (after a deploy, update or delete) and fires what is due. */
  refresh(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#wake) {
      this.#again = true;
      return this.#wake;
    }
    this.#wake = (async () => {
      try {
        do {
          this.#again = false;
          await this.#tick();
        } while (this.#again && !this.#closed);
      } finally {
        this.#wake = undefined;
        this.#plan();
      }
    })();
    return this.#wake;
  }

  /** The functions on the schedule and when each is next due (for tests and the log). */
  due(): Array<{ function: string; schedule: string; next?: Date }> {
    return [...this.#entries.values()].map((e) => ({
      function: `${e.name}.${e.namespace}`,
      schedule: e.source,
      next: e.schedule ? new Date(e.nextDue) : undefined,
    }));
  }

  /** Stops the timer; invocations in flight finish on their own. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clock.clearTimer(this.#timer);
    await this.#wake;
  }

  async #tick(): Promise<void> {
    const now = this.#clock.now();
    let fns: Awaited<ReturnType<CronDeps["listFunctions"]>> | undefined;
    try {
      fns = await this.#deps.listFunctions();
    } catch (err) {
      // Keep the schedule we know; the next wake reads again.
      this.#log.warn("cannot list functions for cron", { err: String(err) });
    }
    if (fns) this.#update(fns);
    for (const e of this.#entries.values()) {
      if (!e.schedule || e.nextDue > now) continue;
      e.nextDue = e.schedule.next(new Date(now)).getTime();
      this.#fire(e);
    }
    this.#lastWake = now;
  }

  #update(fns: Awaited<ReturnType<CronDeps["listFunctions"]>>): void {
    const seen = new Set<string>();
    for (const fn of fns) {
      const a = fn.annotations ?? {};
      const topics = (a.topic ?? "").split(",").map((t) => t.trim());
      if (!topics.includes(CRON_TOPIC)) continue;
      const key = `${fn.name}.${fn.namespace}`;
      seen.add(key);
      const source = a.schedule ?? "";
      let e = this.#entries.get(key);
      if (!e) {
        e = { name: fn.name, namespace: fn.namespace, source, nextDue: Infinity, inflight: false };
        this.#entries.set(key, e);
        this.#schedule(e);
      } else if (e.source !== source) {
        e.source = source;
        this.#schedule(e);
      }
      e.async = a.async === "true";
    }
    for (const [key, e] of this.#entries) {
      if (seen.has(key)) continue;
      this.#entries.delete(key);
      this.#log.info("cron schedule removed", { function: e.name, namespace: e.namespace });
    }
  }

  // A new or changed schedule: due from the last time we looked, so a function deployed just
  // before a due time still fires at it. A bad one is logged here, once per schedule.
  #schedule(e: Entry): void {
    const { name, namespace, source } = e;
    try {
      if (source.trim() === "") {
        throw new Error(`annotation "topic: ${CRON_TOPIC}" needs a "schedule" annotation too`);
      }
      e.schedule = parseCron(source);
      e.nextDue = e.schedule.next(new Date(this.#lastWake)).getTime();
      this.#log.info("cron schedule set", {
        function: name,
        namespace,
        schedule: source,
        next: new Date(e.nextDue).toISOString(),
      });
    } catch (err) {
      e.schedule = undefined;
      e.nextDue = Infinity;
      this.#log.warn("cron schedule ignored", {
        function: name,
        namespace,
        schedule: source,
        err: err instanceof Error ? err.message : String(err),
      });
    }
  }

  #plan(): void {
    if (this.#closed) return;
    const now = this.#clock.now();
    // Wake at the next due time, and at least at every whole minute to see new functions.
    let at = Math.floor(now / 60_000) * 60_000 + 60_000;
    for (const e of this.#entries.values()) if (e.schedule) at = Math.min(at, e.nextDue);
    this.#clock.clearTimer(this.#timer);
    this.#timer = this.#clock.setTimer(() => void this.refresh(), Math.max(0, at - now));
  }

  #fire(e: Entry): void {
    const fields = { function: e.name, namespace: e.namespace, schedule: e.source };
    if (e.inflight) {
      this.#log.warn("cron run skipped: the previous one is still running", fields);
      return;
    }
    let call = this.#deps.invoke;
    if (e.async) {
      if (this.#deps.enqueue) {
        call = this.#deps.enqueue;
      } else if (!this.#warnedNoQueue) {
        this.#warnedNoQueue = true;
        this.#log.warn(
          "no async queue in this gateway: async cron functions are invoked synchronously",
        );
      }
    }
    const req = new Request("http://cron.invalid/", {
      method: "POST",
      headers: { "X-Connector": "cron" },
      body: "",
    });
    this.#log.debug("cron run", fields);
    e.inflight = true;
    const started = this.#clock.now();
    void (async () => {
      try {
        const res = await call(req, { name: e.name, namespace: e.namespace, path: "/" }, "/");
        await res.body?.cancel().catch(() => {});
        const level = res.status < 400 ? "info" : "warn";
        this.#log[level]("cron invoked", {
          ...fields,
          status: res.status,
          async: call === this.#deps.enqueue,
          ms: this.#clock.now() - started,
        });
      } catch (err) {
        this.#log.warn("cron invocation failed", {
          ...fields,
          err: err instanceof Error ? err.message : String(err),
        });
      } finally {
        e.inflight = false;
      }
    })();
  }
}

/**
 * Wraps the provider's handler so that a successful deploy, update or delete of a function makes
 * the scheduler re-read the functions at once.
 */
export function refreshOnChange(
  handler: (req: Request) => Promise<Response>,
  cron: Pick<CronScheduler, "refresh">,
): (req: Request) => Promise<Response> {
  return async (req) => {
    const res = await handler(req);
    if (
      req.method !== "GET" && res.ok &&
      new URL(req.url).pathname.replace(/\/$/, "") === "/system/functions"
    ) {
      void cron.refresh();
    }
    return res;
  };
}
