/**
 * End-to-end: `faasd up --queue nats://…` with Debian's nats-server — an async request is stored
 * in JetStream, invoked, and its result posted to a callback; with nats-server down the async
 * endpoint answers 503 naming NATS (nothing accepted that could be lost), and accepts again once
 * the server is back.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Containerd } from "../../src/containerd/client.ts";
import { api, cleanUpAppliance, createNamespace, startAppliance } from "../fixtures/appliance.ts";
import { functionImage } from "../fixtures/function_image.ts";
import { startNatsServer } from "../fixtures/nats.ts";
import { startRegistry } from "../fixtures/registry.ts";
import { pushImage } from "../fixtures/registry_push.ts";
import { until } from "../fixtures/poll.ts";

const SOCKET = "/run/containerd/containerd.sock";

Deno.test({
  name: "async on NATS JetStream: 202, invoked, called back; 503 while NATS is down",
  // The NATS client keeps timers of its own for a moment after close (see queue_jetstream_test).
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await using registry = await startRegistry();
    await pushImage(registry, "fn/hello", "1", functionImage("v1"));
    const nats = await startNatsServer();
    const client = await Containerd.connect({ socket: SOCKET });
    const hadDefault = (await client.namespaces.list()).some((n) => n.name === "openfaas-fn");
    const ns = `fnats-${randomBytes(3).toString("hex")}`;
    const received: { id: string; status: string; body: string }[] = [];
    const callbacks = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      async (req) => {
        received.push({
          id: req.headers.get("x-call-id") ?? "",
          status: req.headers.get("x-function-status") ?? "",
          body: await req.text(),
        });
        return new Response("ok");
      },
    );
    const callbackUrl = `http://127.0.0.1:${callbacks.addr.port}/cb`;
    const app = await startAppliance({ args: ["--queue", nats.url] });
    const post = (body: string) =>
      fetch(`${app.url}/async-function/hello.${ns}/cgi-bin/echo`, {
        method: "POST",
        headers: { "x-callback-url": callbackUrl },
        body,
      });
    try {
      await createNamespace(app, ns);
      const deployed = await api(app, "POST", "/system/functions", {
        service: "hello",
        image: `${registry.host}/fn/hello:1`,
        namespace: ns,
      });
      assert.equal(deployed.status, 202, deployed.text);

      await t.step("an accepted request is invoked and its result called back", async () => {
        const res = await post("through jetstream");
        assert.equal(res.status, 202, await res.text());
        const id = res.headers.get("x-call-id")!;
        await until("the callback", () => received.some((c) => c.id === id));
        const cb = received.find((c) => c.id === id)!;
        assert.equal(cb.status, "200");
        assert.equal(cb.body, "through jetstream");
      });

      await t.step("nats-server down: 503 naming NATS; back up: accepted again", async () => {
        await nats.kill();
        const res = await post("while down");
        assert.equal(res.status, 503);
        assert.match(await res.text(), /NATS/);
        await nats.restart();
        let id = "";
        await until("an async request accepted again", async () => {
          const again = await post("after restart");
          await again.body?.cancel();
          id = again.headers.get("x-call-id") ?? "";
          return again.status === 202;
        });
        await until("its callback", () => received.some((c) => c.id === id));
        assert.equal(received.find((c) => c.id === id)!.body, "after restart");
      });
    } finally {
      const failures = await cleanUpAppliance(app, client, {
        namespace: ns,
        hadDefaultNamespace: hadDefault,
      });
      await client.close();
      await callbacks.shutdown();
      await nats.stop();
      assert.deepEqual(failures, []);
    }
  },
});
