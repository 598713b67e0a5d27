/**
 * End-to-end: functions on the real containerd, networked with the real CNI plugins, from images
 * in a real registry, driven through `faasd up`'s HTTP API — deploy, round trips, invoke, scale
 * 0↔N, rolling update under load, crash recovery, appliance restart, delete leaving nothing.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { Containerd } from "../../src/containerd/client.ts";
import {
  api,
  type Appliance,
  createNamespace,
  finishAppliance,
  startAppliance,
} from "../fixtures/appliance.ts";
import { functionImage } from "../fixtures/function_image.ts";
import { startRegistry } from "../fixtures/registry.ts";
import { pushImage } from "../fixtures/registry_push.ts";
import { until } from "../fixtures/poll.ts";
import { freezerState } from "../fixtures/cgroup.ts";

const SOCKET = "/run/containerd/containerd.sock";

async function invoke(app: Appliance, fn: string, path: string, init: RequestInit = {}) {
  const res = await fetch(`${app.url}/function/${fn}${path}`, init);
  return { status: res.status, headers: res.headers, text: await res.text() };
}

async function leaseFiles(app: Appliance): Promise<string[]> {
  const dir = join(app.dataDir, "provider/cni/ipam/faasd-ts");
  return (await readdir(dir).catch(() => [])).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).sort();
}

Deno.test("provider: deploy, invoke, scale, update, recover and delete functions", async (t) => {
  await using registry = await startRegistry();
  await pushImage(registry, "fn/hello", "1", functionImage("v1"));
  await pushImage(registry, "fn/hello", "2", functionImage("v2"));
  await pushImage(registry, "fn/locked", "1", functionImage("locked", { user: "app" }));
  const client = await Containerd.connect({ socket: SOCKET });
  const hadDefault = (await client.namespaces.list()).some((n) => n.name === "openfaas-fn");
  const ns = `fe2e-${randomBytes(3).toString("hex")}`;
  let app = await startAppliance();
  const fn = `hello.${ns}`;
  try {
    await t.step("a namespace and a secret are created", async () => {
      await createNamespace(app, ns);
      const listed = (await api(app, "GET", "/system/namespaces")).json();
      assert.ok(listed.includes(ns), JSON.stringify(listed));
      const secret = await api(app, "POST", "/system/secrets", {
        name: "api-key",
        namespace: ns,
        value: "s3cr3t",
      });
      assert.equal(secret.status, 201, secret.text);
    });

    const deployment = {
      service: "hello",
      image: `${registry.host}/fn/hello:1`,
      namespace: ns,
      envProcess: "cat",
      envVars: { GREETING: "a=b=c", grace_period: "5s" },
      labels: { team: "blue", "com.openfaas.scale.max": "5" },
      annotations: { topic: "demo" },
      secrets: ["api-key"],
      limits: { memory: "64Mi", cpu: "500m" },
    };

    await t.step("deploy answers 202 and the function serves its first request", async () => {
      const res = await api(app, "POST", "/system/functions", deployment);
      assert.equal(res.status, 202, res.text);
      const first = await invoke(app, fn, "/cgi-bin/version");
      assert.equal(first.status, 200);
      assert.equal(first.text, "v1\n");
      assert.ok(first.headers.get("x-call-id"));
      assert.ok(Number(first.headers.get("x-duration-seconds")) > 0);
      const again = await api(app, "POST", "/system/functions", deployment);
      assert.equal(again.status, 409, again.text);
    });

    await t.step(
      "status round-trips env, labels, annotations, secrets and limits exactly",
      async () => {
        const [status] = (await api(app, "GET", `/system/functions?namespace=${ns}`)).json();
        assert.equal(status.name, "hello");
        assert.equal(status.image, deployment.image);
        assert.equal(status.namespace, ns);
        assert.equal(status.envProcess, "cat");
        assert.deepEqual(status.envVars, deployment.envVars);
        assert.deepEqual(status.labels, { ...deployment.labels, faas_function: "hello" });
        assert.deepEqual(status.annotations, deployment.annotations);
        assert.deepEqual(status.secrets, ["api-key"]);
        assert.deepEqual(status.limits, { memory: "64Mi", cpu: "500m" });
        assert.equal(status.requests, undefined);
        assert.equal(status.replicas, 1);
        assert.ok(!Number.isNaN(Date.parse(status.createdAt)));
        const one = await api(app, "GET", `/system/function/hello?namespace=${ns}&usage=1`);
        assert.equal(one.status, 200);
        assert.ok(one.json().usage.totalMemoryBytes > 0, one.text);
      },
    );

    await t.step("the replica sees its env, fprocess, secret and memory limit", async () => {
      const env = (await invoke(app, fn, "/cgi-bin/env")).text;
      assert.match(env, /^GREETING=a=b=c$/m);
      assert.match(env, /^fprocess=cat$/m);
      assert.equal((await invoke(app, fn, "/cgi-bin/secret?api-key")).text, "s3cr3t");
      const echoed = await invoke(app, fn, "/cgi-bin/echo", { method: "POST", body: "ping" });
      assert.equal(echoed.text, "ping");
      // Its own network namespace has lo up (brought up while the task was being created).
      const [task] = await client.tasks.list(ns);
      const lo = await new Deno.Command("nsenter", {
        args: ["-t", String(task.pid), "-n", "ip", "-o", "link", "show", "lo"],
        stdout: "piped",
      }).output();
      assert.match(new TextDecoder().decode(lo.stdout), /<LOOPBACK,UP,LOWER_UP>/);
    });

    await t.step(
      'a replica reaches the gateway by the name "gateway" (hosts file, bridge)',
      async () => {
        const port = new URL(app.url).port;
        const res = await invoke(app, fn, `/cgi-bin/call?${port}`);
        assert.match(res.text, /^HTTP\/1\.[01] 200/);
        assert.match(res.text, /\r\n\r\nOK\n$/);
      },
    );

    await t.step("logs: lines a replica writes are served as NDJSON, and followed", async () => {
      const marker = `m-${randomBytes(4).toString("hex")}`;
      await invoke(app, fn, `/cgi-bin/log?${marker}`);
      let lines: Array<Record<string, string>> = [];
      await until("the line in /system/logs", async () => {
        const res = await api(
          app,
          "GET",
          `/system/logs?name=hello&namespace=${ns}&tail=-1&follow=false`,
        );
        lines = res.text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
        return lines.some((l) => l.text === `log line ${marker}`);
      });
      const line = lines.find((l) => l.text === `log line ${marker}`)!;
      assert.equal(line.name, "hello");
      assert.equal(line.namespace, ns);
      assert.ok(!Number.isNaN(Date.parse(line.timestamp)));
      assert.match(line.instance, /^hello-/);

      const abort = new AbortController();
      const res = await fetch(
        `${app.url}/system/logs?name=hello&namespace=${ns}&tail=0&follow=true`,
        {
          headers: { authorization: app.auth },
          // Bounded: a line that never arrives fails the step instead of hanging the suite.
          signal: AbortSignal.any([abort.signal, AbortSignal.timeout(20_000)]),
        },
      );
      const followed = `f-${randomBytes(4).toString("hex")}`;
      await invoke(app, fn, `/cgi-bin/log?${followed}`);
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes(followed)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      abort.abort();
      await reader.cancel().catch(() => {});
      assert.match(text, new RegExp(`"text":"log line ${followed}"`));
      const missing = await api(app, "GET", `/system/logs?name=nope&namespace=${ns}`);
      assert.equal(missing.status, 404);
    });

    await t.step(
      "a named USER runs with its uid; a read-only rootfs keeps /tmp writable",
      async () => {
        const res = await api(app, "POST", "/system/functions", {
          service: "locked",
          image: `${registry.host}/fn/locked:1`,
          namespace: ns,
          readOnlyRootFilesystem: true,
        });
        assert.equal(res.status, 202, res.text);
        assert.equal((await invoke(app, `locked.${ns}`, "/cgi-bin/id")).text, "1000\n");
        assert.equal(
          (await invoke(app, `locked.${ns}`, "/cgi-bin/write")).text,
          "root-ro\ntmp-ok\n",
        );
        assert.equal((await invoke(app, fn, "/cgi-bin/write")).text, "root-rw\ntmp-ok\n");
        const status = (await api(app, "GET", `/system/function/locked?namespace=${ns}`)).json();
        assert.equal(status.readOnlyRootFilesystem, true);
        const del = await api(app, "DELETE", `/system/functions?namespace=${ns}`, {
          functionName: "locked",
        });
        assert.equal(del.status, 202, del.text);
      },
    );

    await t.step("scale to 3 spreads requests over three replicas", async () => {
      const res = await api(app, "POST", `/system/scale-function/hello?namespace=${ns}`, {
        replicas: 3,
      });
      assert.equal(res.status, 202, res.text);
      await until(
        "3 available replicas",
        async () =>
          (await api(app, "GET", `/system/function/hello?namespace=${ns}`)).json()
            .availableReplicas === 3,
      );
      const seen = new Set<string>();
      for (let i = 0; i < 9; i++) seen.add((await invoke(app, fn, "/cgi-bin/replica")).text);
      assert.equal(seen.size, 3, [...seen].join(""));
      const tooMany = await api(app, "POST", `/system/scale-function/hello?namespace=${ns}`, {
        replicas: 6,
      });
      assert.equal(tooMany.status, 400, tooMany.text);
    });

    await t.step("scale to 0 freezes one replica; the next request thaws it", async () => {
      const res = await api(app, "POST", `/system/scale-function/hello?namespace=${ns}`, {
        replicas: 0,
      });
      assert.equal(res.status, 202, res.text);
      const tasks = await client.tasks.list(ns);
      // Frozen through its cgroup by the appliance: containerd was not asked, so says RUNNING.
      assert.deepEqual(tasks.map((x) => x.status), ["RUNNING"]);
      assert.equal(await freezerState(ns, tasks[0].id), "frozen");
      const status = (await api(app, "GET", `/system/function/hello?namespace=${ns}`)).json();
      assert.equal(status.replicas, 0);
      assert.equal(status.availableReplicas, 0);
      const woken = await invoke(app, fn, "/cgi-bin/version");
      assert.equal(woken.status, 200);
      assert.equal((await client.tasks.list(ns)).map((x) => x.status).join(), "RUNNING");
      assert.equal(await freezerState(ns, tasks[0].id), "thawed");
      assert.equal(
        (await api(app, "GET", `/system/function/hello?namespace=${ns}`)).json().replicas,
        1,
      );
    });

    await t.step(
      "a rolling update under load fails no request and sees the new secret",
      async () => {
        await api(app, "POST", `/system/scale-function/hello?namespace=${ns}`, { replicas: 2 });
        const secret = await api(app, "PUT", "/system/secrets", {
          name: "api-key",
          namespace: ns,
          value: "rotated",
        });
        assert.equal(secret.status, 202, secret.text);
        let stop = false;
        const codes = new Map<number, number>();
        const loops = Array.from({ length: 4 }, async () => {
          for (let i = 0; i < 400 && !stop; i++) {
            const r = await invoke(app, fn, "/cgi-bin/version");
            codes.set(r.status, (codes.get(r.status) ?? 0) + 1);
          }
        });
        const res = await api(app, "PUT", "/system/functions", {
          ...deployment,
          image: `${registry.host}/fn/hello:2`,
        });
        assert.equal(res.status, 202, res.text);
        await until(
          "v2 answers",
          async () => (await invoke(app, fn, "/cgi-bin/version")).text === "v2\n",
        );
        stop = true;
        await Promise.all(loops);
        assert.deepEqual([...codes.keys()], [200], JSON.stringify([...codes]));
        const status = (await api(app, "GET", `/system/function/hello?namespace=${ns}`)).json();
        assert.equal(status.image, `${registry.host}/fn/hello:2`);
        assert.equal(status.replicas, 2);
        const missing = await api(app, "PUT", "/system/functions", {
          ...deployment,
          service: "nope",
        });
        assert.equal(missing.status, 404, missing.text);
      },
    );

    await t.step("a replica killed with SIGKILL is restarted", async () => {
      await api(app, "POST", `/system/scale-function/hello?namespace=${ns}`, { replicas: 1 });
      await until("one task", async () => (await client.tasks.list(ns)).length === 1);
      const [task] = await client.tasks.list(ns);
      await client.tasks.kill(ns, task.id, 9, { all: true });
      await until("a new task", async () => {
        const now = await client.tasks.get(ns, task.id).catch(() => undefined);
        return now?.status === "RUNNING" && now.pid !== task.pid;
      });
      assert.equal((await invoke(app, fn, "/cgi-bin/version")).text, "v2\n");
    });

    await t.step("after kill -9 of the appliance everything is intact", async () => {
      const before = (await api(app, "GET", `/system/functions?namespace=${ns}`)).json();
      await app.kill();
      // A replica that dies while the appliance is down comes back when it starts again.
      const [task] = await client.tasks.list(ns);
      const exited = client.tasks.wait(ns, task.id);
      await client.tasks.kill(ns, task.id, 9, { all: true });
      await exited;
      app = await app.restart();
      const after = (await api(app, "GET", `/system/functions?namespace=${ns}`)).json();
      assert.deepEqual(
        after.map((s: Record<string, unknown>) => ({
          ...s,
          invocationCount: 0,
          availableReplicas: 0,
        })),
        before.map((s: Record<string, unknown>) => ({
          ...s,
          invocationCount: 0,
          availableReplicas: 0,
        })),
      );
      assert.equal((await invoke(app, fn, "/cgi-bin/version")).text, "v2\n");
      const logs = await api(app, "GET", `/system/logs?name=hello&namespace=${ns}&tail=-1`);
      assert.match(logs.text, /"text":"log line m-/, "logs survive the restart");
    });

    await t.step(
      "a frozen replica stays idle across a restart, then thaws for a request",
      async () => {
        await api(app, "POST", `/system/scale-function/hello?namespace=${ns}`, { replicas: 0 });
        const [task] = await client.tasks.list(ns);
        assert.equal(await freezerState(ns, task.id), "frozen");
        await app.kill();
        app = await app.restart();
        const status = (await api(app, "GET", `/system/function/hello?namespace=${ns}`)).json();
        assert.equal(status.replicas, 0, "re-adopted as the idle copy");
        assert.equal(await freezerState(ns, task.id), "frozen");
        assert.equal((await invoke(app, fn, "/cgi-bin/version")).text, "v2\n");
        const [after] = await client.tasks.list(ns);
        assert.equal(after.pid, task.pid, "thawed, not started again");
        assert.equal(await freezerState(ns, task.id), "thawed");
        // Left frozen for the next step: delete must thaw it so it can handle SIGTERM.
        await api(app, "POST", `/system/scale-function/hello?namespace=${ns}`, { replicas: 0 });
        assert.equal(await freezerState(ns, task.id), "frozen");
      },
    );

    await t.step("delete removes containers, snapshots, IP leases and network rules", async () => {
      const [frozen] = await client.tasks.list(ns);
      const exited = client.tasks.wait(ns, frozen.id);
      const res = await api(app, "DELETE", `/system/functions?namespace=${ns}`, {
        functionName: "hello",
      });
      assert.equal(res.status, 202, res.text);
      // The image's shell exits 0 on SIGTERM; a replica left frozen would have needed SIGKILL.
      assert.equal((await exited).exitStatus, 0, "the frozen replica was thawed for SIGTERM");
      assert.deepEqual(await client.containers.list(ns), []);
      assert.deepEqual(await client.tasks.list(ns), []);
      const active = (await client.snapshots.list(ns)).filter((s) => s.kind !== "COMMITTED");
      assert.deepEqual(active, []);
      assert.deepEqual(await leaseFiles(app), []);
      const rules = await new Deno.Command("iptables-save", { stdout: "piped" }).output();
      const prefix = app.network.subnet.split(".").slice(0, 3).join(".") + ".";
      assert.doesNotMatch(
        new TextDecoder().decode(rules.stdout),
        new RegExp(`${prefix.replaceAll(".", "\\.")}\\d+/32`),
      );
      const gone = await invoke(app, fn, "/cgi-bin/version");
      assert.equal(gone.status, 404);
    });
  } catch (err) {
    console.error(app.log());
    throw err;
  } finally {
    await finishAppliance(app, client, { namespace: ns, hadDefaultNamespace: hadDefault });
  }
});
