/**
 * End-to-end: `faasd up` as a child process (deno run main.ts up) with its own data dir, free
 * ports and network, against the real containerd.
 */

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Containerd } from "../../src/containerd/client.ts";
import { removeTestNetwork, startAppliance, testNetwork } from "../fixtures/appliance.ts";

Deno.test("faasd up serves health and auth-protected system info, and stops on SIGTERM", async () => {
  const app = await startAppliance();
  try {
    const password = (await readFile(join(app.dataDir, "secrets/basic-auth-password"), "utf8"))
      .trim();
    assert.ok(password.length >= 40);
    assert.match(app.log(), /faas-cli login --username admin --password-stdin/);
    assert.doesNotMatch(app.log(), new RegExp(password), "the password never reaches the log");

    const health = await fetch(`${app.url}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();

    const denied = await fetch(`${app.url}/system/info`);
    assert.equal(denied.status, 401);
    await denied.body?.cancel();

    const info = await fetch(`${app.url}/system/info`, { headers: { authorization: app.auth } });
    assert.equal(info.status, 200);
    const body = await info.json();
    assert.equal(body.provider.provider, "faasd-ts");
    assert.equal(body.provider.orchestration, "containerd");
    assert.ok(body.arch);

    // The default namespace is created when it is first used.
    const client = await Containerd.connect({ socket: "/run/containerd/containerd.sock" });
    const hadDefault = (await client.namespaces.list()).some((n) => n.name === "openfaas-fn");
    try {
      const list = await fetch(`${app.url}/system/functions`, {
        headers: { authorization: app.auth },
      });
      assert.equal(list.status, 200);
      assert.deepEqual(await list.json(), []);
      const ns = await client.namespaces.get("openfaas-fn");
      assert.equal(ns.labels.openfaas, "1");
    } finally {
      if (!hadDefault) await client.namespaces.delete("openfaas-fn").catch(() => {});
      await client.close();
    }

    assert.equal(await app.stop(), 0, app.log());
    assert.match(app.log(), /"msg":"stopping".*"signal":"SIGTERM"/);
  } finally {
    await app.kill().catch(() => {});
    await removeTestNetwork(app.network, app.dataDir);
  }
});

Deno.test("faasd up keeps the admin password across restarts", async () => {
  const first = await startAppliance();
  let second;
  try {
    const file = join(first.dataDir, "secrets/basic-auth-password");
    const password = await readFile(file, "utf8");
    await first.stop();
    second = await first.restart();
    await second.stop();
    assert.equal(await readFile(file, "utf8"), password);
  } finally {
    await first.kill().catch(() => {});
    await second?.kill().catch(() => {});
    await removeTestNetwork(first.network, first.dataDir);
  }
});

Deno.test("stalled and slow clients do not hold up others", async () => {
  const app = await startAppliance();
  const port = Number(new URL(app.url).port);
  const stalled: Deno.TcpConn[] = [];
  try {
    const enc = new TextEncoder();
    // Ten clients that send half a request line and then nothing.
    for (let i = 0; i < 10; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(enc.encode("GET /system/info HT"));
      stalled.push(conn);
    }
    // Ten that announce a body and send only its first byte.
    for (let i = 0; i < 10; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(
        enc.encode(
          `POST /system/functions HTTP/1.1\r\nHost: x\r\nAuthorization: ${app.auth}\r\n` +
            "Content-Length: 1000\r\n\r\n{",
        ),
      );
      stalled.push(conn);
    }
    // Everyone else is served at once.
    const answers = await Promise.all(
      Array.from(
        { length: 20 },
        () => fetch(`${app.url}/system/info`, { headers: { authorization: app.auth } }),
      ),
    );
    for (const res of answers) {
      assert.equal(res.status, 200);
      await res.body?.cancel();
    }
  } finally {
    for (const conn of stalled) conn.close();
    await app.stop().catch(() => {});
    await removeTestNetwork(app.network, app.dataDir);
  }
});

Deno.test("faasd provider serves the provider API alone, with auth, and stops on SIGTERM", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "faasd-provider-" });
  const network = testNetwork();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "-A", "main.ts", "provider", "--data-dir", dataDir, "--provider-port", "0"],
      ...["--bridge", network.bridge, "--subnet", network.subnet],
    ],
    cwd: new URL("../../", import.meta.url),
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let log = "";
  try {
    let port = 0;
    while (!port) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`faasd provider exited early:\n${log}`);
      log += value;
      port = Number(log.match(/faasd-ts is up on port (\d+)/)?.[1] ?? 0);
    }
    assert.match(log, /"msg":"provider listening"/);
    const password = (await readFile(join(dataDir, "secrets/basic-auth-password"), "utf8")).trim();
    const url = `http://127.0.0.1:${port}`;
    const denied = await fetch(`${url}/system/functions`);
    assert.equal(denied.status, 401);
    await denied.body?.cancel();
    const info = await fetch(`${url}/system/info`, {
      headers: { authorization: `Basic ${btoa(`admin:${password}`)}` },
    });
    assert.equal((await info.json()).provider.provider, "faasd-ts");
    // The gateway's routes are not on the provider port.
    const metrics = await fetch(`${url}/metrics`);
    assert.equal(metrics.status, 404);
    await metrics.body?.cancel();
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0, log);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await reader.cancel().catch(() => {});
    await removeTestNetwork(network, dataDir);
  }
});
