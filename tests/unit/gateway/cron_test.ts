import assert from "node:assert/strict";
import {
  type CronClock,
  type CronDeps,
  refreshOnChange,
  startCron,
} from "../../../src/gateway/cron.ts";
import type { FunctionTarget } from "../../../src/provider/function_path.ts";
import { createLogger } from "../../../src/log.ts";

/** Time moved by hand; timers run when it passes them. */
class FakeClock implements CronClock {
  t: number;
  delays: number[] = [];
  #timers = new Map<number, { at: number; fn: () => void }>();
  #id = 0;
  constructor(iso: string) {
    this.t = Date.parse(iso);
  }
  now = () => this.t;
  setTimer = (fn: () => void, ms: number) => {
    this.delays.push(ms);
    this.#timers.set(++this.#id, { at: this.t + ms, fn });
    return this.#id;
  };
  clearTimer = (id: unknown) => void this.#timers.delete(id as number);
  get pending() {
    return this.#timers.size;
  }
  /** Runs every timer up to `iso`, in order, letting the scheduler finish each wake. */
  async advanceTo(iso: string) {
    const end = Date.parse(iso);
    for (;;) {
      await settle();
      const [id, next] = [...this.#timers].sort((a, b) => a[1].at - b[1].at)[0] ?? [];
      if (next === undefined || next.at > end) break;
      this.#timers.delete(id);
      this.t = next.at;
      next.fn();
    }
    this.t = end;
    await settle();
  }
}

const settle = () => new Promise((r) => setTimeout(r, 0));

interface Call {
  at: string;
  fn: string;
  method: string;
  connector: string | null;
  body: string;
  pathAndQuery: string;
  via: "invoke" | "enqueue";
}

function setup(start: string, opts: { enqueue?: boolean; hold?: boolean } = {}) {
  const clock = new FakeClock(start);
  const functions: Array<
    { name: string; namespace: string; annotations?: Record<string, string> }
  > = [];
  const calls: Call[] = [];
  const logs: Array<Record<string, unknown>> = [];
  let release = () => {};
  const listing = { fail: false };
  const record =
    (via: Call["via"]) => async (req: Request, target: FunctionTarget, pathAndQuery: string) => {
      calls.push({
        at: new Date(clock.now()).toISOString(),
        fn: `${target.name}.${target.namespace}`,
        method: req.method,
        connector: req.headers.get("x-connector"),
        body: await req.text(),
        pathAndQuery,
        via,
      });
      if (opts.hold) await new Promise<void>((r) => release = r);
      return new Response("ok", { status: via === "enqueue" ? 202 : 200 });
    };
  const deps: CronDeps = {
    listFunctions: () =>
      listing.fail
        ? Promise.reject(new Error("containerd is restarting"))
        : Promise.resolve(structuredClone(functions)),
    invoke: record("invoke"),
    enqueue: opts.enqueue ? record("enqueue") : undefined,
    log: createLogger({ write: (l) => logs.push(JSON.parse(l)), level: "debug" }),
    clock,
  };
  const cron = startCron(deps);
  const cronFn = (name: string, schedule: string, extra: Record<string, string> = {}) =>
    functions.push({
      name,
      namespace: "openfaas-fn",
      annotations: { topic: "cron-function", schedule, ...extra },
    });
  return { clock, functions, calls, logs, cron, cronFn, listing, release: () => release() };
}

Deno.test("a */5 function is invoked at each due time with POST /, X-Connector: cron and no body", async () => {
  const s = setup("2026-01-01T00:03:00Z");
  s.cronFn("tick", "*/5 * * * *");
  s.functions.push({ name: "plain", namespace: "openfaas-fn", annotations: { topic: "other" } });
  await s.cron.refresh();
  await s.clock.advanceTo("2026-01-01T00:12:00Z");
  assert.deepEqual(s.calls.map((c) => c.at), [
    "2026-01-01T00:05:00.000Z",
    "2026-01-01T00:10:00.000Z",
  ]);
  for (const c of s.calls) {
    assert.deepEqual(
      { fn: c.fn, method: c.method, connector: c.connector, body: c.body, path: c.pathAndQuery },
      { fn: "tick.openfaas-fn", method: "POST", connector: "cron", body: "", path: "/" },
    );
  }
  assert.ok(s.logs.some((l) => l.msg === "cron invoked" && l.status === 200));
  await s.cron.close();
  assert.equal(s.clock.pending, 0, "close() leaves no timer");
});

Deno.test("one timer waits for the next due time, at most to the next whole minute", async () => {
  const s = setup("2026-01-01T00:03:20.500Z");
  await s.cron.refresh();
  // Nothing scheduled: wake at the next whole minute (aligned, so no drift).
  assert.equal(s.clock.delays.at(-1), 39_500);
  assert.equal(s.clock.pending, 1);
  s.cronFn("fast", "*/2 * * * * *");
  await s.cron.refresh();
  assert.equal(s.clock.delays.at(-1), 1_500, "the next even second");
  assert.equal(s.clock.pending, 1, "still one timer");
  await s.clock.advanceTo("2026-01-01T00:03:30Z");
  assert.deepEqual(s.calls.map((c) => c.at.slice(14, 19)), [
    "03:22",
    "03:24",
    "03:26",
    "03:28",
    "03:30",
  ]);
  await s.cron.close();
});

Deno.test("deploys, schedule updates and deletes are picked up on the next wake", async () => {
  const s = setup("2026-01-01T00:00:30Z");
  await s.clock.advanceTo("2026-01-01T00:01:30Z");
  // Deployed between wakes, before its due time: it fires at that time, found by the minute wake.
  s.cronFn("late", "2 * * * *");
  await s.clock.advanceTo("2026-01-01T00:02:30Z");
  assert.deepEqual(s.calls.map((c) => c.at), ["2026-01-01T00:02:00.000Z"]);
  s.functions[0].annotations!.schedule = "*/1 * * * *";
  await s.clock.advanceTo("2026-01-01T00:04:30Z");
  assert.deepEqual(s.calls.map((c) => c.at.slice(11, 16)), ["00:02", "00:03", "00:04"]);
  s.functions.length = 0;
  await s.clock.advanceTo("2026-01-01T00:08:00Z");
  assert.equal(s.calls.length, 3, "no invocation after delete");
  assert.deepEqual(s.cron.due(), []);
  await s.cron.close();
});

Deno.test("a bad schedule is logged once and skipped; other functions still run", async () => {
  const s = setup("2026-01-01T00:00:00Z");
  s.cronFn("bad", "*/5 * * *");
  s.cronFn("none", "");
  s.cronFn("good", "* * * * *");
  await s.cron.refresh();
  await s.clock.advanceTo("2026-01-01T00:05:00Z");
  assert.equal(s.calls.filter((c) => c.fn === "good.openfaas-fn").length, 5);
  assert.equal(s.calls.filter((c) => c.fn !== "good.openfaas-fn").length, 0);
  const ignored = s.logs.filter((l) => l.msg === "cron schedule ignored");
  assert.equal(ignored.length, 2, JSON.stringify(ignored));
  assert.match(String(ignored[0].err), /has 4 fields/);
  assert.equal(ignored[0].function, "bad");
  assert.match(String(ignored[1].err), /needs a "schedule" annotation/);
  // A new deploy with a fixed schedule is taken.
  s.functions[0].annotations!.schedule = "*/5 * * * *";
  await s.clock.advanceTo("2026-01-01T00:10:00Z");
  assert.deepEqual(s.calls.filter((c) => c.fn === "bad.openfaas-fn").map((c) => c.at), [
    "2026-01-01T00:10:00.000Z",
  ]);
  await s.cron.close();
});

Deno.test('async: "true" goes through enqueue; without a queue it is invoked and logged once', async (t) => {
  await t.step("with a queue", async () => {
    const s = setup("2026-01-01T00:00:30Z", { enqueue: true });
    s.cronFn("queued", "* * * * *", { async: "true" });
    s.cronFn("direct", "* * * * *");
    await s.clock.advanceTo("2026-01-01T00:01:00Z");
    assert.deepEqual(s.calls.map((c) => `${c.fn} ${c.via}`).sort(), [
      "direct.openfaas-fn invoke",
      "queued.openfaas-fn enqueue",
    ]);
    await s.cron.close();
  });
  await t.step("without one", async () => {
    const s = setup("2026-01-01T00:00:30Z");
    s.cronFn("queued", "* * * * *", { async: "true" });
    await s.clock.advanceTo("2026-01-01T00:03:00Z");
    assert.deepEqual(s.calls.map((c) => c.via), ["invoke", "invoke", "invoke"]);
    assert.equal(s.logs.filter((l) => /no async queue/.test(String(l.msg))).length, 1);
    await s.cron.close();
  });
});

Deno.test("a run due while the previous one is in flight is skipped", async () => {
  const s = setup("2026-01-01T00:00:00Z", { hold: true });
  s.cronFn("slow", "*/2 * * * * *");
  await s.cron.refresh();
  await s.clock.advanceTo("2026-01-01T00:00:06Z");
  assert.equal(s.calls.length, 1);
  assert.equal(s.logs.filter((l) => /still running/.test(String(l.msg))).length, 2);
  s.release();
  await s.clock.advanceTo("2026-01-01T00:00:08Z");
  assert.equal(s.calls.length, 2);
  s.release();
  await s.cron.close();
});

Deno.test("a failing listing keeps the known schedule", async () => {
  const s = setup("2026-01-01T00:00:30Z");
  s.cronFn("keep", "* * * * *");
  await s.cron.refresh();
  s.listing.fail = true;
  await s.clock.advanceTo("2026-01-01T00:02:00Z");
  assert.equal(s.calls.length, 2);
  assert.ok(s.logs.some((l) => l.msg === "cannot list functions for cron"));
  await s.cron.close();
});

Deno.test("refreshOnChange re-reads after a successful function deploy, update or delete", async (t) => {
  let refreshed = 0;
  const cron = { refresh: () => Promise.resolve(void refreshed++) };
  const cases = [
    { method: "POST", path: "/system/functions", status: 202, want: 1 },
    { method: "PUT", path: "/system/functions", status: 200, want: 1 },
    { method: "DELETE", path: "/system/functions", status: 202, want: 1 },
    { method: "GET", path: "/system/functions", status: 200, want: 0 },
    { method: "POST", path: "/system/functions", status: 400, want: 0 },
    { method: "POST", path: "/system/secrets", status: 201, want: 0 },
  ];
  for (const c of cases) {
    await t.step(`${c.method} ${c.path} → ${c.status}`, async () => {
      refreshed = 0;
      const handler = refreshOnChange(
        () => Promise.resolve(new Response("", { status: c.status })),
        cron,
      );
      const res = await handler(new Request(`http://gw${c.path}`, { method: c.method }));
      assert.equal(res.status, c.status);
      assert.equal(refreshed, c.want);
    });
  }
});
