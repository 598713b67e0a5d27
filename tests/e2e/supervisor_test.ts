/**
 * End-to-end: extra services from docker-compose.yaml under `faasd up`, on the real containerd
 * and CNI, from images in a real registry — dependency order, a published port, a function and
 * another service reaching a service by name, restart after SIGKILL, `faasd service ls / logs /
 * restart`, a clean stop, and a bad compose file refused with its line and key.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { listCache } from "../../src/cni/cache.ts";
import { Containerd } from "../../src/containerd/client.ts";
import { hostPlatform } from "../../src/images/platform.ts";
import {
  type Appliance,
  cleanUpAppliance,
  removeTestNetwork,
  startAppliance,
  testNetwork,
} from "../fixtures/appliance.ts";
import { purgeNamespace } from "../fixtures/namespace.ts";
import { buildImage, busyboxLayer } from "../fixtures/oci_image.ts";
import { startRegistry } from "../fixtures/registry.ts";
import { pushImage } from "../fixtures/registry_push.ts";
import { tar, type TarEntry } from "../fixtures/tar.ts";

const SOCKET = "/run/containerd/containerd.sock";
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

const cgi = (body: string) => `#!/bin/sh\necho "Content-Type: text/plain"\necho\n${body}\n`;

/** A busybox httpd image whose CGI scripts show env, call other hosts, and probe a volume. */
function boxImage(scripts: Record<string, string>, cmd: string[]) {
  const enc = new TextEncoder();
  const entries: TarEntry[] = [
    { type: "directory", name: "www" },
    { type: "directory", name: "www/cgi-bin" },
    ...Object.entries(scripts).map(([name, body]): TarEntry => ({
      type: "file",
      name: `www/cgi-bin/${name}`,
      mode: 0o755,
      content: enc.encode(cgi(body)),
    })),
  ];
  return buildImage({
    architecture: hostPlatform().architecture,
    layers: [
      { tar: busyboxLayer(), compression: "gzip" },
      { tar: tar(entries), compression: "gzip" },
    ],
    config: { Cmd: cmd, Env: ["PATH=/bin"] },
  });
}

const SERVICE_SCRIPTS = {
  env: "env | sort",
  // Another host by name: "fetch?backend:8080/cgi-bin/env".
  fetch: 'wget -qO- "http://$QUERY_STRING"',
  volume: "cat /data/file; touch /data/probe 2>/dev/null && echo rw || echo ro",
  whoami: "id -u; grep Cap /proc/self/status",
};
// Prints a line to its log, then serves; exits on SIGTERM like a well-behaved service.
const SERVICE_CMD = [
  "/bin/sh",
  "-c",
  "echo \"started $ROLE\"; trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait",
];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  await new Promise((r) => server.close(r));
  return port;
}

/** Runs `faasd ARGS` from source with the services namespace set; returns code and output. */
async function faasd(args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function text(url: string, init?: RequestInit): Promise<string | undefined> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  const body = await res.text();
  return res.ok ? body : undefined;
}

Deno.test("a bad docker-compose.yaml stops faasd up with the line and the key", async (t) => {
  const cases = [
    {
      name: "unsupported key",
      compose: "services:\n  web:\n    image: x\n    healthcheck:\n      test: [CMD, true]\n",
      error: /docker-compose\.yaml line 4: services\.web\.healthcheck: unsupported key/,
    },
    {
      name: "named volume",
      compose: "services:\n  db:\n    image: x\n    volumes:\n      - dbdata:/var/lib/db\n",
      error: /docker-compose\.yaml line 5: services\.db\.volumes\[0\]: named volume "dbdata"/,
    },
    {
      name: "dependency cycle",
      compose: "services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n",
      error: /depends_on has a cycle: a -> b -> a/,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const dataDir = await mkdtemp(join(tmpdir(), "faasd-svc-bad-"));
      try {
        await writeFile(join(dataDir, "docker-compose.yaml"), c.compose);
        const net = testNetwork();
        const r = await faasd([
          "up",
          "--data-dir",
          dataDir,
          "--port",
          "0",
          "--provider-port",
          "0",
          "--bridge",
          net.bridge,
          "--subnet",
          net.subnet,
        ], {});
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, c.error);
        // Refused before anything started: no credentials, no bridge.
        assert.equal(
          await readFile(join(dataDir, "secrets/basic-auth-password")).catch(() => 0),
          0,
        );
      } finally {
        await rm(dataDir, { recursive: true, force: true });
      }
    });
  }
});

