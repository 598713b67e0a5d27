import assert from "node:assert/strict";
import { Autoscaler, type ScaledFunction } from "../../../src/gateway/autoscaler.ts";
import { createLogger } from "../../../src/log.ts";
import type { FunctionLoad } from "../../../src/metrics/invocations.ts";

const WINDOW = 30_000;

/**
 * A fake appliance for the autoscaler: functions in memory, load counters the test drives second
 * by second, a clock the test moves, and a scale function that records what was asked.
 */
function harness(fns: ScaledFunction[], opts: { failScale?: boolean } = {}) {
  let now = 0;
  const loads = new Map<string, FunctionLoad>();
  const scaled: string[] = [];
  const logs: Array<Record<string, unknown>> = [];
  let release: (() => void) | undefined;
  const autoscaler = new Autoscaler({
    functions: () => fns,
    load: (name, ns) => {
      const l = loads.get(`${name}.${ns}`);
      return l && { ...l, at: now };
    },
    scale: async (name, ns, replicas) => {
      scaled.push(`${name} → ${replicas}`);
      if (opts.failScale) throw new Error("containerd is down");
      const fn = fns.find((f) => f.name === name && f.namespace === ns)!;
      fn.replicas = replicas;
      if (release === undefined) return;
      await new Promise<void>((r) => release = r);
    },
    now: () => now,
    log: createLogger({ write: (line) => logs.push(JSON.parse(line)) }),
  }, { scaleDownWindowMs: WINDOW });

  return {
    scaled,
    logs,
    /** Makes the next scale operations hang until `unblock()`. */
    block: () => release = () => {},
    unblock: () => {
      const r = release;
      release = undefined;
      r?.();
    },
    /** One second passes with this load on `name`, then the autoscaler looks. */
    async second(load: Record<string, { rps?: number; inflight?: number }> = {}) {
      now += 1000;
      for (const [name, l] of Object.entries(load)) {
        const fn = fns.find((f) => f.name === name)!;
        const key = `${name}.${fn.namespace}`;
        const prev = loads.get(key) ?? { at: 0, started: 0, inflight: 0, busyMs: 0 };
        const busy = (l.rps ?? 0) > 0 || (l.inflight ?? 0) > 0;
        loads.set(key, {
          at: now,
          started: prev.started + (l.rps ?? 0),
          inflight: l.inflight ?? 0,
          busyMs: prev.busyMs + (l.inflight ?? 0) * 1000,
          lastActiveAt: busy ? now : prev.lastActiveAt,
        });
      }
      autoscaler.tick();
      if (release === undefined) await autoscaler.settled();
    },
    async seconds(n: number, load: Record<string, { rps?: number; inflight?: number }> = {}) {
      for (let i = 0; i < n; i++) await this.second(load);
    },
    autoscaler,
  };
}

const fn = (name: string, labels: Record<string, string>, replicas = 1): ScaledFunction => ({
  name,
  namespace: "openfaas-fn",
  labels,
  replicas,
});

Deno.test("rps: replicas rise to ceil(load / target) within two looks", async () => {
  const f = fn("web", { "com.openfaas.scale.type": "rps", "com.openfaas.scale.target": "50" });
  const h = harness([f]);
  await h.second({ web: { rps: 180 } }); // first look: no rate yet
  await h.second({ web: { rps: 180 } });
  assert.deepEqual(h.scaled, ["web → 4"]);
  assert.equal(f.replicas, 4);
  await h.second({ web: { rps: 200 } }); // exactly 4 targets: no change
  assert.equal(f.replicas, 4);
  await h.second({ web: { rps: 201 } });
  assert.equal(f.replicas, 5);
});

Deno.test("the first requests after a look without any count from that look: scaled at once", async () => {
  const f = fn("new", { "com.openfaas.scale.target": "10" });
  const h = harness([f]);
  await h.second(); // seen, never invoked
  await h.second({ new: { rps: 25 } });
  assert.deepEqual(h.scaled, ["new → 3"]);
});

Deno.test("capacity: replicas follow requests in flight per replica, capped at max", async () => {
  const f = fn("slow", {
    "com.openfaas.scale.type": "capacity",
    "com.openfaas.scale.target": "2",
    "com.openfaas.scale.max": "3",
  });
  const h = harness([f]);
  await h.seconds(2, { slow: { inflight: 5 } });
  assert.deepEqual(h.scaled, ["slow → 3"]);
  await h.seconds(3, { slow: { inflight: 8 } });
  assert.deepEqual(h.scaled, ["slow → 3"], "never above max");
});

