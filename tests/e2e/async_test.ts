/**
 * End-to-end: `/async-function/` through a real `faasd up` with a function on the real
 * containerd — 202 with `X-Call-Id` and the result posted to a callback server on the host; 404
 * for a missing function; kill -9 of the appliance with queued work, after which every accepted
 * request is invoked exactly once or reported failed; and a full disk (a small tmpfs as the
 * queue directory) answered with 503 and a clear message, then 202 again once space is back.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import { Containerd } from "../../src/containerd/client.ts";
import { api, cleanUpAppliance, createNamespace, startAppliance } from "../fixtures/appliance.ts";
import { hostPlatform } from "../../src/images/platform.ts";
import { buildImage, busyboxLayer } from "../fixtures/oci_image.ts";
import { startRegistry } from "../fixtures/registry.ts";
import { pushImage } from "../fixtures/registry_push.ts";
import { tar } from "../fixtures/tar.ts";
import { until } from "../fixtures/poll.ts";

const SOCKET = "/run/containerd/containerd.sock";

/**
 * A function whose `count` endpoint appends its query to /tmp/calls (inside the replica, so the
 * record outlives the appliance) and then sleeps; `calls` prints the file; `echo` echoes.
 */
function countingImage() {
  const enc = new TextEncoder();
  const cgi = (body: string) =>
    enc.encode(`#!/bin/sh\necho "Content-Type: text/plain"\necho\n${body}\n`);
  return buildImage({
    architecture: hostPlatform().architecture,
    layers: [
      { tar: busyboxLayer(), compression: "gzip" },
      {
        tar: tar([
          { type: "directory", name: "www" },
          { type: "directory", name: "www/cgi-bin" },
          ...Object.entries({
            count: 'echo "$QUERY_STRING" >> /tmp/calls; sleep 0.5; echo "counted $QUERY_STRING"',
            calls: "cat /tmp/calls 2>/dev/null; true",
            mark: 'echo "$QUERY_STRING" >> /tmp/marks; echo "marked $QUERY_STRING"',
            marks: "cat /tmp/marks 2>/dev/null; true",
            echo: "cat",
          }).map(([name, body]) => ({
            type: "file" as const,
            name: `www/cgi-bin/${name}`,
            mode: 0o755,
            content: cgi(body),
          })),
        ]),
        compression: "gzip",
      },
    ],
    config: {
      Cmd: ["/bin/sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"],
      Env: ["PATH=/bin"],
    },
  });
}

interface Callback {
  id: string;
  status: number;
  duration: number;
  body: string;
  headers: Headers;
}

/** A callback receiver on 127.0.0.1 that keeps what it is sent. */
function callbackServer() {
  const received: Callback[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    received.push({
      id: req.headers.get("x-call-id") ?? "",
      status: Number(req.headers.get("x-function-status")),
      duration: Number(req.headers.get("x-duration-seconds")),
      body: await req.text(),
      headers: req.headers,
    });
    return new Response("thanks");
  });
  return { url: `http://127.0.0.1:${server.addr.port}/cb`, received, server };
}

