/**
 * Scenario "gateway": what the gateway of `faasd up` adds to a synchronous invocation (issue #5),
 * with a keep-alive function (tests/fixtures/keepalive_image.ts: a static C HTTP/1.1 server that
 * keeps connections open), so that neither path pays for a new TCP connection per request.
 * Measured in the same run: one connection, sequential GETs, direct to the replica's IP vs
 * through `/function/NAME.NS/` (p50/p99 and the paired difference), and through two floors (a
 * bare Deno.serve → fetch proxy, and a Deno TCP relay that parses nothing); `wrk` at 16
 * connections both ways; POST /async-function/ → 202 per second against POST /function/; the
 * appliance's idle memory. Everything is removed at the end, and checked, as in the provider
 * scenario.
 */

import { randomBytes } from "node:crypto";
import { Containerd } from "../../src/containerd/client.ts";
import {
  type Appliance,
  createNamespace,
  startAppliance,
  type TestNetwork,
} from "../../tests/fixtures/appliance.ts";
import { KEEPALIVE_BODY, keepAliveImage } from "../../tests/fixtures/keepalive_image.ts";
import { type Registry, startRegistry } from "../../tests/fixtures/registry.ts";
import { pushImage } from "../../tests/fixtures/registry_push.ts";
import {
  type Figure,
  median,
  percentile,
  type Scenario,
  type ScenarioContext,
} from "../harness.ts";
import {
  APPLIANCE_V8_FLAGS,
  appliancePid,
  checkUndisturbed,
  finishBench,
  get200,
  loadavg,
  mb,
  noteForeignFunctions,
  output,
  replicaIp,
  requireTool,
  settle,
  statusKb,
  timedGet,
  warmupFor,
  wrkPercentile,
} from "./provider.ts";

const DEFAULT_NS = "openfaas-fn";
const WRK_SECONDS = 3;
const WRK_CONNECTIONS = 16;
const FN = "ka";

const DIRECT = "keep-alive GET direct to the replica IP (1 connection)";
const WRK_DIRECT = `${WRK_CONNECTIONS} connections, direct: ms per request (1000 / req/s)`;

/** The gateway scenario. */
export function gatewayScenario(): Scenario {
  return {
    name: "gateway",
    description:
      "gateway overhead vs direct with a keep-alive function (p50/p99, wrk at 16 connections), appliance idle memory",
    run,
  };
}

interface Env {
  app: Appliance;
  ns: string;
  ctx: ScenarioContext;
  ip: string;
}