Deno.test("a type alone uses the default target (50 rps, 10 in flight); a target alone means rps", async (t) => {
  await t.step("capacity default 10", async () => {
    const f = fn("c", { "com.openfaas.scale.type": "capacity" });
    const h = harness([f]);
    await h.seconds(2, { c: { inflight: 25 } });
    assert.equal(f.replicas, 3);
  });
  await t.step("rps from the target alone", async () => {
    const f = fn("r", { "com.openfaas.scale.target": "10" });
    const h = harness([f]);
    await h.seconds(2, { r: { rps: 35 } });
    assert.equal(f.replicas, 4);
  });
});

Deno.test("scale down waits until the lower count held for the whole window, then goes straight to it", async () => {
  const f = fn("web", { "com.openfaas.scale.target": "10" });
  const h = harness([f]);
  await h.seconds(5, { web: { rps: 40 } });
  assert.equal(f.replicas, 4);
  await h.seconds(WINDOW / 1000 - 1, { web: { rps: 0 } });
  assert.equal(f.replicas, 4, "still up just before the window ends");
  await h.seconds(2, { web: { rps: 0 } });
  assert.equal(f.replicas, 1);
  assert.deepEqual(h.scaled, ["web → 4", "web → 1"]);
});

Deno.test("a dip shorter than the window does not scale down; a partial drop goes to the window's peak", async () => {
  const f = fn("web", { "com.openfaas.scale.target": "10" });
  const h = harness([f]);
  await h.seconds(2, { web: { rps: 50 } });
  assert.equal(f.replicas, 5);
  for (let i = 0; i < 3; i++) {
    await h.seconds(10, { web: { rps: 5 } });
    await h.second({ web: { rps: 50 } }); // a burst needing 5 every 11 s
  }
  await h.second({ web: { rps: 30 } }); // then one needing 3
  await h.seconds(WINDOW / 1000 - 2, { web: { rps: 5 } });
  assert.equal(f.replicas, 5, "bursts within the window keep the replicas");
  await h.second({ web: { rps: 5 } });
  assert.equal(f.replicas, 3, "the last 5 left the window: down to the peak still in it");
  await h.second({ web: { rps: 5 } });
  assert.equal(f.replicas, 1);
  assert.deepEqual(h.scaled, ["web → 5", "web → 3", "web → 1"]);
});

Deno.test("bounds: never below scale.min nor above scale.max", async () => {
  const f = fn("b", {
    "com.openfaas.scale.target": "1",
    "com.openfaas.scale.min": "2",
    "com.openfaas.scale.max": "6",
  }, 2);
  const h = harness([f]);
  await h.seconds(3, { b: { rps: 100 } });
  assert.equal(f.replicas, 6);
  await h.seconds(WINDOW / 1000 + 2, { b: { rps: 0 } });
  assert.equal(f.replicas, 2);
  assert.deepEqual(h.scaled, ["b → 6", "b → 2"]);
});

Deno.test("a function that does not opt in is never touched, whatever its load or replicas", async () => {
  const plain = fn("plain", { "com.openfaas.scale.max": "10" }, 7);
  const unlabelled: ScaledFunction = { name: "bare", namespace: "ns", replicas: 3 };
  const h = harness([plain, unlabelled]);
  await h.seconds(WINDOW / 1000 * 3, { plain: { rps: 1000, inflight: 50 }, bare: { rps: 0 } });
  assert.deepEqual(h.scaled, []);
  assert.equal(plain.replicas, 7);
});

Deno.test("a manual scale of an autoscaled function holds for a window before the autoscaler lowers it", async () => {
  const f = fn("web", { "com.openfaas.scale.target": "10" });
  const h = harness([f]);
  await h.seconds(WINDOW / 1000 + 5);
  assert.deepEqual(h.scaled, []);
  f.replicas = 5; // POST /system/scale-function
  await h.seconds(WINDOW / 1000 - 1);
  assert.equal(f.replicas, 5);
  await h.seconds(2);
  assert.equal(f.replicas, 1);
});

Deno.test("scale.zero: idle for zero-duration → 0 replicas; left at 0; idle again after a wake", async () => {
  const f = fn("lazy", {
    "com.openfaas.scale.zero": "true",
    "com.openfaas.scale.zero-duration": "2m",
  });
  const h = harness([f]);
  await h.seconds(60, { lazy: { rps: 1 } });
  await h.seconds(119);
  assert.deepEqual(h.scaled, [], "not before two minutes without a request");
  await h.second();
  assert.deepEqual(h.scaled, ["lazy → 0"]);
  await h.seconds(300);
  assert.deepEqual(h.scaled, ["lazy → 0"], "at zero the function waits for a request");
  f.replicas = 1; // a request woke it
  await h.second({ lazy: { rps: 1 } });
  await h.seconds(119);
  assert.equal(f.replicas, 1);
  await h.second();
  assert.deepEqual(h.scaled, ["lazy → 0", "lazy → 0"]);
  assert.ok(h.logs.some((l) => l.msg === "autoscaling" && l.reason === "idle" && l.to === 0));
});

