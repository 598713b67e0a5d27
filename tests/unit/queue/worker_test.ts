/**
 * The async worker with a fake queue, a fake invoke and a fake callback receiver: retries and
 * their backoff, the per-function concurrency limit, callback headers, interrupted and missing
 * functions reported failed without an invocation.
 */

import assert from "node:assert/strict";
import { BadGatewayError } from "../../../src/errors.ts";
import { silentLogger } from "../../../src/log.ts";
import type { Delivery, QueueBackend, QueuedRequest } from "../../../src/queue/types.ts";
import {
  concurrencyOf,
  QUEUE_CONCURRENCY_ANNOTATION,
  retryDelayMs,
  startWorker,
  type WorkerOptions,
} from "../../../src/queue/worker.ts";

interface Settled {
  begun: boolean;
  acked: boolean;
  retryMs?: number;
}

/** A queue that hands out whatever the test delivers and records how each one settled. */
function fakeQueue() {
  let handler: ((d: Delivery) => Promise<void>) | undefined;
  const queue: QueueBackend = {
    enqueue: () => Promise.resolve(),
    consume: (h) => (handler = h),
    depth: () => Promise.resolve(0),
    close: () => Promise.resolve(),
  };
  const deliver = async (
    request: QueuedRequest,
    opts: { attempt?: number; interrupted?: boolean } = {},
  ): Promise<Settled> => {
    const s: Settled = { begun: false, acked: false };
    await handler!({
      request,
      attempt: opts.attempt ?? 1,
      interrupted: opts.interrupted ?? false,
      begin: () => (s.begun = true, Promise.resolve()),
      ack: () => (s.acked = true, Promise.resolve()),
      retry: (ms) => (s.retryMs = ms, Promise.resolve()),
    });
    return s;
  };
  return { queue, deliver };
}

function request(id: string, extra: Partial<QueuedRequest> = {}): QueuedRequest {
  return {
    id,
    name: "fn",
    namespace: "openfaas-fn",
    method: "POST",
    pathAndQuery: "/run?x=1",
    headers: [["content-type", "text/plain"]],
    body: new TextEncoder().encode(`in ${id}`),
    callbackUrl: "http://127.0.0.1:9/cb",
    acceptedAt: Date.now(),
    ...extra,
  };
}

interface Callback {
  url: string;
  headers: Headers;
  body: string;
}

function setup(opts: Partial<WorkerOptions> & { callbackStatus?: () => number } = {}) {
  const { queue, deliver } = fakeQueue();
  const callbacks: Callback[] = [];
  const invoked: Request[] = [];
  const worker = startWorker({
    queue,
    log: silentLogger,
    invoke: (req) => {
      invoked.push(req);
      return Promise.resolve(new Response("ok", { headers: { "x-fn": "1" } }));
    },
    lookup: () => Promise.resolve({}),
    fetch: async (input, init) => {
      callbacks.push({
        url: String(input),
        headers: new Headers(init?.headers),
        body: await new Response(init?.body).text(),
      });
      return new Response(null, { status: opts.callbackStatus?.() ?? 200 });
    },
    callback: { backoff: { baseMs: 5, maxMs: 20 } },
    ...opts,
  });
  return { deliver, callbacks, invoked, worker };
}

Deno.test("retryDelayMs doubles from the base up to the cap", async (t) => {
  const cases = [
    { attempt: 1, want: 1000 },
    { attempt: 2, want: 2000 },
    { attempt: 3, want: 4000 },
    { attempt: 5, want: 16000 },
    { attempt: 6, want: 30000 },
    { attempt: 20, want: 30000 },
  ];
  for (const c of cases) {
    await t.step(`attempt ${c.attempt} → ${c.want} ms`, () => {
      assert.equal(retryDelayMs(c.attempt, { baseMs: 1000, maxMs: 30_000 }), c.want);
    });
  }
});

Deno.test("concurrencyOf reads the annotation, else the default", async (t) => {
  const cases: Array<{ v?: string; want: number }> = [
    { v: "2", want: 2 },
    { v: "0", want: 8 },
    { v: "-1", want: 8 },
    { v: "1.5", want: 8 },
    { v: "abc", want: 8 },
    { want: 8 },
  ];
  for (const c of cases) {
    await t.step(`${c.v ?? "no annotation"} → ${c.want}`, () => {
      const a: Record<string, string> = c.v === undefined
        ? {}
        : { [QUEUE_CONCURRENCY_ANNOTATION]: c.v };
      assert.equal(concurrencyOf(a, 8), c.want);
    });
  }
});