async function run(ctx: ScenarioContext): Promise<Figure[]> {
  await requireTool("wrk", ["--version"], "apt-get install wrk");
  // Compiled first: without gcc the scenario stops here, naming it, before anything starts.
  const image = await keepAliveImage();
  const client = await Containerd.connect({ socket: ctx.containerdSocket });
  ctx.facts.containerd = client.serverVersion.version;
  ctx.facts.containerdRevision = client.serverVersion.revision;
  const hadDefault = (await client.namespaces.list()).some((n) => n.name === DEFAULT_NS);
  const ns = `gbench-${randomBytes(3).toString("hex")}`;
  const failures: string[] = [];
  const figures: Figure[] = [];
  let registry: Registry | undefined;
  let app: Appliance | undefined;
  let network: TestNetwork | undefined;
  let dataDir: string | undefined;
  try {
    await noteForeignFunctions(client, ctx);
    ctx.facts["load average at start (1, 5, 15 min)"] = loadavg();
    registry = await startRegistry();
    await pushImage(registry, "bench/keepalive", "1", image);
    const ref = `${registry.host}/bench/keepalive:1`;
    // As shipped: `deno task faasd` and the compiled binary run with this V8 flag.
    Deno.env.set("DENO_V8_FLAGS", APPLIANCE_V8_FLAGS);
    app = await startAppliance();
    ({ network, dataDir } = app);
    ctx.facts.function =
      `${ref}: static C HTTP/1.1 server, 200 "ok", keep-alive (tests/fixtures/keepalive/server.c)`;
    ctx.log(`appliance ${app.url}, namespace ${ns}, bridge ${network.bridge} ${network.subnet}`);
    const pid = await appliancePid(app);
    await settle();
    ctx.facts["appliance idle RSS after start MB (all its processes)"] = mb(
      await treeRssKb(pid),
    );
    await createNamespace(app, ns);
    const deployed = await api(app, "POST", "/system/functions", {
      service: FN,
      image: ref,
      namespace: ns,
      envVars: { grace_period: "5s" },
    });
    if (deployed.status !== 202) {
      throw new Error(`deploy answered ${deployed.status}: ${deployed.text}`);
    }
    await get200(`${app.url}/function/${FN}.${ns}/`, KEEPALIVE_BODY);
    const env: Env = { app, ns, ctx, ip: await replicaIp(app, ns, FN) };
    await settle();
    ctx.facts["appliance idle RSS with 1 function MB (all its processes)"] = mb(
      await treeRssKb(pid),
    );
    figures.push(...await latencyFigures(env));
    figures.push(...await throughputFigures(env));
    await settle();
    ctx.facts["appliance RSS after the load MB (all its processes)"] = mb(await treeRssKb(pid));
    ctx.facts["appliance VmHWM (peak RSS) MB"] = mb(await statusKb(pid, "VmHWM"));
    figures.push(...await asyncAcceptFigures(env));
    ctx.facts["load average at end (1, 5, 15 min)"] = loadavg();
    checkUndisturbed(app.log(), ns);
  } catch (err) {
    if (app) ctx.log(`appliance log (tail):\n${app.log().slice(-4000)}`);
    throw err;
  } finally {
    if (app) {
      const res = await api(app, "DELETE", `/system/functions?namespace=${ns}`, {
        functionName: FN,
      }).catch((err) => ({ status: 0, text: String(err) }));
      if (res.status !== 202 && res.status !== 404) {
        failures.push(`delete ${FN}: ${res.status} ${res.text}`);
      }
    }
    await finishBench(ctx, app, failures, { client, ns, hadDefault, network, dataDir, registry });
  }
  if (failures.length > 0) throw new Error(`cleanup failed: ${failures.join("; ")}`);
  return figures;
}

/**
 * Sequential GETs on one kept-alive connection each way (Deno's fetch pools per origin): direct
 * against the gateway, and against the two floors (a bare Deno proxy and a Deno TCP relay, each
 * in a process of its own), in pairs, the three taking turns in blocks of 100 pairs so that the
 * machine's load (shared with other sessions) weighs on all three alike. A pair is the scenario's
 * original measurement (direct and one proxy alternating); a loop over all four at once slows
 * every proxy by 0.03–0.08 ms (each request then wakes a different process).
 */