async function run(cmd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Fills the file system holding `dir` with one file; returns the file's path. */
async function fill(dir: string): Promise<string> {
  const file = join(dir, "filler");
  const fh = await open(file, "w");
  const chunk = new Uint8Array(64 * 1024);
  try {
    for (;;) await fh.write(chunk);
  } catch (err) {
    if ((err as { code?: string }).code !== "ENOSPC") throw err;
  }
  // The last pages: whatever a smaller write still finds.
  for (const size of [4096, 512, 1]) {
    try {
      for (;;) await fh.write(new Uint8Array(size));
    } catch { /* full */ }
  }
  await fh.close();
  return file;
}

Deno.test("async: 202 and callbacks, 404, kill -9 with queued work, full disk", async (t) => {
  await using registry = await startRegistry();
  await pushImage(registry, "fn/counter", "1", countingImage());
  const client = await Containerd.connect({ socket: SOCKET });
  const hadDefault = (await client.namespaces.list()).some((n) => n.name === "openfaas-fn");
  const ns = `fasy-${randomBytes(3).toString("hex")}`;
  const callbacks = callbackServer();
  let app = await startAppliance();
  let mounted = "";
  const fn = `counter.${ns}`;
  const post = (path: string, init: RequestInit = {}) =>
    fetch(`${app.url}/async-function/${fn}${path}`, { method: "POST", ...init });
  try {
    await createNamespace(app, ns);
    const deployed = await api(app, "POST", "/system/functions", {
      service: "counter",
      image: `${registry.host}/fn/counter:1`,
      namespace: ns,
      annotations: { "com.openfaas.queue.concurrency": "2" },
    });
    assert.equal(deployed.status, 202, deployed.text);
    await until("the function to answer", async () => {
      const res = await fetch(`${app.url}/function/${fn}/cgi-bin/calls`);
      await res.body?.cancel();
      return res.status === 200;
    });

    await t.step("202 with X-Call-Id, then the result posted to the callback", async () => {
      const res = await post("/cgi-bin/echo?x=1", {
        headers: { "x-callback-url": callbacks.url, "content-type": "text/plain" },
        body: "hello async",
      });
      assert.equal(res.status, 202, await res.text());
      const id = res.headers.get("x-call-id")!;
      assert.ok(id);
      await until("the callback", () => callbacks.received.some((c) => c.id === id));
      const cb = callbacks.received.find((c) => c.id === id)!;
      assert.equal(cb.status, 200);
      assert.equal(cb.body, "hello async");
      assert.ok(cb.duration > 0, `X-Duration-Seconds ${cb.duration}`);
      assert.equal(cb.headers.get("content-type"), "text/plain");
    });

    await t.step("a missing function is 404, never 202", async () => {
      const res = await fetch(`${app.url}/async-function/nope.${ns}`, {
        method: "POST",
        body: "x",
      });
      assert.equal(res.status, 404);
      assert.match(await res.text(), /not found/);
    });

    await t.step(
      "kill -9 with queued work: every request invoked once or reported failed",
      async () => {
        const ids = Array.from({ length: 30 }, (_, i) => `k${i}-${randomBytes(3).toString("hex")}`);
        for (const id of ids) {
          const res = await post(`/cgi-bin/count?${id}`, {
            headers: { "x-call-id": id, "x-callback-url": callbacks.url },
          });
          assert.equal(res.status, 202, await res.text());
          assert.equal(res.headers.get("x-call-id"), id);
        }
        const reported = () =>
          new Set(callbacks.received.map((c) => c.id).filter((id) => ids.includes(id)));
        await until("a few results", () => reported().size >= 4);
        await app.kill();
        const before = reported().size;
        assert.ok(before < ids.length, "work was still queued at the kill");
        app = await app.restart();
        await until("every request reported", () => reported().size === ids.length, 90_000);
        const listed = await (await fetch(`${app.url}/function/${fn}/cgi-bin/calls`)).text();
        const invocations = new Map<string, number>();
        for (const line of listed.split("\n").filter(Boolean)) {
          invocations.set(line, (invocations.get(line) ?? 0) + 1);
        }
        let failed = 0;
        for (const id of ids) {
          const n = invocations.get(id) ?? 0;
          const results = callbacks.received.filter((c) => c.id === id);
          assert.ok(n <= 1, `${id} invoked ${n} times`);
          if (results.some((c) => c.status === 200)) {
            assert.equal(n, 1, `${id} reported done but invoked ${n} times`);
            assert.ok(results.some((c) => c.body === `counted ${id}\n`));
          } else {
            // Interrupted by the kill: its result is unknown, and it says so.
            failed++;
            assert.ok(results.every((c) => c.status === 500), JSON.stringify(results));
            assert.match(results[0].body, /result of this call is unknown/);
          }
        }
        assert.ok(failed <= 2, `${failed} reported failed; at most the 2 in flight at the kill`);
        console.log(`kill -9 after ${before}/30 results; ${failed} reported failed as interrupted`);
      },
    );

    await t.step(
      "kill -9 while requests are being accepted: none answered 202 is lost",
      async () => {
        const accepted: string[] = [];
        let killed = false;
        const clients = Array.from({ length: 8 }, async (_, c) => {
          for (let i = 0; !killed && i < 400; i++) {
            const id = `m${c}-${i}-${randomBytes(3).toString("hex")}`;
            try {
              const res = await post(`/cgi-bin/mark?${id}`, {
                headers: { "x-call-id": id, "x-callback-url": callbacks.url },
                body: id,
              });
              await res.body?.cancel();
              if (res.status === 202) accepted.push(id);
            } catch {
              return; // the connection broke at the kill: not accepted
            }
          }
        });
        await until("requests to be accepted", () => accepted.length >= 150);
        killed = true;
        await app.kill();
        await Promise.all(clients);
        const atKill = new Set(accepted);
        app = await app.restart();
        const reported = () =>
          new Set(callbacks.received.map((c) => c.id).filter((id) => atKill.has(id)));
        await until(
          "every accepted request reported",
          () => reported().size === atKill.size,
          90_000,
        );
        const listed = await (await fetch(`${app.url}/function/${fn}/cgi-bin/marks`)).text();
        const invocations = new Map<string, number>();
        for (const line of listed.split("\n").filter(Boolean)) {
          invocations.set(line, (invocations.get(line) ?? 0) + 1);
        }
        let failed = 0;
        for (const id of atKill) {
          const n = invocations.get(id) ?? 0;
          assert.ok(n <= 1, `${id} invoked ${n} times`);
          const results = callbacks.received.filter((c) => c.id === id);
          if (results.some((c) => c.status === 200)) assert.equal(n, 1, id);
          else failed++;
        }
        assert.ok(failed <= 2, `${failed} reported failed`);
        console.log(
          `kill -9 during intake: ${atKill.size} accepted, all reported, ${failed} failed`,
        );
      },
    );

    await t.step(
      "a full disk answers 503 with a clear message, then 202 once space is back",
      async () => {
        await app.stop();
        const queueDir = join(app.dataDir, "queue");
        await mkdir(queueDir, { recursive: true });
        await run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", queueDir);
        mounted = queueDir;
        app = await app.restart();
        const filler = await fill(queueDir);
        const big = "b".repeat(64 * 1024);
        const refused = await post("/cgi-bin/echo", { body: big });
        assert.equal(refused.status, 503);
        const message = await refused.text();
        assert.match(message, /^async queue cannot store the request: disk full under /);
        assert.ok(message.includes(queueDir), message);
        // A restart on the full disk: the appliance comes up and still refuses clearly.
        await app.stop();
        app = await app.restart();
        const again = await post("/cgi-bin/echo", { body: big });
        assert.equal(again.status, 503);
        assert.match(await again.text(), /disk full under /);
        await rm(filler);
        const accepted = await post("/cgi-bin/echo", {
          body: big,
          headers: { "x-callback-url": callbacks.url },
        });
        assert.equal(accepted.status, 202, await accepted.text());
        const id = accepted.headers.get("x-call-id")!;
        await until("its callback", () => callbacks.received.some((c) => c.id === id));
        const cb = callbacks.received.find((c) => c.id === id)!;
        assert.equal(cb.status, 200);
        assert.equal(cb.body, big);
      },
    );
  } catch (err) {
    console.error(app.log());
    throw err;
  } finally {
    const failures: string[] = [];
    await app.stop().catch(() => {});
    if (mounted) await run("umount", mounted).catch((err) => failures.push(String(err)));
    failures.push(
      ...await cleanUpAppliance(app, client, {
        namespace: ns,
        hadDefaultNamespace: hadDefault,
      }).catch((err) => [String(err)]),
    );
    await callbacks.server.shutdown();
    await client.close();
    assert.deepEqual(failures, [], "cleanup");
  }
});
