/**
 * End-to-end: a function that keeps connections open (tests/fixtures/keepalive_image.ts, a static
 * C HTTP/1.1 server) behind the gateway's proxy, whose own HTTP/1.1 client pools connections to
 * it: sequential and concurrent GETs, a HEAD, and a POST (through fetch) all answer; a crash
 * restart keeps the replica's netns and IP; delete removes the replica's pinned netns.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Containerd } from "../../src/containerd/client.ts";
import { replicaNetnsPrefix } from "../../src/provider/provider.ts";
import {
  type Appliance,
  createNamespace,
  finishAppliance,
  startAppliance,
} from "../fixtures/appliance.ts";
import { KEEPALIVE_BODY, keepAliveImage } from "../fixtures/keepalive_image.ts";
import { startRegistry } from "../fixtures/registry.ts";
import { pushImage } from "../fixtures/registry_push.ts";

const SOCKET = "/run/containerd/containerd.sock";

async function api(app: Appliance, method: string, path: string, body?: unknown) {
  const res = await fetch(`${app.url}${path}`, {
    method,
    headers: { authorization: app.auth },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

async function netnsNames(): Promise<string[]> {
  const out = await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").map((l) => l.split(" ")[0]).filter(
    Boolean,
  );
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("keep-alive function: pooled connections through the proxy, pinned netns", async (t) => {
  const image = await keepAliveImage();
  await using registry = await startRegistry();
  await pushImage(registry, "fn/keepalive", "1", image);
  const client = await Containerd.connect({ socket: SOCKET });
  const hadDefault = (await client.namespaces.list()).some((n) => n.name === "openfaas-fn");
  const ns = `fka-${randomBytes(3).toString("hex")}`;
  const app = await startAppliance();
  const url = `${app.url}/function/ka.${ns}/`;
  try {
    const owner = (await readFile(join(app.dataDir, "provider", "owner"), "utf8")).trim();
    const netns = `${replicaNetnsPrefix(owner)}${ns}.ka-1-0`;
    await createNamespace(app, ns);
    const deployed = await api(app, "POST", "/system/functions", {
      service: "ka",
      image: `${registry.host}/fn/keepalive:1`,
      namespace: ns,
      envVars: { grace_period: "5s" },
    });
    assert.equal(deployed.status, 202, deployed.text);

    await t.step("the replica runs in its pinned netns", async () => {
      assert.ok((await netnsNames()).includes(netns), `netns ${netns} exists`);
    });

    await t.step("sequential and concurrent GETs, a HEAD and a POST all answer", async () => {
      for (let i = 0; i < 200; i++) {
        const res = await fetch(`${url}seq?i=${i}`);
        assert.equal(res.status, 200);
        assert.equal(await res.text(), KEEPALIVE_BODY);
        assert.ok(res.headers.get("x-call-id"));
      }
      const answers = await Promise.all(Array.from({ length: 32 }, async () => {
        const res = await fetch(url);
        return `${res.status} ${await res.text()}`;
      }));
      assert.deepEqual(new Set(answers), new Set([`200 ${KEEPALIVE_BODY}`]));
      const head = await fetch(url, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(await head.text(), "");
      const post = await fetch(url, { method: "POST", body: "x".repeat(100_000) });
      assert.equal(post.status, 200);
      assert.equal(await post.text(), KEEPALIVE_BODY);
    });

    await t.step(
      "a crashed replica restarts in the same netns; pooled connections recover",
      async () => {
        const before = await client.tasks.get(ns, "ka-1-0");
        const exited = client.tasks.wait(ns, "ka-1-0");
        exited.catch(() => {});
        await client.tasks.kill(ns, "ka-1-0", 9, { all: true });
        await exited;
        await until("the restarted replica to answer", async () => {
          const res = await fetch(url);
          await res.body?.cancel();
          return res.status === 200;
        });
        const after = await client.tasks.get(ns, "ka-1-0");
        assert.notEqual(after.pid, before.pid);
        assert.ok((await netnsNames()).includes(netns));
        // Connections the proxy pooled to the old process are gone; requests still answer.
        for (let i = 0; i < 20; i++) {
          const res = await fetch(url);
          assert.equal(`${res.status} ${await res.text()}`, `200 ${KEEPALIVE_BODY}`);
        }
      },
    );

    await t.step("delete removes the pinned netns", async () => {
      const del = await api(app, "DELETE", `/system/functions?namespace=${ns}`, {
        functionName: "ka",
      });
      assert.equal(del.status, 202, del.text);
      assert.ok(!(await netnsNames()).includes(netns), `netns ${netns} is gone`);
      assert.equal(await fetch(url).then(async (r) => (await r.body?.cancel(), r.status)), 404);
    });
  } finally {
    await finishAppliance(app, client, { namespace: ns, hadDefaultNamespace: hadDefault });
  }
});