async function latencyFigures(env: Env): Promise<Figure[]> {
  const n = env.ctx.iterations(2000);
  const warmup = Math.max(warmupFor(n), 200);
  const directUrl = `http://${env.ip}:8080/`;
  const gatewayUrl = `${env.app.url}/function/${FN}.${env.ns}/`;
  await using bare = await floorProxy(BARE_PROXY, directUrl);
  await using relay = await floorProxy(TCP_RELAY, directUrl);
  env.ctx.log(
    `keep-alive GET pairs × ${n} each, in turns: ${directUrl} with ${gatewayUrl}, ` +
      `the bare Deno proxy ${bare.url}, the Deno TCP relay ${relay.url}`,
  );
  // Pairs (direct, one of the three) in blocks of 100, the three taking turns block by block;
  // within a pair which one goes first alternates.
  const targets = [gatewayUrl, bare.url, relay.url];
  const directs: number[][] = [[], [], []];
  const through: number[][] = [[], [], []];
  const BLOCK = 100;
  for (let start = 0; start < warmup + n; start += BLOCK) {
    for (let j = 0; j < 3; j++) {
      for (let i = start; i < Math.min(start + BLOCK, warmup + n); i++) {
        let d: number, x: number;
        if (i % 2 === 0) {
          d = await timedGet(directUrl, KEEPALIVE_BODY);
          x = await timedGet(targets[j], KEEPALIVE_BODY);
        } else {
          x = await timedGet(targets[j], KEEPALIVE_BODY);
          d = await timedGet(directUrl, KEEPALIVE_BODY);
        }
        if (i < warmup) continue;
        directs[j].push(d);
        through[j].push(x);
      }
    }
  }
  const direct = directs[0];
  const [gateway, bareS, relayS] = through;
  const diffs = through.map((xs, j) => xs.map((x, i) => x - directs[j][i]));
  const f = env.ctx.facts;
  const p = (xs: number[], q: number) => percentile(xs, q).toFixed(3);
  f["keep-alive GET direct p50 / p99 ms"] = `${median(direct).toFixed(3)} / ${p(direct, 99)}`;
  f["keep-alive GET gateway p50 / p99 ms"] = `${median(gateway).toFixed(3)} / ${p(gateway, 99)}`;
  f["gateway added p50 ms (median gateway − median direct; target ≤ 0.1)"] =
    (median(gateway) - median(direct)).toFixed(3);
  f["gateway added p99 ms (p99 gateway − p99 direct; target ≤ 2)"] =
    (percentile(gateway, 99) - percentile(direct, 99)).toFixed(3);
  f["gateway added p99 ms (p99 of paired differences)"] = p(diffs[0], 99);
  f["bare Deno proxy added p50 ms (median − median; Deno.serve → fetch)"] =
    (median(bareS) - median(directs[1])).toFixed(3);
  f["Deno TCP relay added p50 ms (median − median; no HTTP parsed, the floor)"] =
    (median(relayS) - median(directs[2])).toFixed(3);
  env.ctx.log(
    `latency: direct ${f["keep-alive GET direct p50 / p99 ms"]}, gateway ${
      f["keep-alive GET gateway p50 / p99 ms"]
    }, bare proxy ${median(bareS).toFixed(3)}, relay ${median(relayS).toFixed(3)}`,
  );
  return [
    { name: DIRECT, unit: "ms", samples: direct },
    {
      name: "keep-alive GET through the gateway /function/ (1 connection)",
      unit: "ms",
      samples: gateway,
      baseline: DIRECT,
    },
    { name: "gateway added latency (paired: gateway − direct)", unit: "ms", samples: diffs[0] },
    {
      name: "keep-alive GET through a bare Deno proxy (1 connection)",
      unit: "ms",
      samples: bareS,
      baseline: DIRECT,
    },
    {
      name: "bare Deno proxy added latency (paired: proxy − direct)",
      unit: "ms",
      samples: diffs[1],
    },
    {
      name: "keep-alive GET through a Deno TCP relay (1 connection)",
      unit: "ms",
      samples: relayS,
      baseline: DIRECT,
    },
    {
      name: "Deno TCP relay added latency (paired: relay − direct)",
      unit: "ms",
      samples: diffs[2],
    },
  ];
}

// A bare Deno proxy: Deno.serve → fetch → Response, nothing else.
const BARE_PROXY = `const upstream = Deno.args[0];
Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: ({ port }) => console.log(port) }, async (req) => {
  const u = new URL(req.url);
  const res = await fetch(upstream + u.pathname.slice(1) + u.search, { method: req.method, headers: req.headers });
  return new Response(res.body, { status: res.status, headers: res.headers });
});
`;

