/**
 * End-to-end: `/metrics` of a real appliance counts invocations of a real function (by status
 * code, with durations), `/system/functions` reports the same count, and Debian's Prometheus
 * scrapes the endpoint and answers queries with those values.
 */

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { Containerd } from "../../src/containerd/client.ts";
import { api, createNamespace, finishAppliance, startAppliance } from "../fixtures/appliance.ts";
import { functionImage } from "../fixtures/function_image.ts";
import { startRegistry } from "../fixtures/registry.ts";
import { pushImage } from "../fixtures/registry_push.ts";

const SOCKET = "/run/containerd/containerd.sock";
const PROMETHEUS = "/usr/bin/prometheus";

/** The value of one sample line (`name{labels}`) in a scrape, undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Polls `check` until it returns a value (a readiness check, bounded). */
async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject).listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Debian's Prometheus scraping `target` every second, with its storage in a temp dir. */
async function startPrometheus(target: string) {
  const dir = await mkdtemp(join(tmpdir(), "faasd-prometheus-"));
  const config = join(dir, "prometheus.yml");
  await writeFile(
    config,
    stringify({
      global: { scrape_interval: "1s", evaluation_interval: "1s" },
      scrape_configs: [{
        job_name: "faasd",
        scrape_interval: "1s",
        static_configs: [{ targets: [target] }],
      }],
    }),
  );
  let log = "";
  for (let attempt = 1;; attempt++) {
    const port = await freePort();
    const child = new Deno.Command(PROMETHEUS, {
      args: [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const drained = (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) log += chunk;
    })();
    const url = `http://127.0.0.1:${port}`;
    const stop = async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
      await drained;
    };
    const exited = child.status.then(() => "exited" as const);
    const ready = (async () => {
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const res = await fetch(`${url}/-/ready`).catch(() => undefined);
        await res?.body?.cancel();
        if (res?.status === 200) return "ready" as const;
        await new Promise((r) => setTimeout(r, 100));
      }
      return "timeout" as const;
    })();
    const state = await Promise.race([ready, exited]);
    if (state === "ready") {
      return {
        url,
        log: () => log,
        stop: async () => {
          await stop();
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    await stop();
    if (!/address already in use/.test(log) || attempt >= 5) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`prometheus did not start (${state}):\n${log}`);
    }
  }
}

Deno.test("metrics: invocations are counted by code, reported in /system/functions, and scraped by Prometheus", async (t) => {
  await using registry = await startRegistry();
  await pushImage(registry, "fn/metered", "1", functionImage("m1"));
  const client = await Containerd.connect({ socket: SOCKET });
  const hadDefault = (await client.namespaces.list()).some((n) => n.name === "openfaas-fn");
  const ns = `me2e-${randomBytes(3).toString("hex")}`;
  const app = await startAppliance();
  const functionName = `metered.${ns}`;
  let prometheus: Awaited<ReturnType<typeof startPrometheus>> | undefined;
  try {
    await t.step(
      "a function is deployed and invoked 5 times with 200 and 3 times with 404",
      async () => {
        await createNamespace(app, ns);
        const deployed = await api(app, "POST", "/system/functions", {
          service: "metered",
          image: `${registry.host}/fn/metered:1`,
          namespace: ns,
        });
        assert.equal(deployed.status, 202, deployed.text);
        for (let i = 0; i < 5; i++) {
          const res = await fetch(`${app.url}/function/${functionName}/cgi-bin/echo`, {
            method: "POST",
            body: `ping ${i}`,
          });
          assert.equal(res.status, 200);
          assert.equal(await res.text(), `ping ${i}`);
        }
        for (let i = 0; i < 3; i++) {
          const res = await fetch(`${app.url}/function/${functionName}/no-such-page`);
          assert.equal(res.status, 404);
          await res.body?.cancel();
        }
      },
    );

    await t.step("/metrics (no credentials) has the counters, histogram and replicas", async () => {
      const res = await fetch(`${app.url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      const fn = `function_name="${functionName}"`;
      assert.equal(sample(text, `gateway_function_invocation_total{${fn},code="200"}`), 5, text);
      assert.equal(sample(text, `gateway_function_invocation_total{${fn},code="404"}`), 3);
      assert.equal(sample(text, `gateway_function_invocation_started{${fn}}`), 8);
      assert.equal(sample(text, `gateway_functions_seconds_count{${fn},code="200"}`), 5);
      assert.equal(sample(text, `gateway_functions_seconds_bucket{${fn},code="200",le="+Inf"}`), 5);
      assert.ok(sample(text, `gateway_functions_seconds_sum{${fn},code="200"}`)! > 0);
      assert.equal(sample(text, `gateway_service_count{${fn}}`), 1);
      assert.match(text, /^# TYPE gateway_functions_seconds histogram$/m);
      assert.match(text, /^# TYPE gateway_function_invocation_total counter$/m);
      assert.ok(sample(text, "process_resident_memory_bytes")! > 10_000_000);
    });

    await t.step("invocationCount in /system/functions is the sum over codes", async () => {
      const [listed] = (await api(app, "GET", `/system/functions?namespace=${ns}`)).json();
      assert.equal(listed.invocationCount, 8);
      assert.equal(listed.replicas, 1);
      const one = (await api(app, "GET", `/system/function/metered?namespace=${ns}`)).json();
      assert.equal(one.invocationCount, 8);
    });

    await t.step(
      "Debian's Prometheus scrapes /metrics and answers queries with the values",
      async () => {
        prometheus = await startPrometheus(new URL(app.url).host);
        const query = async (q: string) => {
          const res = await fetch(`${prometheus!.url}/api/v1/query?query=${encodeURIComponent(q)}`);
          const body = await res.json();
          assert.equal(body.status, "success", JSON.stringify(body));
          const [first] = body.data.result as Array<{ value: [number, string] }>;
          return first ? Number(first.value[1]) : undefined;
        };
        const ok = await until(
          "Prometheus to scrape gateway_function_invocation_total",
          () =>
            query(`gateway_function_invocation_total{function_name="${functionName}",code="200"}`),
        );
        assert.equal(ok, 5);
        assert.equal(
          await query(`sum(gateway_function_invocation_total{function_name="${functionName}"})`),
          8,
        );
        assert.equal(
          await query(
            `gateway_functions_seconds_count{function_name="${functionName}",code="404"}`,
          ),
          3,
        );
        assert.equal(await query(`gateway_service_count{function_name="${functionName}"}`), 1);
        assert.equal(await query(`up{job="faasd"}`), 1);
      },
    );
  } catch (err) {
    console.error(app.log());
    if (prometheus) console.error(prometheus.log());
    throw err;
  } finally {
    await prometheus?.stop();
    await finishAppliance(app, client, { namespace: ns, hadDefaultNamespace: hadDefault });
  }
});
