/**
 * End-to-end: `deno task build:armhf` bundles faasd for Node.js, and the dist/armhf/faasd launcher
 * runs it under this machine's real Node.js against the real containerd — up to deploying a
 * function from a real registry and invoking it through the gateway.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Containerd } from "../../src/containerd/client.ts";
import { removeTestNetwork, testNetwork, upArgs } from "../fixtures/appliance.ts";
import { functionImage } from "../fixtures/function_image.ts";
import { purgeNamespace } from "../fixtures/namespace.ts";
import { startRegistry } from "../fixtures/registry.ts";
import { pushImage } from "../fixtures/registry_push.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WRAPPER = `${ROOT}dist/armhf/faasd`;
const BUILD_INFO_FILE = `${ROOT}src/build_info.ts`;
const SOCKET = "/run/containerd/containerd.sock";

interface Output {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[]): Promise<Output> {
  const out = await new Deno.Command(cmd, { args, cwd: ROOT, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

const faasd = (...args: string[]) => run(WRAPPER, args);
const show = (o: Output) => `exit ${o.code}\n--- stdout\n${o.stdout}--- stderr\n${o.stderr}`;

/** Fails (never skips) when the Node.js this test needs is missing or too old. */
async function requireNode(): Promise<string> {
  let out: Output;
  try {
    out = await run("node", ["--version"]);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error("node is not on PATH: this test runs the armhf bundle under Node.js 18+", {
        cause: err,
      });
    }
    throw err;
  }
  const version = out.stdout.trim();
  const major = Number(version.match(/^v(\d+)\./)?.[1] ?? 0);
  assert.ok(major >= 18, `this test needs Node.js 18+ on PATH, found "${version}"`);
  return version;
}

Deno.test("build:armhf bundles faasd for Node.js and its launcher runs it", async (t) => {
  const nodeVersion = await requireNode();
  const { version } = JSON.parse(await readFile(`${ROOT}package.json`, "utf8"));
  const head = (await run("git", ["rev-parse", "--short=12", "HEAD"])).stdout.trim();
  assert.match(head, /^[0-9a-f]{12}$/);
  const before = await readFile(BUILD_INFO_FILE, "utf8");

  const build = await run(Deno.execPath(), ["task", "build:armhf"]);
  assert.equal(build.code, 0, show(build));

  await t.step("the build leaves src/build_info.ts exactly as it was", async () => {
    assert.equal(await readFile(BUILD_INFO_FILE, "utf8"), before);
  });

  await t.step("the build reports the commit it embeds and the bundle's size", () => {
    assert.match(build.stdout, new RegExp(`^embedding build info ${version} \\(${head}`, "m"));
    assert.match(build.stdout, /^wrote dist\/armhf\/faasd\.mjs \(\d+ KiB\)$/m);
  });

  await t.step(
    `version prints the version and the real commit under Node.js ${nodeVersion}`,
    async () => {
      const out = await faasd("version", "--json");
      assert.equal(out.code, 0, show(out));
      const info = JSON.parse(out.stdout);
      assert.equal(info.version, version);
      assert.notEqual(info.sha, "source");
      assert.match(info.sha, new RegExp(`^${head}(-dirty)?$`));
      const text = await faasd("version");
      assert.equal(text.stdout, `faasd-ts version ${version} (commit ${info.sha})\n`);
    },
  );

  await t.step("--help exits 0 and lists the commands", async () => {
    const out = await faasd("--help");
    assert.equal(out.code, 0, show(out));
    assert.match(out.stdout, /^Usage: faasd COMMAND/m);
    assert.match(out.stdout, /^ {2}containerd {2,}/m);
  });

  await t.step("containerd namespaces lists a namespace created through the client", async () => {
    const ns = `faasd-e2e-armhf-${randomBytes(4).toString("hex")}`;
    const client = await Containerd.connect({ socket: SOCKET });
    try {
      await client.namespaces.create(ns, { "faasd-test": "1" });
      const out = await faasd("containerd", "namespaces", "--containerd-socket", SOCKET);
      assert.equal(out.code, 0, show(out));
      assert.ok(out.stdout.split("\n").includes(`${ns}\tfaasd-test=1`), show(out));
    } finally {
      await client.namespaces.delete(ns).catch(() => {});
      await client.close();
    }
  });

  await t.step("an unknown command exits 2 with usage on stderr", async () => {
    const out = await faasd("frob");
    assert.equal(out.code, 2, show(out));
    assert.match(out.stderr, /unknown command "frob"/);
    assert.equal(out.stdout, "");
  });

  await t.step("an unreachable containerd exits 1 with the reason", async () => {
    const out = await faasd("containerd", "version", "--containerd-socket", "/nonexistent.sock");
    assert.equal(out.code, 1, show(out));
    assert.match(out.stderr, /cannot reach containerd at \/nonexistent\.sock/);
  });

  await t.step("up under Node.js deploys a function, serves it, and stops on SIGTERM", async () => {
    await using registry = await startRegistry();
    await pushImage(registry, "fn/hello", "1", functionImage("armhf-v1"));
    const client = await Containerd.connect({ socket: SOCKET });
    const ns = `farm-${randomBytes(3).toString("hex")}`;
    const dataDir = await mkdtemp(join(tmpdir(), "faasd-armhf-up-"));
    const network = testNetwork();
    const child = new Deno.Command(WRAPPER, {
      args: upArgs(dataDir, network),
      cwd: ROOT,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let log = "";
    try {
      let port = 0;
      while (!port) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`faasd up exited early under Node.js:\n${log}`);
        log += value;
        port = Number(log.match(/faasd-ts is up on port (\d+)/)?.[1] ?? 0);
      }
      const url = `http://127.0.0.1:${port}`;
      const res = await fetch(`${url}/healthz`);
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "OK\n");
      const password = (await readFile(join(dataDir, "secrets/basic-auth-password"), "utf8"))
        .trim();
      const api = async (method: string, path: string, body: unknown) => {
        const r = await fetch(`${url}${path}`, {
          method,
          headers: { authorization: `Basic ${btoa(`admin:${password}`)}` },
          body: JSON.stringify(body),
        });
        return { status: r.status, text: await r.text() };
      };
      const created = await api("POST", "/system/namespace/", {
        name: ns,
        labels: { openfaas: "1" },
      });
      assert.equal(created.status, 201, created.text);
      const deployed = await api("POST", "/system/functions", {
        service: "hello",
        image: `${registry.host}/fn/hello:1`,
        namespace: ns,
      });
      assert.equal(deployed.status, 202, deployed.text);
      // Deploy answers once a replica is ready, so the first request is served.
      const invoked = await fetch(`${url}/function/hello.${ns}/cgi-bin/echo`, {
        method: "POST",
        body: "from node",
      });
      assert.equal(invoked.status, 200, `${await invoked.clone().text()}\n${log}`);
      assert.equal(await invoked.text(), "from node");
      const version = await fetch(`${url}/function/hello.${ns}/cgi-bin/version`);
      assert.equal(await version.text(), "armhf-v1\n");
      child.kill("SIGTERM");
      assert.equal((await child.status).code, 0, log);
    } finally {
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
      await reader.cancel().catch(() => {});
      const leftovers = await purgeNamespace(client, ns);
      await client.close();
      await removeTestNetwork(network, dataDir);
      assert.deepEqual(leftovers, []);
    }
  });
});
