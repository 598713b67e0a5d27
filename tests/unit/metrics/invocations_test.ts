import assert from "node:assert/strict";
import { NotFoundError, TimeoutError } from "../../../src/errors.ts";
import type { Invoke } from "../../../src/gateway/router.ts";
import { createGatewayMetrics } from "../../../src/metrics/gateway_metrics.ts";
import { InvocationMetrics } from "../../../src/metrics/invocations.ts";
import { Registry } from "../../../src/metrics/registry.ts";

const target = (name: string, namespace = "openfaas-fn") => ({ name, namespace, path: "/" });
const req = () => new Request("http://gw/function/x");

/** An invoke whose answers the test releases one by one, with a clock the test moves. */
function fakes() {
  let clock = 1000;
  const waiting: Array<(r: Response | Error) => void> = [];
  const invoke: Invoke = () =>
    new Promise((resolve, reject) => {
      waiting.push((r) => r instanceof Error ? reject(r) : resolve(r));
    });
  return {
    now: () => clock,
    advance: (ms: number) => clock += ms,
    invoke,
    answer: (r: Response | Error) => waiting.shift()!(r),
  };
}

function sample(text: string, line: string): number | undefined {
  const escaped = line.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const m = text.match(new RegExp(`^${escaped} (\\S+)$`, "m"));
  return m ? Number(m[1]) : undefined;
}

Deno.test("an invocation counts as started at once and with its code and duration when headers arrive", async () => {
  const f = fakes();
  const registry = new Registry();
  const metrics = new InvocationMetrics(registry, { now: f.now });
  const invoke = metrics.instrument(f.invoke);

  const pending = invoke(req(), target("echo"), "/");
  let text = await registry.render();
  assert.equal(
    sample(text, 'gateway_function_invocation_started{function_name="echo.openfaas-fn"}'),
    1,
  );
  assert.equal(
    sample(text, 'gateway_function_invocation_total{function_name="echo.openfaas-fn",code="200"}'),
    undefined,
  );
  assert.equal(metrics.load("echo", "openfaas-fn")?.inflight, 1);

  f.advance(300);
  f.answer(new Response("ok", { status: 200 }));
  assert.equal((await pending).status, 200);
  text = await registry.render();
  const fn = 'function_name="echo.openfaas-fn",code="200"';
  assert.equal(sample(text, `gateway_function_invocation_total{${fn}}`), 1);
  assert.equal(sample(text, `gateway_functions_seconds_count{${fn}}`), 1);
  assert.equal(sample(text, `gateway_functions_seconds_sum{${fn}}`), 0.3);
  assert.equal(sample(text, `gateway_functions_seconds_bucket{${fn},le="0.25"}`), 0);
  assert.equal(sample(text, `gateway_functions_seconds_bucket{${fn},le="0.5"}`), 1);
  assert.equal(sample(text, `gateway_functions_seconds_bucket{${fn},le="+Inf"}`), 1);
  assert.equal(metrics.load("echo", "openfaas-fn")?.inflight, 0);
});

Deno.test("each status code gets its own series and invocationCount is their sum", async () => {
  const f = fakes();
  const registry = new Registry();
  const metrics = new InvocationMetrics(registry, { now: f.now });
  const invoke = metrics.instrument(f.invoke);
  const statuses = [200, 200, 404, 500, 200];
  for (const status of statuses) {
    const p = invoke(req(), target("fn", "team"), "/");
    f.answer(new Response(null, { status }));
    await p;
  }
  const text = await registry.render();
  const line = (code: string) =>
    sample(text, `gateway_function_invocation_total{function_name="fn.team",code="${code}"}`);
  assert.equal(line("200"), 3);
  assert.equal(line("404"), 1);
  assert.equal(line("500"), 1);
  assert.equal(metrics.invocationCount("fn", "team"), 5);
  assert.equal(metrics.invocationCount("fn", "openfaas-fn"), 0);
  assert.equal(metrics.invocationCount("other", "team"), 0);
});

Deno.test("a thrown error counts with the status it maps to and is rethrown", async (t) => {
  const cases = [
    { name: "timeout → 504", err: new TimeoutError("slow"), code: "504" },
    { name: "not found → 404", err: new NotFoundError("gone"), code: "404" },
    { name: "anything else → 500", err: new Error("boom"), code: "500" },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const f = fakes();
      const registry = new Registry();
      const invoke = new InvocationMetrics(registry, { now: f.now }).instrument(f.invoke);
      const p = invoke(req(), target("fn"), "/");
      f.answer(c.err);
      await assert.rejects(p, (err) => err === c.err);
      const text = await registry.render();
      assert.equal(
        sample(
          text,
          `gateway_function_invocation_total{function_name="fn.openfaas-fn",code="${c.code}"}`,
        ),
        1,
      );
    });
  }
});