// A Deno TCP relay: each client connection gets its own connection to the replica and bytes are
// copied both ways with conn.read/conn.write, no HTTP parsed at all: the floor of any proxy
// written in Deno on this machine (the front door parses, routes and pools on top of this).
const TCP_RELAY = `const [host, port] = new URL(Deno.args[0]).host.split(":");
async function pump(a, b) {
  const buf = new Uint8Array(65536);
  try {
    for (;;) {
      const n = await a.read(buf);
      if (n === null) break;
      for (let o = 0; o < n;) o += await b.write(buf.subarray(o, n));
    }
  } catch { /* closed */ }
  try { b.close(); } catch { /* closed */ }
}
const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
console.log(l.addr.port);
for await (const c of l) {
  c.setNoDelay(true);
  const u = await Deno.connect({ hostname: host, port: Number(port) });
  u.setNoDelay(true);
  pump(c, u);
  pump(u, c);
}
`;

/** Runs a floor proxy (`source`, JavaScript) in a process of its own, in front of `upstream`. */
async function floorProxy(source: string, upstream: string) {
  const script = await Deno.makeTempFile({ suffix: ".js" });
  await Deno.writeTextFile(script, source);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--v8-flags=${APPLIANCE_V8_FLAGS}`, script, upstream],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    child.kill("SIGTERM");
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await Deno.remove(script).catch(() => {});
  };
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    const port = Number(value?.trim());
    if (!port) throw new Error(`the floor proxy printed no port: ${value}`);
    return { url: `http://127.0.0.1:${port}/`, [Symbol.asyncDispose]: stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** wrk at 16 connections, direct and through the gateway alternately, `runs` times each. */
async function throughputFigures(env: Env): Promise<Figure[]> {
  const runs = env.ctx.iterations(3);
  const directUrl = `http://${env.ip}:8080/`;
  const gatewayUrl = `${env.app.url}/function/${FN}.${env.ns}/`;
  env.ctx.log(`throughput: ${runs} × ${WRK_SECONDS} s of wrk -c${WRK_CONNECTIONS} each way`);
  const direct: WrkResult[] = [];
  const gateway: WrkResult[] = [];
  // A short untimed run each way first: the appliance's JIT and connection pool warm up.
  await wrk(directUrl, 1);
  await wrk(gatewayUrl, 1);
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) {
      direct.push(await wrk(directUrl));
      gateway.push(await wrk(gatewayUrl));
    } else {
      gateway.push(await wrk(gatewayUrl));
      direct.push(await wrk(directUrl));
    }
    env.ctx.log(`  run ${i + 1}: direct ${fmtWrk(direct[i])}; gateway ${fmtWrk(gateway[i])}`);
  }
  const f = env.ctx.facts;
  f["throughput direct (runs)"] = direct.map(fmtWrk).join("; ");
  f["throughput gateway (runs)"] = gateway.map(fmtWrk).join("; ");
  const gRps = median(gateway.map((r) => r.rps));
  const dRps = median(direct.map((r) => r.rps));
  f["throughput gateway median req/s (target ≥ 18,000)"] = gRps.toFixed(0);
  f["throughput gateway / direct (median req/s; target ≥ 0.15)"] = (gRps / dRps).toFixed(3);
  return [
    { name: WRK_DIRECT, unit: "ms", samples: direct.map((r) => 1000 / r.rps) },
    {
      name: `${WRK_CONNECTIONS} connections, gateway: ms per request (1000 / req/s)`,
      unit: "ms",
      samples: gateway.map((r) => 1000 / r.rps),
      baseline: WRK_DIRECT,
    },
  ];
}

/**
 * POST /async-function/ → 202 at 16 connections (each 202 only after the journal's fdatasync),
 * against POST /function/ (a synchronous invocation) in the same run as the baseline. The worker
 * drains what was accepted before the next run.
 */
