/**
 * End-to-end: `faasd up` as a child process (deno run main.ts up) with its own data dir and a
 * free port, against the real containerd.
 */

import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Starts `faasd up` and resolves once it has printed the login line with its port. */
async function startUp(dataDir: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "up", "--data-dir", dataDir, "--port", "0"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let log = "";
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let port = 0;
  while (!port) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`faasd up exited before listening:\n${log}`);
    log += value;
    port = Number(log.match(/faasd-ts is up on port (\d+)\. Log in with:\n.*\n/)?.[1] ?? 0);
  }
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return log;
      log += value;
    }
  })();
  return { child, port, output: () => rest, log: () => log };
}

Deno.test("faasd up serves health and auth-protected system info, and stops on SIGTERM", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "faasd-up-"));
  const up = await startUp(dataDir);
  try {
    const base = `http://127.0.0.1:${up.port}`;
    const password = (await readFile(join(dataDir, "secrets/basic-auth-password"), "utf8")).trim();
    assert.ok(password.length >= 40);
    assert.match(up.log(), /faas-cli login --username admin --password-stdin/);
    assert.doesNotMatch(up.log(), new RegExp(password), "the password never reaches the log");

    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();

    const denied = await fetch(`${base}/system/info`);
    assert.equal(denied.status, 401);
    await denied.body?.cancel();

    const info = await fetch(`${base}/system/info`, {
      headers: { authorization: `Basic ${btoa(`admin:${password}`)}` },
    });
    assert.equal(info.status, 200);
    const body = await info.json();
    assert.equal(body.provider.provider, "faasd-ts");
    assert.equal(body.provider.orchestration, "containerd");
    assert.ok(body.arch);

    up.child.kill("SIGTERM");
    const status = await up.child.status;
    assert.equal(status.code, 0, await up.output());
    assert.match(await up.output(), /"msg":"stopping".*"signal":"SIGTERM"/);
  } finally {
    try {
      up.child.kill("SIGKILL");
    } catch { /* already gone */ }
    await rm(dataDir, { recursive: true, force: true });
  }
});

Deno.test("faasd up keeps the admin password across restarts", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "faasd-up-"));
  try {
    const first = await startUp(dataDir);
    const password = await readFile(join(dataDir, "secrets/basic-auth-password"), "utf8");
    first.child.kill("SIGTERM");
    await first.child.status;
    await first.output();
    const second = await startUp(dataDir);
    second.child.kill("SIGTERM");
    await second.child.status;
    await second.output();
    assert.equal(await readFile(join(dataDir, "secrets/basic-auth-password"), "utf8"), password);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