Deno.test("worker: a success is invoked once and its body and headers go to the callback", async () => {
  const { deliver, callbacks, invoked, worker } = setup();
  const s = await deliver(request("c1"));
  assert.deepEqual(s, { begun: true, acked: true });
  assert.equal(invoked.length, 1);
  assert.equal(invoked[0].method, "POST");
  assert.equal(invoked[0].headers.get("x-call-id"), "c1");
  assert.equal(await invoked[0].text(), "in c1");
  assert.equal(callbacks.length, 1);
  const cb = callbacks[0];
  assert.equal(cb.url, "http://127.0.0.1:9/cb");
  assert.equal(cb.body, "ok");
  assert.equal(cb.headers.get("x-function-status"), "200");
  assert.equal(cb.headers.get("x-call-id"), "c1");
  assert.ok(Number(cb.headers.get("x-duration-seconds")) >= 0);
  assert.equal(cb.headers.get("x-fn"), "1", "the function's headers are passed on");
  await worker.close();
});

Deno.test("worker: 429/502/503/504 and unreachable replicas are retried with backoff", async (t) => {
  const failures: Array<[string, () => Promise<Response>]> = [
    ["429", () => Promise.resolve(new Response("busy", { status: 429 }))],
    ["502", () => Promise.resolve(new Response("", { status: 502 }))],
    ["503", () => Promise.resolve(new Response("", { status: 503 }))],
    ["504", () => Promise.resolve(new Response("", { status: 504 }))],
    ["connection refused", () => Promise.reject(new BadGatewayError("cannot reach"))],
  ];
  for (const [name, invoke] of failures) {
    await t.step(name, async () => {
      const { deliver, callbacks, worker } = setup({
        invoke,
        retry: { baseMs: 100, maxMs: 250 },
        maxAttempts: 4,
      });
      const delays: number[] = [];
      for (let attempt = 1; attempt <= 3; attempt++) {
        const s = await deliver(request("r"), { attempt });
        assert.equal(s.acked, false);
        delays.push(s.retryMs!);
      }
      assert.deepEqual(delays, [100, 200, 250]);
      assert.equal(callbacks.length, 0, "no callback while it is retried");
      const last = await deliver(request("r"), { attempt: 4 });
      assert.equal(last.acked, true, "the last attempt settles");
      assert.equal(last.retryMs, undefined);
      assert.equal(callbacks.length, 1);
      const want = name === "connection refused" ? "502" : name;
      assert.equal(callbacks[0].headers.get("x-function-status"), want);
      await worker.close();
    });
  }
});

Deno.test("worker: other errors are not retried", async () => {
  const { deliver, callbacks, worker } = setup({
    invoke: () => Promise.resolve(new Response("bad", { status: 500 })),
  });
  const s = await deliver(request("e"));
  assert.deepEqual(s, { begun: true, acked: true });
  assert.equal(callbacks[0].headers.get("x-function-status"), "500");
  assert.equal(callbacks[0].body, "bad");
  await worker.close();
});

Deno.test("worker: at most the annotated number of invocations per function at once", async () => {
  let active = 0;
  let most = 0;
  const { deliver, worker } = setup({
    lookup: (name) =>
      Promise.resolve<Record<string, string>>(
        name === "fn" ? { [QUEUE_CONCURRENCY_ANNOTATION]: "2" } : {},
      ),
    invoke: async (req) => {
      const fn = new URL(req.url).pathname;
      active++;
      most = Math.max(most, active);
      await new Promise((r) => setTimeout(r, fn === "/run" ? 30 : 1));
      active--;
      return new Response("ok");
    },
  });
  await Promise.all(Array.from({ length: 8 }, (_, i) => deliver(request(`p${i}`))));
  assert.equal(most, 2);
  await worker.close();
});