async function asyncAcceptFigures(env: Env): Promise<Figure[]> {
  const runs = env.ctx.iterations(3);
  const script = await Deno.makeTempFile({ suffix: ".lua" });
  await Deno.writeTextFile(script, 'wrk.method = "POST"\nwrk.body = "payload"\n');
  const asyncUrl = `${env.app.url}/async-function/${FN}.${env.ns}/`;
  const syncUrl = `${env.app.url}/function/${FN}.${env.ns}/`;
  const accepted: WrkResult[] = [];
  const sync: WrkResult[] = [];
  try {
    env.ctx.log(`async accept: ${runs} × ${WRK_SECONDS} s of wrk -c${WRK_CONNECTIONS} POST`);
    for (let i = 0; i < runs; i++) {
      sync.push(await wrk(syncUrl, WRK_SECONDS, script));
      accepted.push(await wrk(asyncUrl, WRK_SECONDS, script));
      const secs = await drained(env.app);
      env.ctx.log(
        `  run ${i + 1}: sync ${fmtWrk(sync[i])}; async accept ${fmtWrk(accepted[i])}; ` +
          `drained in ${secs.toFixed(1)} s`,
      );
    }
  } finally {
    await Deno.remove(script).catch(() => {});
  }
  const f = env.ctx.facts;
  f["async accept (runs)"] = accepted.map(fmtWrk).join("; ");
  f["async accept median req/s (target ≥ 1,000, fsync-durable)"] = median(
    accepted.map((r) => r.rps),
  ).toFixed(0);
  const SYNC = `${WRK_CONNECTIONS} connections, POST /function/: ms per request`;
  return [
    { name: SYNC, unit: "ms", samples: sync.map((r) => 1000 / r.rps) },
    {
      name: `${WRK_CONNECTIONS} connections, POST /async-function/ → 202: ms per request`,
      unit: "ms",
      samples: accepted.map((r) => 1000 / r.rps),
      baseline: SYNC,
    },
  ];
}

/** Waits until the async queue is empty (faasd_queue_depth 0); the seconds it took. */
async function drained(app: Appliance): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const text = await (await fetch(`${app.url}/metrics`)).text();
    const depth = Number(text.match(/^faasd_queue_depth (\S+)$/m)?.[1] ?? NaN);
    if (depth === 0) return (performance.now() - t0) / 1000;
    if (performance.now() - t0 > 120_000) {
      throw new Error(`the async queue did not drain: ${depth}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- helpers ----

async function api(app: Appliance, method: string, path: string, body?: unknown) {
  const res = await fetch(`${app.url}${path}`, {
    method,
    headers: { authorization: app.auth },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

/** RSS of a process and all its descendants, in kB (our processes; containerd's shims are not). */
async function treeRssKb(pid: number): Promise<number> {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    const kids = (await output("pgrep", ["-P", String(pids[i])], [0, 1])).trim().split("\n")
      .filter(Boolean).map(Number);
    pids.push(...kids);
  }
  let total = 0;
  for (const p of pids) total += await statusKb(p, "VmRSS").catch(() => 0);
  return total;
}

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
}

function fmtWrk(r: WrkResult): string {
  return `${r.rps.toFixed(0)} req/s (p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms)`;
}

/** One wrk run (with a Lua `script` for POSTs); throws on socket errors and non-2xx answers. */
async function wrk(url: string, seconds = WRK_SECONDS, script?: string): Promise<WrkResult> {
  const out = await output("wrk", [
    "-t1",
    `-c${WRK_CONNECTIONS}`,
    `-d${seconds}s`,
    "--latency",
    ...(script ? ["-s", script] : []),
    url,
  ]);
  const rps = Number(out.match(/^Requests\/sec:\s+([\d.]+)/m)?.[1]);
  if (!Number.isFinite(rps) || rps <= 0) throw new Error(`wrk ${url}: no Requests/sec:\n${out}`);
  if (/Non-2xx or 3xx responses/.test(out)) throw new Error(`wrk ${url}: non-2xx answers:\n${out}`);
  if (/Socket errors/.test(out)) throw new Error(`wrk ${url}: socket errors:\n${out}`);
  return { rps, p50: wrkPercentile(out, "50%"), p99: wrkPercentile(out, "99%") };
}
