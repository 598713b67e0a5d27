/**
 * End-to-end: the appliance keeps its functions through a containerd restart — running replicas
 * keep serving, the event stream reconnects (a replica that crashes afterwards is restarted), and
 * containerd calls work again (scaling).
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Containerd } from "../../src/containerd/client.ts";
import { NotFoundError } from "../../src/errors.ts";
import { api, createNamespace, finishAppliance, startAppliance } from "../fixtures/appliance.ts";
import { functionImage } from "../fixtures/function_image.ts";
import { startRegistry } from "../fixtures/registry.ts";
import { pushImage } from "../fixtures/registry_push.ts";
import { until } from "../fixtures/poll.ts";

const SOCKET = "/run/containerd/containerd.sock";

async function sh(cmd: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  const r = await new Deno.Command(cmd, { args, stdin: "null" }).output();
  return { ok: r.success, out: new TextDecoder().decode(r.stdout).trim() };
}

/** Restarts containerd the way it runs here: through systemd, or as a plain background process. */
async function restartContainerd(): Promise<void> {
  if (
    (await sh("systemctl", ["is-active", "--quiet", "containerd"]).catch(() => ({ ok: false }))).ok
  ) {
    assert.ok(
      (await sh("systemctl", ["restart", "containerd"])).ok,
      "systemctl restart containerd",
    );
  } else {
    const pid = (await sh("pidof", ["containerd"])).out;
    assert.ok(pid, "containerd is running");
    await sh("kill", ["-TERM", pid]);
    for (let i = 0; i < 200 && (await sh("kill", ["-0", pid])).ok; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    const started = await sh("sh", [
      "-c",
      "setsid -f containerd >>/var/log/containerd-dev.log 2>&1 </dev/null",
    ]);
    assert.ok(started.ok, "containerd started again");
  }
  for (let i = 0;; i++) {
    try {
      await (await Containerd.connect({ socket: SOCKET, timeoutMs: 1000 })).close();
      return;
    } catch (err) {
      if (i > 120) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

Deno.test("recovery: functions survive a containerd restart and crashes after it are repaired", async () => {
  await using registry = await startRegistry();
  await pushImage(registry, "fn/hello", "1", functionImage("v1"));
  const ns = `frec-${randomBytes(3).toString("hex")}`;
  let client = await Containerd.connect({ socket: SOCKET });
  const hadDefault = (await client.namespaces.list()).some((n) => n.name === "openfaas-fn");
  const app = await startAppliance();
  const fn = `${app.url}/function/hello.${ns}/cgi-bin/version`;
  try {
    await createNamespace(app, ns);
    const deployed = await api(app, "POST", "/system/functions", {
      service: "hello",
      image: `${registry.host}/fn/hello:1`,
      namespace: ns,
      labels: { "com.openfaas.scale.min": "2" },
    });
    assert.equal(deployed.status, 202, deployed.text);
    assert.equal(await (await fetch(fn)).text(), "v1\n");
    await client.close();
    await restartContainerd();
    client = await Containerd.connect({ socket: SOCKET });

    // The replicas never stopped: the proxy needs no containerd call.
    assert.equal(await (await fetch(fn)).text(), "v1\n");
    const tasks = await client.tasks.list(ns);
    assert.equal(tasks.length, 2);
    // A crash after the restart is seen (the event stream reconnected) and repaired.
    // containerd may still be reconnecting to the shim ("ttrpc: closed") just after its restart.
    await until("the kill to reach the task", async () => {
      await client.tasks.kill(ns, tasks[0].id, 9, { all: true });
      return true;
    });
    await until("the crashed replica to be restarted", async () => {
      // Between the old task's deletion and the new one's creation there is no task at all.
      const t = await client.tasks.get(ns, tasks[0].id).catch((err) => {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      });
      return t?.status === "RUNNING" && t.pid !== tasks[0].pid;
    });
    const scaled = await api(app, "POST", `/system/scale-function/hello?namespace=${ns}`, {
      replicas: 3,
    });
    assert.equal(scaled.status, 202, scaled.text);
    assert.equal((await client.tasks.list(ns)).length, 3);
    assert.equal(await (await fetch(fn)).text(), "v1\n");
    const del = await api(app, "DELETE", `/system/functions?namespace=${ns}`, {
      functionName: "hello",
    });
    assert.equal(del.status, 202, del.text);
  } catch (err) {
    console.error(app.log());
    throw err;
  } finally {
    await finishAppliance(app, client, { namespace: ns, hadDefaultNamespace: hadDefault });
  }
});