Deno.test("worker: the default limit is 8 per function, and functions do not share it", async () => {
  const active = new Map<string, number>();
  const most = new Map<string, number>();
  const { deliver, worker } = setup({
    invoke: async (req) => {
      const fn = req.headers.get("x-fn-name")!;
      active.set(fn, (active.get(fn) ?? 0) + 1);
      most.set(fn, Math.max(most.get(fn) ?? 0, active.get(fn)!));
      await new Promise((r) => setTimeout(r, 20));
      active.set(fn, active.get(fn)! - 1);
      return new Response("ok");
    },
  });
  const req = (i: number, name: string) =>
    request(`${name}${i}`, { name, headers: [["x-fn-name", name]] });
  await Promise.all([
    ...Array.from({ length: 20 }, (_, i) => deliver(req(i, "a"))),
    ...Array.from({ length: 20 }, (_, i) => deliver(req(i, "b"))),
  ]);
  assert.equal(most.get("a"), 8);
  assert.equal(most.get("b"), 8);
  await worker.close();
});

Deno.test("worker: an interrupted request is reported failed, not invoked", async () => {
  const { deliver, callbacks, invoked, worker } = setup();
  const s = await deliver(request("i1"), { interrupted: true, attempt: 2 });
  assert.deepEqual(s, { begun: false, acked: true });
  assert.equal(invoked.length, 0);
  assert.equal(callbacks[0].headers.get("x-function-status"), "500");
  assert.equal(callbacks[0].headers.get("x-call-id"), "i1");
  assert.match(callbacks[0].body, /result of this call is unknown: the appliance stopped/);
  await worker.close();
});

Deno.test("worker: a function that is gone is reported failed with 404", async () => {
  const { deliver, callbacks, invoked, worker } = setup({
    lookup: () => Promise.resolve(undefined),
  });
  const s = await deliver(request("gone"));
  assert.deepEqual(s, { begun: false, acked: true });
  assert.equal(invoked.length, 0);
  assert.equal(callbacks[0].headers.get("x-function-status"), "404");
  assert.match(callbacks[0].body, /function "fn.openfaas-fn" not found/);
  await worker.close();
});

Deno.test("worker: a failing callback is retried in the background without blocking", async () => {
  let calls = 0;
  const { deliver, callbacks, worker } = setup({ callbackStatus: () => ++calls < 3 ? 503 : 200 });
  const s = await deliver(request("cb"));
  assert.equal(s.acked, true, "acked after the first callback attempt");
  const deadline = Date.now() + 2000;
  while (callbacks.length < 3 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal(callbacks.length, 3);
  assert.ok(callbacks.every((c) => c.headers.get("x-call-id") === "cb"));
  await worker.close();
});

Deno.test("worker: without a callback URL nothing is posted", async () => {
  const { deliver, callbacks, invoked, worker } = setup();
  const s = await deliver(request("quiet", { callbackUrl: undefined }));
  assert.deepEqual(s, { begun: true, acked: true });
  assert.equal(invoked.length, 1);
  assert.equal(callbacks.length, 0);
  await worker.close();
});

Deno.test("worker: a GET is replayed without a body, with its query", async () => {
  let seen: { method: string; path: string; body: string } | undefined;
  const { deliver, worker } = setup({
    invoke: async (req, target, pathAndQuery) => {
      seen = { method: req.method, path: `${target.path}|${pathAndQuery}`, body: await req.text() };
      return new Response("ok");
    },
  });
  await deliver(request("g", { method: "GET", pathAndQuery: "/a/b?c=d", body: new Uint8Array() }));
  assert.deepEqual(seen, { method: "GET", path: "/a/b|/a/b?c=d", body: "" });
  await worker.close();
});

Deno.test("worker: on close, deliveries waiting for a slot are left queued", async () => {
  let release = () => {};
  const invoked: string[] = [];
  const { deliver, worker } = setup({
    concurrency: 1,
    invoke: async (req) => {
      invoked.push(req.headers.get("x-call-id")!);
      await new Promise<void>((r) => (release = r));
      return new Response("ok");
    },
  });
  const first = deliver(request("running"));
  const waiting = deliver(request("waiting"));
  while (invoked.length === 0) await new Promise((r) => setTimeout(r, 1));
  const closed = worker.close();
  assert.deepEqual(await waiting, { begun: false, acked: false }, "not begun, not settled");
  release();
  assert.deepEqual(await first, { begun: true, acked: true }, "the running one finishes");
  await closed;
  assert.deepEqual(invoked, ["running"]);
});
