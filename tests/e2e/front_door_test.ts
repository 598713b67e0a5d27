/**
 * End-to-end: the gateway's front door with a real function (the busybox httpd CGI image, which
 * closes its connection after each answer) in `faasd up`: an echoed POST body, a query string, a
 * HEAD, pipelined requests on one kept-alive client connection, Connection: close, the body limit
 * (413), a malformed head (400, connection closed), an unknown function (404), a function call
 * and then an API call on the same connection, and the invocation metrics counting it all.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Containerd } from "../../src/containerd/client.ts";
import { api, createNamespace, finishAppliance, startAppliance } from "../fixtures/appliance.ts";
import { functionImage } from "../fixtures/function_image.ts";
import { startRegistry } from "../fixtures/registry.ts";
import { pushImage } from "../fixtures/registry_push.ts";

const SOCKET = "/run/containerd/containerd.sock";
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Sends `text` on a new connection and reads until the gateway closes it. */
async function raw(port: number, text: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(enc.encode(text));
    const chunks: string[] = [];
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) return chunks.join("");
      chunks.push(dec.decode(buf.subarray(0, n)));
    }
  } finally {
    conn.close();
  }
}

Deno.test("front door: function calls through a real function, everything else behind it", async (t) => {
  await using registry = await startRegistry();
  await pushImage(registry, "fn/door", "1", functionImage("door-1"));
  const client = await Containerd.connect({ socket: SOCKET });
  const hadDefault = (await client.namespaces.list()).some((n) => n.name === "openfaas-fn");
  const ns = `fdoor-${randomBytes(3).toString("hex")}`;
  const app = await startAppliance({ args: ["--max-body-size", "1Ki"] });
  const port = Number(new URL(app.url).port);
  const fn = `${app.url}/function/door.${ns}`;
  try {
    await createNamespace(app, ns);
    const deployed = await api(app, "POST", "/system/functions", {
      service: "door",
      image: `${registry.host}/fn/door:1`,
      namespace: ns,
    });
    assert.equal(deployed.status, 202, deployed.text);

    await t.step("a POST body echoed, a query string, a HEAD", async () => {
      // The first call waits for the replica to be ready (the manager's routing).
      const echo = await fetch(`${fn}/cgi-bin/echo`, { method: "POST", body: "hello door" });
      assert.equal(echo.status, 200);
      assert.equal(await echo.text(), "hello door");
      assert.match(echo.headers.get("x-call-id") ?? "", /^[0-9a-f-]{36}$/);
      assert.match(echo.headers.get("x-duration-seconds") ?? "", /^\d+\.\d{6}$/);
      const env = await (await fetch(`${fn}/cgi-bin/env?a=1&b=two`)).text();
      assert.match(env, /^QUERY_STRING=a=1&b=two$/m);
      assert.match(env, /^HTTP_X_CALL_ID=[0-9a-f-]{36}$/m);
      assert.match(env, new RegExp(`^HTTP_X_FORWARDED_HOST=127.0.0.1:${port}$`, "m"));
      const head = await fetch(`${fn}/`, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), "");
    });

    await t.step("pipelined requests on one connection, answered in order", async () => {
      const text = await raw(
        port,
        `GET /function/door.${ns}/ HTTP/1.1\r\nHost: gw\r\n\r\n` +
          `POST /function/door.${ns}/cgi-bin/echo HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\n\r\nabc` +
          `GET /function/door.${ns}/cgi-bin/version HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`,
      );
      const order = [...text.matchAll(/hello from door-1|abc|door-1\n/g)].map((m) => m[0]);
      assert.deepEqual(order, ["hello from door-1", "abc", "door-1\n"], text);
      assert.equal(text.match(/HTTP\/1\.1 200 /g)?.length, 3, text);
      assert.match(text, /connection: close\r\n/);
    });

    await t.step(
      "413 over the body limit, 400 for a malformed head, 404 for no function",
      async () => {
        const big = await fetch(`${fn}/cgi-bin/echo`, { method: "POST", body: "x".repeat(2000) });
        assert.equal(big.status, 413);
        assert.match(await big.text(), /larger than the limit of 1024 bytes/);
        const bad = await raw(port, `GET /function/door.${ns}/ HTTP/1.1\r\nno colon\r\n\r\n`);
        assert.match(bad, /^HTTP\/1\.1 400 Bad Request\r\n[^]*connection: close/);
        const missing = await fetch(`${app.url}/function/nope.${ns}/`);
        assert.equal(missing.status, 404);
        await missing.body?.cancel();
      },
    );

    await t.step("a function call, then the API on the same connection", async () => {
      const text = await raw(
        port,
        `GET /function/door.${ns}/cgi-bin/version HTTP/1.1\r\nHost: gw\r\n\r\n` +
          `GET /system/functions?namespace=${ns} HTTP/1.1\r\nHost: gw\r\n` +
          `Authorization: ${app.auth}\r\nConnection: close\r\n\r\n`,
      );
      assert.match(text, /door-1\n[^]*HTTP\/1\.1 200 OK[^]*"name":"door"/);
    });

    await t.step("the invocations are counted", async () => {
      const metrics = await (await fetch(`${app.url}/metrics`)).text();
      const count = (code: number) =>
        Number(
          metrics.match(
            new RegExp(
              `^gateway_function_invocation_total\\{function_name="door\\.${ns}",code="${code}"\\} (\\d+)$`,
              "m",
            ),
          )?.[1] ?? 0,
        );
      // 200: echo, env, HEAD, 3 pipelined, version; the 413 was refused before the call.
      assert.equal(count(200), 7, metrics);
      assert.equal(count(413), 0);
      const list = await api(app, "GET", `/system/functions?namespace=${ns}`);
      assert.equal(list.json()[0].invocationCount, 7);
    });
  } finally {
    await finishAppliance(app, client, { namespace: ns, hadDefaultNamespace: hadDefault });
  }
});
