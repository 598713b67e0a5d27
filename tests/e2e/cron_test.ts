/**
 * End-to-end: the gateway's cron invokes a function annotated `topic: cron-function` on its
 * schedule (the seconds extension, every two seconds) through a real appliance, and stops after
 * the function is deleted. The function records each call on stderr, read back through
 * /system/logs.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Containerd } from "../../src/containerd/client.ts";
import { hostPlatform } from "../../src/images/platform.ts";
import {
  api,
  type Appliance,
  createNamespace,
  finishAppliance,
  startAppliance,
} from "../fixtures/appliance.ts";
import { buildImage, busyboxLayer } from "../fixtures/oci_image.ts";
import { startRegistry } from "../fixtures/registry.ts";
import { pushImage } from "../fixtures/registry_push.ts";
import { tar } from "../fixtures/tar.ts";
import { until } from "../fixtures/poll.ts";

const SOCKET = "/run/containerd/containerd.sock";

/** busybox httpd runs cgi-bin/index.cgi for `/` when there is no index.html. */
function cronImage() {
  const enc = new TextEncoder();
  const script = '#!/bin/sh\necho "Content-Type: text/plain"\necho\n' +
    'echo "cron-run $REQUEST_METHOD connector=$HTTP_X_CONNECTOR length=${CONTENT_LENGTH:-0}" >&2\n' +
    "echo ok\n";
  return buildImage({
    architecture: hostPlatform().architecture,
    layers: [
      { tar: busyboxLayer(), compression: "gzip" },
      {
        tar: tar([
          { type: "directory", name: "www" },
          { type: "directory", name: "www/cgi-bin" },
          { type: "file", name: "www/cgi-bin/index.cgi", mode: 0o755, content: enc.encode(script) },
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

/** The appliance's JSON log lines about `fn` with message `msg`, from `offset` on. */
function logLines(app: Appliance, msg: string, fn: string, offset = 0) {
  return app.log().slice(offset).split("\n").filter((l) =>
    l.includes(`"msg":"${msg}"`) && l.includes(`"function":"${fn}"`)
  );
}

Deno.test("cron: a cron-function is invoked on its schedule and no more after delete", async () => {
  await using registry = await startRegistry();
  await pushImage(registry, "fn/ticker", "1", cronImage());
  const client = await Containerd.connect({ socket: SOCKET });
  const hadDefault = (await client.namespaces.list()).some((n) => n.name === "openfaas-fn");
  const ns = `cron-${randomBytes(3).toString("hex")}`;
  const app = await startAppliance();
  let ok = false;
  try {
    await createNamespace(app, ns);
    const deployed = await api(app, "POST", "/system/functions", {
      service: "ticker",
      image: `${registry.host}/fn/ticker:1`,
      namespace: ns,
      annotations: { topic: "cron-function", schedule: "*/2 * * * * *" },
    });
    assert.equal(deployed.status, 202, deployed.text);

    // The function itself saw at least two POST / calls with X-Connector: cron and no body.
    let runs: string[] = [];
    await until("two cron runs in the function's logs", async () => {
      const res = await api(
        app,
        "GET",
        `/system/logs?name=ticker&namespace=${ns}&tail=-1&follow=false`,
      );
      runs = res.text.split("\n").filter(Boolean).map((l) => JSON.parse(l).text)
        .filter((t: string) => t.startsWith("cron-run"));
      return runs.length >= 2;
    });
    assert.deepEqual(runs.slice(0, 2), [
      "cron-run POST connector=cron length=0",
      "cron-run POST connector=cron length=0",
    ]);
    const listed = JSON.parse((await api(app, "GET", `/system/functions?namespace=${ns}`)).text);
    assert.ok(listed[0].invocationCount >= 2, "the runs count as invocations");
    assert.ok(logLines(app, "cron invoked", "ticker").some((l) => l.includes('"status":200')));

    const removed = await api(app, "DELETE", "/system/functions", {
      functionName: "ticker",
      namespace: ns,
    });
    assert.equal(removed.status, 202, removed.text);
    await until("the schedule to be dropped", () => {
      return logLines(app, "cron schedule removed", "ticker").length > 0;
    });
    const dropped = app.log().lastIndexOf('"msg":"cron schedule removed"');
    // An absence has no readiness check: watch three periods of the old schedule.
    await new Promise((r) => setTimeout(r, 6_000));
    assert.deepEqual(logLines(app, "cron run", "ticker", dropped), []);
    ok = true;
  } finally {
    await api(app, "DELETE", "/system/functions", { functionName: "ticker", namespace: ns })
      .catch(() => {});
    if (!ok) console.error(app.log());
    await finishAppliance(app, client, { namespace: ns, hadDefaultNamespace: hadDefault });
  }
});
