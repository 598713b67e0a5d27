/**
 * `/async-function/` through the gateway's routes with the real intake and a fake queue: 202 with
 * the call ID once stored, 404 (never 202) for a missing function, 503 with the queue's message
 * when it cannot store, 400 for a bad callback URL, 413 for a body over the limit.
 */

import assert from "node:assert/strict";
import { UnavailableError } from "../../../src/errors.ts";
import { createGatewayHandler } from "../../../src/gateway/router.ts";
import { silentLogger } from "../../../src/log.ts";
import { createIntake } from "../../../src/queue/intake.ts";
import type { QueuedRequest } from "../../../src/queue/types.ts";

function gateway(opts: { full?: boolean } = {}) {
  const stored: QueuedRequest[] = [];
  const handler = createGatewayHandler({
    checkAuth: () => true,
    provider: () => Promise.resolve(new Response("provider")),
    invoke: () => Promise.resolve(new Response("sync")),
    enqueue: createIntake({
      queue: {
        enqueue: (r) => {
          if (opts.full) {
            return Promise.reject(
              new UnavailableError("async queue cannot store the request: disk full under /q"),
            );
          }
          stored.push(r);
          return Promise.resolve();
        },
      },
      exists: (name, ns) => Promise.resolve(name === "echo" && ns === "openfaas-fn"),
      now: () => 42,
    }),
    maxBodyBytes: 1000,
    log: silentLogger,
  });
  return { handler, stored };
}

Deno.test("async: stored whole and answered 202 with a new call ID", async () => {
  const { handler, stored } = gateway();
  const res = await handler(
    new Request("http://gw/async-function/echo/a/b?x=1", {
      method: "POST",
      headers: {
        "content-type": "text/plain",
        "x-callback-url": "http://127.0.0.1:9999/cb",
        connection: "keep-alive",
        "x-extra": "yes",
      },
      body: "hello",
    }),
  );
  assert.equal(res.status, 202);
  const id = res.headers.get("x-call-id")!;
  assert.match(id, /^[0-9a-f-]{36}$/);
  assert.equal(stored.length, 1);
  const r = stored[0];
  assert.equal(r.id, id);
  assert.equal(r.name, "echo");
  assert.equal(r.namespace, "openfaas-fn");
  assert.equal(r.method, "POST");
  assert.equal(r.pathAndQuery, "/a/b?x=1");
  assert.equal(new TextDecoder().decode(r.body), "hello");
  assert.equal(r.callbackUrl, "http://127.0.0.1:9999/cb");
  assert.equal(r.acceptedAt, 42);
  const names = r.headers.map(([k]) => k);
  assert.ok(names.includes("x-extra") && names.includes("content-type"), names.join());
  assert.ok(!names.includes("connection") && !names.includes("host"), names.join());
});

Deno.test("async: the caller's X-Call-Id is kept", async () => {
  const { handler, stored } = gateway();
  const res = await handler(
    new Request("http://gw/async-function/echo.openfaas-fn", {
      method: "POST",
      headers: { "x-call-id": "my-id-1" },
      body: "",
    }),
  );
  assert.equal(res.status, 202);
  assert.equal(res.headers.get("x-call-id"), "my-id-1");
  assert.equal(stored[0].pathAndQuery, "/");
});

Deno.test("async: refusals", async (t) => {
  const cases = [
    {
      name: "a missing function is 404, nothing stored",
      path: "/async-function/nope",
      init: {},
      status: 404,
      body: /function "nope.openfaas-fn" not found/,
    },
    {
      name: "a callback URL that is not http(s) is 400",
      path: "/async-function/echo",
      init: { headers: { "x-callback-url": "ftp://x/y" } },
      status: 400,
      body: /X-Callback-Url "ftp:\/\/x\/y" must be an http or https URL/,
    },
    {
      name: "a body over the limit is 413",
      path: "/async-function/echo",
      init: { body: "x".repeat(2000) },
      status: 413,
      body: /larger than the limit/,
    },
    {
      name: "a full disk is 503 with the queue's message",
      path: "/async-function/echo",
      init: {},
      full: true,
      status: 503,
      body: /^async queue cannot store the request: disk full under \/q/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const { handler, stored } = gateway({ full: c.full });
      const res = await handler(
        new Request(`http://gw${c.path}`, { method: "POST", body: "x", ...c.init }),
      );
      assert.equal(res.status, c.status);
      assert.match(await res.text(), c.body);
      assert.equal(stored.length, 0);
    });
  }
});
