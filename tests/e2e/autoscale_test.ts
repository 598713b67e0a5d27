/**
 * End-to-end: the autoscaler of a real appliance (`--scale-down-window 3s` so the test does not
 * wait a minute) adds replicas to a function under a bounded concurrent load and removes them
 * after it stops, and takes an idle `scale.zero` function to zero replicas, which the next request
 * wakes.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
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

async function status(app: Appliance, name: string, ns: string) {
  const res = await api(app, "GET", `/system/function/${name}?namespace=${ns}`);
  assert.equal(res.status, 200, res.text);
  return res.json() as { replicas: number; availableReplicas: number; invocationCount: number };
}

Deno.test("autoscale: replicas follow a bounded load up and back down; an idle scale.zero function goes to zero and wakes", async (t) => {
  await using registry = await startRegistry();
  await pushImage(registry, "fn/scaled", "1", functionImage("s1"));
  const client = await Containerd.connect({ socket: SOCKET });
  const hadDefault = (await client.namespaces.list()).some((n) => n.name === "openfaas-fn");
  const ns = `ae2e-${randomBytes(3).toString("hex")}`;
  const app = await startAppliance({ args: ["--scale-down-window", "3s"] });
  try {
    await createNamespace(app, ns);
    // Scaled by hand before the autoscaler acts on the others, and checked again at the end.
    const manual = await api(app, "POST", "/system/functions", {
      service: "manual",
      image: `${registry.host}/fn/scaled:1`,
      namespace: ns,
    });
    assert.equal(manual.status, 202, manual.text);
    const scaled = await api(app, "POST", `/system/scale-function/manual?namespace=${ns}`, {
      serviceName: "manual",
      replicas: 2,
    });
    assert.ok(scaled.status === 200 || scaled.status === 202, scaled.text);

    await t.step(
      "capacity target 2, max 3: 8 concurrent clients raise the replicas above 1, then they return to 1",
      async () => {
        const deployed = await api(app, "POST", "/system/functions", {
          service: "busy",
          image: `${registry.host}/fn/scaled:1`,
          namespace: ns,
          labels: {
            "com.openfaas.scale.type": "capacity",
            "com.openfaas.scale.target": "2",
            "com.openfaas.scale.max": "3",
          },
        });
        assert.equal(deployed.status, 202, deployed.text);
        assert.equal((await status(app, "busy", ns)).replicas, 1);

        // Bounded load: 8 clients, each one request at a time on the endpoint that takes 1 s before
        // its headers (requests in flight are counted until the headers), until the
        // replicas have risen (at most 30 s).
        let stop = false;
        const codes: number[] = [];
        const clients = Array.from({ length: 8 }, async () => {
          while (!stop) {
            const res = await fetch(`${app.url}/function/busy.${ns}/cgi-bin/hold`);
            codes.push(res.status);
            await res.text();
          }
        });
        let peak = { replicas: 1, availableReplicas: 1 };
        try {
          await until("more than one replica ready under load", async () => {
            const s = await status(app, "busy", ns);
            if (s.replicas > peak.replicas) peak = { ...peak, replicas: s.replicas };
            if (s.availableReplicas > peak.availableReplicas) {
              peak = { ...peak, availableReplicas: s.availableReplicas };
            }
            return s.availableReplicas > 1;
          });
          // The load is spread over the new replicas (round robin over the ready ones).
          const seen = new Set<string>();
          for (let i = 0; i < 6; i++) {
            const res = await fetch(`${app.url}/function/busy.${ns}/cgi-bin/replica`);
            assert.equal(res.status, 200);
            seen.add(await res.text());
          }
          assert.ok(seen.size > 1, `requests reached ${[...seen].join(", ")}`);
        } finally {
          stop = true;
          await Promise.all(clients);
        }
        assert.ok(peak.replicas > 1 && peak.replicas <= 3, JSON.stringify(peak));
        assert.ok(codes.length > 0 && codes.every((c) => c === 200), `codes: ${codes}`);

        const stoppedAt = Date.now();
        await until("the replicas to return to 1 after the load", async () => {
          const s = await status(app, "busy", ns);
          assert.ok(s.replicas <= 3, JSON.stringify(s));
          return s.replicas === 1 && s.availableReplicas === 1;
        });
        assert.ok(
          Date.now() - stoppedAt >= 2000,
          "not before the scale-down window (3 s) has passed",
        );
        assert.match(app.log(), /"msg":"autoscaling".*"function":"busy".*"to":1/);
        const after = await fetch(`${app.url}/function/busy.${ns}/cgi-bin/version`);
        assert.equal(await after.text(), "s1\n");
      },
    );

    await t.step(
      "scale.zero with zero-duration 2s: idle → 0 replicas; a request is answered 200 and wakes it",
      async () => {
        const deployed = await api(app, "POST", "/system/functions", {
          service: "sleepy",
          image: `${registry.host}/fn/scaled:1`,
          namespace: ns,
          labels: { "com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "2s" },
        });
        assert.equal(deployed.status, 202, deployed.text);
        const first = await fetch(`${app.url}/function/sleepy.${ns}/cgi-bin/version`);
        assert.equal(first.status, 200);
        assert.equal(await first.text(), "s1\n");
        const usedAt = Date.now();
        await until("the idle function to go to zero", async () => {
          return (await status(app, "sleepy", ns)).replicas === 0;
        });
        assert.ok(Date.now() - usedAt >= 1500, "not before zero-duration without a request");
        // The replica count drops first; the freezer takes a moment to stop the task.
        await until("the idle copy to be frozen", async () => {
          const [task] = (await client.tasks.list(ns)).filter((x) => x.id.startsWith("sleepy"));
          if (!task || task.status !== "RUNNING") {
            throw new Error(`the idle copy is ${task?.status ?? "gone"}, not frozen`);
          }
          return await freezerState(ns, task.id) === "frozen";
        });

        const woken = await fetch(`${app.url}/function/sleepy.${ns}/cgi-bin/version`);
        assert.equal(woken.status, 200);
        assert.equal(await woken.text(), "s1\n");
        const s = await status(app, "sleepy", ns);
        assert.equal(s.replicas, 1);
        assert.equal(s.invocationCount, 2);
      },
    );

    await t.step("a function that does not opt in kept its manual scale all along", async () => {
      assert.equal((await status(app, "manual", ns)).replicas, 2);
      assert.doesNotMatch(app.log(), /"msg":"autoscaling".*"function":"manual"/);
    });
  } catch (err) {
    console.error(app.log());
    throw err;
  } finally {
    await finishAppliance(app, client, { namespace: ns, hadDefaultNamespace: hadDefault });
  }
});