Deno.test("scale.zero: a request still in flight is not idle; the default duration is 15 minutes", async () => {
  const f = fn("long", { "com.openfaas.scale.zero": "true" });
  const h = harness([f]);
  await h.second({ long: { rps: 1, inflight: 1 } });
  await h.seconds(20 * 60, { long: { inflight: 1 } });
  assert.deepEqual(h.scaled, [], "in flight the whole time");
  await h.seconds(15 * 60 - 1, { long: { inflight: 0 } });
  assert.deepEqual(h.scaled, []);
  await h.second();
  assert.deepEqual(h.scaled, ["long → 0"]);
});

Deno.test("scale.zero with load scaling: up under load, straight to zero when idle", async () => {
  const f = fn("both", {
    "com.openfaas.scale.type": "capacity",
    "com.openfaas.scale.target": "1",
    "com.openfaas.scale.zero": "true",
    "com.openfaas.scale.zero-duration": "10s",
  });
  const h = harness([f]);
  await h.seconds(3, { both: { inflight: 3, rps: 3 } });
  assert.equal(f.replicas, 3);
  await h.seconds(10, { both: {} });
  assert.equal(f.replicas, 0);
  assert.deepEqual(h.scaled, ["both → 3", "both → 0"]);
});

Deno.test("scale.factor=0 turns load scaling off, as in OpenFaaS", async () => {
  const f = fn("off", { "com.openfaas.scale.target": "1", "com.openfaas.scale.factor": "0" });
  const h = harness([f]);
  await h.seconds(5, { off: { rps: 100 } });
  assert.deepEqual(h.scaled, []);
});

Deno.test("a bad scale label leaves the function alone and is logged once", async () => {
  const f = fn("bad", { "com.openfaas.scale.type": "cpu" });
  const h = harness([f]);
  await h.seconds(5, { bad: { rps: 1000 } });
  assert.deepEqual(h.scaled, []);
  const warnings = h.logs.filter((l) => l.msg === "not autoscaling: bad scale label");
  assert.equal(warnings.length, 1);
  assert.match(
    String(warnings[0].err),
    /com\.openfaas\.scale\.type must be rps or capacity, got "cpu"/,
  );
  // An update with good labels is picked up.
  f.labels = { "com.openfaas.scale.type": "rps", "com.openfaas.scale.target": "100" };
  await h.seconds(2, { bad: { rps: 1000 } });
  assert.deepEqual(h.scaled, ["bad → 10"]);
});

Deno.test("a scale operation under way is not started again; a failed one is logged and retried", async (t) => {
  await t.step("slow scale", async () => {
    const f = fn("w", { "com.openfaas.scale.target": "1" });
    const h = harness([f]);
    h.block();
    await h.seconds(5, { w: { rps: 3 } });
    assert.deepEqual(h.scaled, ["w → 3"]);
    h.unblock();
    await h.autoscaler.settled();
  });
  await t.step("failing scale", async () => {
    const f = fn("w", { "com.openfaas.scale.target": "1" });
    const h = harness([f], { failScale: true });
    await h.seconds(3, { w: { rps: 3 } });
    assert.deepEqual(h.scaled, ["w → 3", "w → 3"]);
    assert.ok(
      h.logs.some((l) =>
        l.msg === "autoscaling failed" && /containerd is down/.test(String(l.err))
      ),
    );
  });
});

Deno.test("start() looks on an interval and close() stops it", async () => {
  const f = fn("w", { "com.openfaas.scale.target": "1" });
  let looks = 0;
  const autoscaler = new Autoscaler({
    functions: () => {
      looks++;
      return [f];
    },
    load: () => undefined,
    scale: () => Promise.resolve(),
    now: () => performance.now(),
    log: createLogger({ write: () => {} }),
  }, { intervalMs: 5 });
  autoscaler.start();
  const deadline = Date.now() + 5000;
  while (looks < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  await autoscaler.close();
  const seen = looks;
  assert.ok(seen >= 3, `looked ${seen} times`);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(looks, seen, "no look after close()");
});