Deno.test("load() integrates requests in flight over time", async () => {
  const f = fakes();
  const metrics = new InvocationMetrics(new Registry(), { now: f.now });
  const invoke = metrics.instrument(f.invoke);
  assert.equal(metrics.load("fn", "ns"), undefined);
  const a = invoke(req(), target("fn", "ns"), "/");
  f.advance(100);
  const b = invoke(req(), target("fn", "ns"), "/");
  f.advance(100); // 1 in flight for 100 ms, then 2 for 100 ms
  assert.deepEqual(metrics.load("fn", "ns"), {
    at: 1200,
    started: 2,
    inflight: 2,
    busyMs: 300,
    lastActiveAt: 1100,
  });
  f.answer(new Response());
  f.answer(new Response());
  await Promise.all([a, b]);
  f.advance(1000);
  const load = metrics.load("fn", "ns")!;
  assert.equal(load.busyMs, 300);
  assert.equal(load.inflight, 0);
  assert.equal(load.lastActiveAt, 1200);
});

Deno.test("retain() drops functions that are gone, but not while a request is in flight", async () => {
  const f = fakes();
  const registry = new Registry();
  const metrics = new InvocationMetrics(registry, { now: f.now });
  const invoke = metrics.instrument(f.invoke);
  const done = invoke(req(), target("gone"), "/");
  f.answer(new Response(null, { status: 404 }));
  await done;
  const busy = invoke(req(), target("busy"), "/");
  metrics.retain(() => false);
  let text = await registry.render();
  assert.doesNotMatch(text, /gone\.openfaas-fn/);
  assert.match(text, /busy\.openfaas-fn/);
  assert.equal(metrics.invocationCount("gone", "openfaas-fn"), 0);
  f.answer(new Response());
  await busy;
  metrics.retain((name) => name === "busy");
  text = await registry.render();
  assert.match(text, /gateway_function_invocation_total\{function_name="busy\.openfaas-fn"/);
});

Deno.test("/metrics serves the text format with replicas, in-flight requests, queue depth and memory", async () => {
  const f = fakes();
  let depth = 7;
  const m = createGatewayMetrics({
    functions: () => [{ name: "a", namespace: "openfaas-fn", replicas: 3 }, {
      name: "b",
      namespace: "x",
      replicas: 0,
    }],
    queueDepth: () => depth < 0 ? Promise.reject(new Error("down")) : Promise.resolve(depth),
    now: f.now,
  });
  const pending = m.invocations.instrument(f.invoke)(req(), target("a"), "/");
  const res = await m.handler(new Request("http://gw/metrics"));
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const text = await res.text();
  assert.match(text, /^# TYPE gateway_service_count gauge$/m);
  assert.equal(sample(text, 'gateway_service_count{function_name="a.openfaas-fn"}'), 3);
  assert.equal(sample(text, 'gateway_service_count{function_name="b.x"}'), 0);
  assert.equal(sample(text, 'faasd_function_inflight_requests{function_name="a.openfaas-fn"}'), 1);
  assert.equal(sample(text, "faasd_queue_depth"), 7);
  assert.ok(sample(text, "process_resident_memory_bytes")! > 1_000_000);
  f.answer(new Response());
  await pending;
  depth = -1;
  const after = await (await m.handler(new Request("http://gw/metrics"))).text();
  assert.equal(sample(after, "faasd_queue_depth"), undefined, "a failing queue is left out");
  assert.equal(sample(after, 'faasd_function_inflight_requests{function_name="a.openfaas-fn"}'), 0);
});

Deno.test("prune() drops the series of names that are not deployed, without a scrape", async () => {
  const f = fakes();
  const m = createGatewayMetrics({
    functions: () => [{ name: "real", namespace: "openfaas-fn", replicas: 1 }],
    now: f.now,
  });
  const invoke = m.invocations.instrument(f.invoke);
  for (const name of ["real", "typo"]) {
    const p = invoke(req(), target(name), "/");
    f.answer(new Response(null, { status: name === "real" ? 200 : 404 }));
    await p;
  }
  m.prune();
  assert.equal(m.invocations.invocationCount("real", "openfaas-fn"), 1);
  assert.equal(m.invocations.load("typo", "openfaas-fn"), undefined);
  assert.doesNotMatch(await m.registry.render(), /typo/);
});

Deno.test("faasd_queue_depth appears once a queue is watched", async () => {
  const m = createGatewayMetrics({ functions: () => [] });
  assert.doesNotMatch(await m.registry.render(), /faasd_queue_depth/);
  m.watchQueue(() => Promise.resolve(3));
  assert.equal(sample(await m.registry.render(), "faasd_queue_depth"), 3);
});