Deno.test("services: dependency order, ports, names, restarts, service ls/logs/restart, clean stop", async (t) => {
  await using registry = await startRegistry();
  await pushImage(registry, "svc/box", "1", boxImage(SERVICE_SCRIPTS, SERVICE_CMD));
  await pushImage(
    registry,
    "fn/fetcher",
    "1",
    boxImage({ fetch: 'wget -qO- "http://$QUERY_STRING"' }, [
      "/bin/sh",
      "-c",
      "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait",
    ]),
  );
  const client = await Containerd.connect({ socket: SOCKET });
  const hadDefault = (await client.namespaces.list()).some((n) => n.name === "openfaas-fn");
  const tag = randomBytes(3).toString("hex");
  const svcNs = `fsvc-${tag}`;
  const fnNs = `fsvf-${tag}`;
  const env = { FAASD_SERVICES_NAMESPACE: svcNs };
  const dataDir = await mkdtemp(join(tmpdir(), "faasd-svc-"));
  const port = await freePort();
  await mkdir(join(dataDir, "shared"));
  await writeFile(join(dataDir, "shared/file"), "from the host\n");
  // "web" comes first in the file but depends on "backend", which must start first.
  await writeFile(
    join(dataDir, "docker-compose.yaml"),
    `version: "3.7"
services:
  web:
    image: ${registry.host}/svc/box:1
    environment:
      ROLE: web
    depends_on: [backend]
    ports:
      - "127.0.0.1:${port}:8080"
  backend:
    image: ${registry.host}/svc/box:1
    environment:
      - ROLE=backend
      - GREETING=hello from backend
    volumes:
      - ./shared:/data:ro
    cap_add: [NET_ADMIN]
    restart: always
  oneshot:
    image: ${registry.host}/svc/box:1
    command: ["/bin/sh", "-c", "echo ran oneshot; sleep 2; exit 3"]
    restart: "no"
`,
  );
  const previous = Deno.env.get("FAASD_SERVICES_NAMESPACE");
  Deno.env.set("FAASD_SERVICES_NAMESPACE", svcNs);
  let app: Appliance | undefined;
  const common = ["--data-dir", dataDir];
  try {
    // The child inherits the namespace (kept set for restart() as well).
    app = await startAppliance({ dataDir });
    let a = app;
    const log = () => a.log();
    const published = `http://127.0.0.1:${port}`;

    await t.step(
      "services start in dependency order and answer on the published port",
      async () => {
        const started = [...log().matchAll(/"msg":"service started",[^\n]*?"service":"(\w+)"/g)]
          .map((m) => m[1]);
        assert.deepEqual(started, ["backend", "web", "oneshot"], log());
        const env = await until("the published port", () => text(`${published}/cgi-bin/env`));
        assert.match(env, /^ROLE=web$/m);
      },
    );

    await t.step("a service reaches another by name", async () => {
      const body = await until(
        "web → backend",
        () => text(`${published}/cgi-bin/fetch?backend:8080/cgi-bin/env`),
      );
      assert.match(body, /^GREETING=hello from backend$/m);
    });

    await t.step("compose settings reach the container: read-only bind, cap_add", async () => {
      const attached = (await listCache(join(dataDir, "provider/cni/results")))
        .find((id) => id === `${svcNs}.backend`);
      assert.ok(attached, "backend has a CNI attachment under its network ID");
      const vol = await until(
        "volume probe",
        () => text(`${published}/cgi-bin/fetch?backend:8080/cgi-bin/volume`),
      );
      assert.equal(vol, "from the host\nro\n");
      const caps = await until(
        "caps",
        () => text(`${published}/cgi-bin/fetch?backend:8080/cgi-bin/whoami`),
      );
      const eff = BigInt("0x" + caps.match(/^CapEff:\s+([0-9a-f]+)$/m)![1]);
      assert.ok(eff & (1n << 12n), `CAP_NET_ADMIN (12) is effective: ${caps}`);
    });

    await t.step("a function reaches a service by name (shared hosts file)", async () => {
      const created = await fetch(`${a.url}/system/namespace/`, {
        method: "POST",
        headers: { authorization: a.auth },
        body: JSON.stringify({ name: fnNs, labels: { openfaas: "1" } }),
      });
      assert.equal(created.status, 201, await created.text());
      const deployed = await fetch(`${a.url}/system/functions`, {
        method: "POST",
        headers: { authorization: a.auth },
        body: JSON.stringify({
          service: "fetcher",
          image: `${registry.host}/fn/fetcher:1`,
          namespace: fnNs,
        }),
      });
      assert.equal(deployed.status, 202, await deployed.text());
      const body = await until(
        "function → backend",
        () => text(`${a.url}/function/fetcher.${fnNs}/cgi-bin/fetch?backend:8080/cgi-bin/env`),
        60_000,
      );
      assert.match(body, /^ROLE=backend$/m);
    });

    const ls = async () => {
      const r = await faasd(["service", "ls", ...common], env);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    const row = (out: string, name: string) =>
      out.split("\n").find((l) => l.startsWith(name + " "))?.split(/\s{2,}/) ?? [];

    await t.step("faasd service ls shows both running with pid, IP and restarts", async () => {
      const out = await ls();
      assert.match(out, /^NAME\s+IMAGE\s+STATUS\s+PID\s+IP\s+RESTARTS$/m);
      for (const name of ["web", "backend"]) {
        const [n, image, status, pid, ip, restarts] = row(out, name);
        assert.equal(n, name, out);
        assert.equal(image, `${registry.host}/svc/box:1`);
        assert.equal(status, "running");
        assert.match(pid, /^\d+$/);
        assert.match(ip, /^10\.\d+\.\d+\.\d+$/);
        assert.equal(restarts, "0");
      }
      // Service order is start order.
      assert.ok(out.indexOf("backend ") < out.indexOf("web "), out);
    });

    await t.step("a service killed with SIGKILL is restarted with its IP and name", async () => {
      const before = await client.tasks.get(svcNs, "backend");
      const [, , , , ipBefore] = row(await ls(), "backend");
      await client.tasks.kill(svcNs, "backend", 9, { all: true });
      const after = await until("a new backend task", async () => {
        const task = await client.tasks.get(svcNs, "backend");
        return task.status === "RUNNING" && task.pid !== before.pid && task;
      });
      assert.notEqual(after.pid, before.pid);
      const body = await until(
        "backend answering again",
        () => text(`${a.url}/function/fetcher.${fnNs}/cgi-bin/fetch?backend:8080/cgi-bin/env`),
      );
      assert.match(body, /^ROLE=backend$/m);
      const [, , status, pid, ip, restarts] = row(await ls(), "backend");
      assert.deepEqual([status, pid, restarts], ["running", String(after.pid), "1"]);
      assert.equal(ip, ipBefore, "the previous address is asked for again");
      assert.match(
        log(),
        /"msg":"service exited, restarting",[^\n]*"service":"backend","exitStatus":137,"requested":false,"restartInMs":1000/,
      );
    });

    await t.step("a service that keeps crashing waits longer each time", async () => {
      // Killed again right after its restart: the run was short, so the delay doubles.
      const before = await client.tasks.get(svcNs, "backend");
      await client.tasks.kill(svcNs, "backend", 9, { all: true });
      await until("a new backend task", async () => {
        const task = await client.tasks.get(svcNs, "backend");
        return task.status === "RUNNING" && task.pid !== before.pid;
      });
      assert.match(
        log(),
        /"msg":"service exited, restarting",[^\n]*"service":"backend","exitStatus":137,"requested":false,"restartInMs":2000/,
      );
      assert.equal(row(await ls(), "backend")[5], "2");
    });

    await t.step("faasd service restart restarts a service at once", async () => {
      const before = await client.tasks.get(svcNs, "web");
      const r = await faasd(["service", "restart", "web", ...common], env);
      assert.equal(r.code, 0, r.stderr);
      const pid = Number(r.stdout.match(/service "web" restarted \(pid (\d+)\)/)?.[1]);
      assert.ok(pid > 0 && pid !== before.pid, r.stdout);
      assert.ok(await until("web on its port again", () => text(`${published}/cgi-bin/env`)));
      assert.equal(row(await ls(), "web")[5], "1");
    });

    await t.step("faasd service logs shows each start's output", async () => {
      const out = await until("two starts in the backend log", async () => {
        const r = await faasd(["service", "logs", "backend", ...common], env);
        assert.equal(r.code, 0, r.stderr);
        return (r.stdout.match(/started backend/g) ?? []).length >= 2 && r.stdout;
      });
      assert.match(out, /^\d{4}-\d\d-\d\dT[\d:.]+Z started backend$/m);
      const missing = await faasd(["service", "logs", "nope", ...common], env);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /service "nope" is not in docker-compose.yaml/);
      const usage = await faasd(["service", "logs", ...common], env);
      assert.equal(usage.code, 2);
    });

    await t.step("faasd service logs -f follows new output", async () => {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "main.ts", "service", "logs", "web", "-f", ...common],
        cwd: ROOT,
        env,
        stdout: "piped",
        stderr: "null",
      }).spawn();
      let seen = "";
      try {
        const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
        const starts = () => (seen.match(/started web/g) ?? []).length;
        const read = async (want: number) => {
          const deadline = Date.now() + 30_000;
          while (starts() < want) {
            if (Date.now() > deadline) throw new Error(`no follow output: ${seen}`);
            const { value, done } = await reader.read();
            if (done) throw new Error(`logs -f ended: ${seen}`);
            seen += value;
          }
        };
        await read(2);
        const r = await faasd(["service", "restart", "web", ...common], env);
        assert.equal(r.code, 0, r.stderr);
        await read(3);
        reader.releaseLock();
      } finally {
        child.kill("SIGTERM");
        await child.status;
        await child.stdout.cancel().catch(() => {});
      }
    });

    await t.step(
      "restart: no leaves an exited service exited until faasd service restart",
      async () => {
        const exited = await until("oneshot to exit", async () => {
          const r = row(await ls(), "oneshot");
          return r[2]?.startsWith("exited") && r;
        });
        assert.deepEqual(exited.slice(2), ["exited (3)", "-", "-", "0"]);
        const r = await faasd(["service", "restart", "oneshot", ...common], env);
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /service "oneshot" restarted \(pid \d+\)/);
        await until("oneshot to exit again", async () => {
          const r = row(await ls(), "oneshot");
          return r[2] === "exited (3)" && r[5] === "1";
        });
      },
    );

    await t.step(
      "after a crash of the appliance, its services are replaced without leaks",
      async () => {
        const oldBackend = await client.tasks.get(svcNs, "backend");
        await a.kill();
        // The services outlive the crash (as replicas do) …
        assert.equal((await client.tasks.get(svcNs, "backend")).status, "RUNNING");
        app = a = await a.restart();
        // … and are replaced by fresh ones on start.
        const fresh = await client.tasks.get(svcNs, "backend");
        assert.notEqual(fresh.pid, oldBackend.pid);
        assert.match(log(), /"msg":"removed a service container of an earlier run"/);
        const ids = (await client.containers.list(svcNs)).map((c) => c.id).sort();
        assert.deepEqual(ids, ["backend", "oneshot", "web"]);
        const active = (await client.snapshots.list(svcNs)).filter((s) => s.kind === "ACTIVE");
        assert.deepEqual(active.map((s) => s.name).sort(), ["backend", "oneshot", "web"]);
        const env = await until(
          "web on its port after the restart",
          () => text(`${published}/cgi-bin/env`),
        );
        assert.match(env, /^ROLE=web$/m);
        const body = await until(
          "function → backend after the restart",
          () => text(`${a.url}/function/fetcher.${fnNs}/cgi-bin/fetch?backend:8080/cgi-bin/env`),
        );
        assert.match(body, /^ROLE=backend$/m);
        // One address per service and replica: the crashed run's leases were released.
        const leases = (await readdir(join(dataDir, "provider/cni/ipam/faasd-ts")))
          .filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f));
        const running = (await client.tasks.list(svcNs)).filter((t) => t.status === "RUNNING");
        assert.equal(
          leases.length,
          running.length + 1,
          `${leases} for ${running.map((t) => t.id)}`,
        );
      },
    );

    await t.step(
      "a second appliance on the same services namespace refuses to take the services over",
      async () => {
        const before = await client.tasks.get(svcNs, "backend");
        const otherDir = await mkdtemp(join(tmpdir(), "faasd-svc2-"));
        const otherNet = testNetwork();
        try {
          await copyFile(
            join(dataDir, "docker-compose.yaml"),
            join(otherDir, "docker-compose.yaml"),
          );
          await assert.rejects(
            startAppliance({ dataDir: otherDir, network: otherNet }),
            new RegExp(
              `namespace "${svcNs}" already holds a service container of that name owned by ` +
                `another appliance .*FAASD_SERVICES_NAMESPACE`,
            ),
          );
        } finally {
          await removeTestNetwork(otherNet, otherDir);
        }
        const after = await client.tasks.get(svcNs, "backend");
        assert.equal(after.pid, before.pid, "the first appliance's service was left alone");
        assert.equal(after.status, "RUNNING");
      },
    );

    await t.step("SIGTERM stops the services and leaves only the images", async () => {
      assert.equal(await a.stop(), 0, log());
      assert.match(
        log(),
        /"msg":"service stopped",[^\n]*"service":"web"[\s\S]*"msg":"service stopped",[^\n]*"service":"backend"/,
      );
      assert.deepEqual(await client.containers.list(svcNs), []);
      assert.deepEqual(await client.tasks.list(svcNs), []);
      assert.deepEqual(await client.leases.list(svcNs), []);
      const snaps = await client.snapshots.list(svcNs);
      assert.ok(snaps.every((s) => s.kind === "COMMITTED"), JSON.stringify(snaps));
      assert.ok((await client.images.list(svcNs)).length > 0, "the pulled image stays");
      const cached = await listCache(join(dataDir, "provider/cni/results"));
      assert.deepEqual(cached.filter((id) => id.startsWith(`${svcNs}.`)), []);
      const hosts = await readFile(join(dataDir, "provider/hosts"), "utf8");
      assert.doesNotMatch(hosts, /\b(web|backend)$/m);
      await assert.rejects(fetch(published), "the port is closed");
      const out = await ls();
      assert.deepEqual(row(out, "backend").slice(0, 3), [
        "backend",
        `${registry.host}/svc/box:1`,
        "stopped",
      ]);
    });
  } finally {
    Deno.env.delete("FAASD_SERVICES_NAMESPACE");
    if (previous !== undefined) Deno.env.set("FAASD_SERVICES_NAMESPACE", previous);
    if (app) {
      const failures = await cleanUpAppliance(app, client, {
        namespace: fnNs,
        hadDefaultNamespace: hadDefault,
      });
      failures.push(...await purgeNamespace(client, svcNs));
      if (failures.length > 0) console.error("clean-up failures:", failures);
    } else {
      await rm(dataDir, { recursive: true, force: true });
      await purgeNamespace(client, svcNs).catch(() => {});
    }
    await client.close();
  }
});
