/**
 * Scenario "provider": the function provider end to end, driven through `faasd up`'s HTTP API as
 * a client would drive it (issue #4). The appliance runs as a child process with its own data
 * dir, free ports and a bridge and /24 of its own; the function is the e2e tests' busybox httpd
 * image, pushed to a local registry. Everything happens in a fresh namespace created through the
 * API, and everything is removed at the end: functions deleted through the API, the appliance
 * stopped, the namespace purged, the bridge and firewall chains removed, the registry stopped.
 * The scenario then checks that no namespace, shim, link or iptables rule of the run is left.
 */

import { randomBytes } from "node:crypto";
import { readdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { Containerd } from "../../src/containerd/client.ts";
import { FailedPreconditionError, NotFoundError } from "../../src/errors.ts";
import { FUNCTION_LABEL } from "../../src/provider/function_record.ts";
import {
  type Appliance,
  createNamespace,
  removeTestNetwork,
  startAppliance,
  type TestNetwork,
} from "../../tests/fixtures/appliance.ts";
import { freezerState } from "../../tests/fixtures/cgroup.ts";
import { functionImage } from "../../tests/fixtures/function_image.ts";
import { purgeNamespace } from "../../tests/fixtures/namespace.ts";
import { type Registry, startRegistry } from "../../tests/fixtures/registry.ts";
import { pushImage } from "../../tests/fixtures/registry_push.ts";
import {
  type Figure,
  measure,
  median,
  percentile,
  type Scenario,
  type ScenarioContext,
} from "../harness.ts";

const DEFAULT_NS = "openfaas-fn";
/** The V8 flags `faasd up` ships with (deno.json's faasd task, scripts/build.ts). */
export const APPLIANCE_V8_FLAGS = "--max-semi-space-size=1,--heap-growing-percent=30";
const INDEX_BODY = "hello from bench\n";
/** Functions deployed at once when many are needed. */
const CONCURRENCY = 4;
/** Functions of the memory figure. */
const MEMORY_FUNCTIONS = 10;
/** Functions of the fleet figures (the list and the appliance's memory growth). */
const FLEET_FUNCTIONS = 100;
/** How long one throughput run lasts, in seconds. */
const WRK_SECONDS = 3;
const WRK_CONNECTIONS = 16;

const DIRECT = "warm GET / direct to the replica IP";
const WRK_DIRECT = `${WRK_CONNECTIONS} connections, direct: ms per request (1000 / req/s)`;
const DEPLOY = "deploy → first 200 (image present)";
const DEPLOY_RUNC = "deploy → first 200 (image present), runc (baseline)";
const RESUME_RPC = "Tasks.Resume of the paused replica (containerd RPC alone)";

/** The provider scenario. */
export function providerScenario(): Scenario {
  return {
    name: "provider",
    description:
      "deploy, scale from zero, crash restart, invoke through the proxy vs direct, delete, memory per function, 100 functions",
    run,
  };
}

/** What every figure needs. */
interface Env {
  app: Appliance;
  client: Containerd;
  ns: string;
  image: string;
  ctx: ScenarioContext;
  /** The appliance's process ID, for its memory. */
  pid: number;
  /** Functions deployed and not yet deleted; the cleanup deletes whatever is left. */
  live: Set<string>;
}

async function run(ctx: ScenarioContext): Promise<Figure[]> {
  await requireTool("wrk", ["--version"], "apt-get install wrk");
  const client = await Containerd.connect({ socket: ctx.containerdSocket });
  ctx.facts.containerd = client.serverVersion.version;
  ctx.facts.containerdRevision = client.serverVersion.revision;
  const hadDefault = (await client.namespaces.list()).some((n) => n.name === DEFAULT_NS);
  const ns = `fbench-${randomBytes(3).toString("hex")}`;
  const live = new Set<string>();
  const failures: string[] = [];
  const figures: Figure[] = [];
  let registry: Registry | undefined;
  let app: Appliance | undefined;
  let network: TestNetwork | undefined;
  let dataDir: string | undefined;
  try {
    await noteForeignFunctions(client, ctx);
    // Other sessions' tests share this containerd and these 2 cores; note what was going on.
    ctx.facts["other containerd namespaces at start"] = (await client.namespaces.list()).map((n) =>
      n.name
    ).join(", ") || "none";
    ctx.facts["load average at start (1, 5, 15 min)"] = loadavg();
    registry = await startRegistry();
    await pushImage(registry, "bench/fn", "1", functionImage("bench"));
    const image = `${registry.host}/bench/fn:1`;
    // As shipped: `deno task faasd` and the compiled binary run with this V8 flag.
    Deno.env.set("DENO_V8_FLAGS", APPLIANCE_V8_FLAGS);
    app = await startAppliance();
    ({ network, dataDir } = app);
    ctx.facts.appliance =
      `faasd up (deno run main.ts), bridge ${network.bridge}, subnet ${network.subnet}`;
    ctx.facts.function =
      `${image}: busybox httpd -f on :8080 (tests/fixtures/function_image.ts), exits on SIGTERM`;
    ctx.log(`appliance ${app.url}, namespace ${ns}, bridge ${network.bridge} ${network.subnet}`);
    await createNamespace(app, ns);
    ctx.facts["OCI runtime"] = runtimeOf(app);
    const pid = await appliancePid(app);
    const env: Env = { app, client, ns, image, ctx, pid, live };
    ctx.facts["appliance RSS after start MB"] = mb(await statusKb(pid, "VmRSS"));
    // The first deploy pulls the image into the namespace; every timed deploy finds it there.
    // It is deleted again so the memory figures start from a namespace without functions, and
    // come first, before request load has grown the appliance's heap.
    await deployAndWait(env, "warm");
    await removeFunctions(env, ["warm"]);
    const fleet = await fleetFigures(env);
    await deployAndWait(env, "warm");
    figures.push(...await invokeFigures(env));
    ctx.facts["appliance RSS after the sequential invokes MB"] = mb(await statusKb(pid, "VmRSS"));
    figures.push(...await throughputFigures(env));
    ctx.facts["appliance RSS after the throughput runs MB"] = mb(await statusKb(pid, "VmRSS"));
    figures.push(...await scaleFromZeroFigures(env));
    figures.push(...await deployFigures(env));
    figures.push(...await crashFigures(env));
    figures.push(await runcDeployFigure(env));
    app = env.app;
    figures.push(...fleet);
    ctx.facts["load average at end (1, 5, 15 min)"] = loadavg();
    checkUndisturbed(app.log(), ns);
  } catch (err) {
    if (app) ctx.log(`appliance log (tail):\n${app.log().slice(-4000)}`);
    throw err;
  } finally {
    if (app) {
      const left = await listFunctions(app, ns).catch(() => [] as string[]);
      for (const name of left) live.add(name);
      try {
        await removeFunctions({ app, client, ns, image: "", ctx, pid: 0, live }, [...live]);
      } catch (err) {
        failures.push(`delete functions: ${(err as Error).message}`);
      }
    }
    await finishBench(ctx, app, failures, { client, ns, hadDefault, network, dataDir, registry });
  }
  if (failures.length > 0) throw new Error(`cleanup failed: ${failures.join("; ")}`);
  return figures;
}

/**
 * The end of an appliance scenario, after its own clean-up (which added to `failures`): the
 * appliance stopped, then {@link cleanUpBench}; every failure is added and logged. The scenario
 * throws for them after its `finally`, so that an error of its own is not hidden.
 */
export async function finishBench(
  ctx: { log(line: string): void },
  app: Appliance | undefined,
  failures: string[],
  cleanup: Parameters<typeof cleanUpBench>[0],
): Promise<void> {
  if (app) {
    const code = await app.stop().catch((err) => {
      failures.push(`stop appliance: ${err.message}`);
      return 0;
    });
    if (code !== 0) failures.push(`the appliance exited with code ${code}`);
  }
  failures.push(...await cleanUpBench(cleanup));
  for (const f of failures) ctx.log(`cleanup: ${f}`);
}

/**
 * What every appliance scenario removes once its appliance has stopped: the namespace, the
 * default namespace when the scenario made it, the test network, the registry; then what is
 * still left over is reported too. Closes the client. Returns the failures.
 */
export async function cleanUpBench(r: {
  client: Containerd;
  ns: string;
  hadDefault: boolean;
  network?: TestNetwork;
  dataDir?: string;
  registry?: Registry;
}): Promise<string[]> {
  const { client, ns, network } = r;
  const failures = (await purgeNamespace(client, ns)).map((f) => `${ns}: ${f}`);
  if (!r.hadDefault) {
    await client.namespaces.delete(DEFAULT_NS).catch((err) => {
      if (!(err instanceof NotFoundError || err instanceof FailedPreconditionError)) {
        failures.push(`delete namespace ${DEFAULT_NS}: ${err.message}`);
      }
    });
  }
  if (network && r.dataDir) {
    await removeTestNetwork(network, r.dataDir).catch((err) =>
      failures.push(`remove test network: ${err.message}`)
    );
  }
  await r.registry?.stop().catch((err) => failures.push(`stop registry: ${err.message}`));
  failures.push(...await leftovers(client, ns, network));
  await client.close();
  return failures;
}

// ---- figures ----

/**
 * Warm invokes of the static index.html (no CGI fork), sequential, direct and through the proxy
 * alternately (which goes first alternates too), so both see the same machine state.
 */
async function invokeFigures(env: Env): Promise<Figure[]> {
  const n = env.ctx.iterations(500);
  const warmup = warmupFor(n);
  const ip = await replicaIp(env.app, env.ns, "warm");
  const directUrl = `http://${ip}:8080/`;
  const proxyUrl = `${env.app.url}/function/warm.${env.ns}/`;
  env.ctx.log(`warm invokes × ${n} each, alternating: ${directUrl} and ${proxyUrl}`);
  const direct: number[] = [];
  const proxied: number[] = [];
  const diff: number[] = [];
  for (let i = 0; i < warmup + n; i++) {
    let d: number, p: number;
    if (i % 2 === 0) {
      d = await timedGet(directUrl);
      p = await timedGet(proxyUrl);
    } else {
      p = await timedGet(proxyUrl);
      d = await timedGet(directUrl);
    }
    if (i < warmup) continue;
    direct.push(d);
    proxied.push(p);
    diff.push(p - d);
  }
  const f = env.ctx.facts;
  f["invoke p99 direct ms"] = percentile(direct, 99).toFixed(3);
  f["invoke p99 proxy ms"] = percentile(proxied, 99).toFixed(3);
  f["invoke overhead p50 ms (median proxy − median direct)"] = (median(proxied) - median(direct))
    .toFixed(3);
  f["invoke overhead p99 ms (p99 proxy − p99 direct)"] =
    (percentile(proxied, 99) - percentile(direct, 99)).toFixed(3);
  f["invoke overhead p99 ms (p99 of paired differences)"] = percentile(diff, 99).toFixed(3);
  env.ctx.log(
    `invoke: direct p50 ${median(direct).toFixed(3)} p99 ${f["invoke p99 direct ms"]}; proxy p50 ${
      median(proxied).toFixed(3)
    } p99 ${f["invoke p99 proxy ms"]}`,
  );
  return [
    { name: DIRECT, unit: "ms", samples: direct },
    {
      name: "warm GET /function/warm.NS/ through the proxy",
      unit: "ms",
      samples: proxied,
      baseline: DIRECT,
    },
    { name: "proxy overhead (paired: proxy − direct)", unit: "ms", samples: diff },
  ];
}

/**
 * wrk at 16 connections against a replica directly and through the proxy. busybox httpd closes
 * every connection, and about 40 % of them end in TIME_WAIT on the host side (src = the bridge
 * IP, dst = the replica's IP:8080). Past ~10 000 of those to one destination, connect() slows
 * down and throughput collapses (seen: 5 000 → 370 req/s), so every run gets a fresh function
 * with a fresh IP, and runs are short enough to stay below that.
 */
async function throughputFigures(env: Env): Promise<Figure[]> {
  const runs = env.ctx.iterations(3);
  env.ctx.log(`throughput: ${runs} × ${WRK_SECONDS} s of wrk -c${WRK_CONNECTIONS} each way`);
  const direct: number[] = [];
  const proxied: number[] = [];
  const results: { direct: WrkResult[]; proxy: WrkResult[] } = { direct: [], proxy: [] };
  for (let i = 0; i < runs; i++) {
    const [d, p] = [`tpd${i}`, `tpp${i}`];
    await deployAndWait(env, d);
    await deployAndWait(env, p);
    const directUrl = `http://${await replicaIp(env.app, env.ns, d)}:8080/`;
    const proxyUrl = `${env.app.url}/function/${p}.${env.ns}/`;
    let rd: WrkResult, rp: WrkResult;
    if (i % 2 === 0) {
      rd = await wrk(directUrl);
      rp = await wrk(proxyUrl);
    } else {
      rp = await wrk(proxyUrl);
      rd = await wrk(directUrl);
    }
    await removeFunctions(env, [d, p]);
    results.direct.push(rd);
    results.proxy.push(rp);
    direct.push(1000 / rd.rps);
    proxied.push(1000 / rp.rps);
    env.ctx.log(`  run ${i + 1}: direct ${fmtWrk(rd)}; proxy ${fmtWrk(rp)}`);
  }
  const f = env.ctx.facts;
  f["throughput direct (runs)"] = results.direct.map(fmtWrk).join("; ");
  f["throughput proxy (runs)"] = results.proxy.map(fmtWrk).join("; ");
  f["throughput proxy / direct (median req/s)"] =
    (median(results.proxy.map((r) => r.rps)) / median(results.direct.map((r) => r.rps)))
      .toFixed(3);
  return [
    { name: WRK_DIRECT, unit: "ms", samples: direct },
    {
      name: `${WRK_CONNECTIONS} connections, proxy: ms per request (1000 / req/s)`,
      unit: "ms",
      samples: proxied,
      baseline: WRK_DIRECT,
    },
  ];
}

/**
 * Scale to zero freezes one replica through its cgroup (untimed); the timed GET thaws it. For
 * reference, what the appliance did before: containerd's Tasks.Resume on the same replica,
 * paused untimed by Tasks.Pause (after thawing the cgroup behind the manager's back; the
 * manager's next thaw of a running replica is a no-op).
 */
async function scaleFromZeroFigures(env: Env): Promise<Figure[]> {
  const n = env.ctx.iterations(30);
  const warmup = warmupFor(n);
  await deployAndWait(env, "idle");
  const id = "idle-1-0";
  const url = `${env.app.url}/function/idle.${env.ns}/`;
  const toZero = async () => {
    const res = await api(env.app, "POST", `/system/scale-function/idle?namespace=${env.ns}`, {
      serviceName: "idle",
      replicas: 0,
    });
    if (res.status !== 202) throw new Error(`scale to 0 answered ${res.status}: ${res.text}`);
    const state = await freezerState(env.ns, id);
    if (state !== "frozen") throw new Error(`replica ${id} is ${state}, not frozen`);
  };
  env.ctx.log(`scale 0 → 1 from a frozen replica × ${n}`);
  const fromPaused = await measure("scale 0 → 1: GET on a paused replica → 200", async () => {
    await get200(url);
  }, { iterations: n, warmup, before: toZero, baseline: RESUME_RPC });
  const state = await freezerState(env.ns, id);
  if (state !== "thawed") throw new Error(`replica ${id} is ${state} after a GET`);

  await toZero();
  await writeFile(`/sys/fs/cgroup/freezer/${env.ns}/${id}/freezer.state`, "THAWED").catch(() =>
    writeFile(`/sys/fs/cgroup/${env.ns}/${id}/cgroup.freeze`, "0")
  );
  const resume = await measure(RESUME_RPC, async () => {
    await env.client.tasks.resume(env.ns, id);
  }, {
    iterations: n,
    warmup,
    before: async () => {
      await env.client.tasks.pause(env.ns, id);
    },
  });
  await get200(url); // through the manager, which thaws a running replica (a no-op)
  return [resume, fromPaused];
}

/**
 * Deploy with the image present, each iteration a new function: POST until 202, and POST until
 * the first 200 of GET /function/NAME.NS/. Delete of a function that exits on SIGTERM: a fresh,
 * answering function each iteration (deployed untimed), DELETE until 202.
 */
async function deployFigures(env: Env): Promise<Figure[]> {
  const n = env.ctx.iterations(20);
  const warmup = warmupFor(n);
  const { accepted, deploy } = await deployFigure(env, DEPLOY, "dep");
  deploy.baseline = DEPLOY_RUNC;

  env.ctx.log(`delete × ${n}, each a fresh function`);
  const del = await measure("delete (DELETE → 202, function exits on SIGTERM)", async (i) => {
    const res = await api(env.app, "DELETE", `/system/functions?namespace=${env.ns}`, {
      functionName: `del${i}`,
    });
    if (res.status !== 202) throw new Error(`DELETE del${i} answered ${res.status}: ${res.text}`);
    env.live.delete(`del${i}`);
  }, {
    iterations: n,
    warmup,
    before: async (i) => {
      await deployAndWait(env, `del${i}`);
    },
    after: async (i) => {
      if (env.live.has(`del${i}`)) await removeFunctions(env, [`del${i}`]);
    },
  });
  return [
    { name: "deploy: POST → 202 (same iterations)", unit: "ms", samples: accepted },
    deploy,
    del,
  ];
}

/** Deploy → first 200 with the image present, each iteration a new function named PREFIX<i>. */
async function deployFigure(
  env: Env,
  figure: string,
  prefix: string,
): Promise<{ accepted: number[]; deploy: Figure }> {
  const n = env.ctx.iterations(20);
  const warmup = warmupFor(n);
  env.ctx.log(`${figure} × ${n}, each a new function`);
  const accepted: number[] = [];
  const attempts: number[] = [];
  const deploy = await measure(figure, async (i) => {
    const name = `${prefix}${i}`;
    const t0 = performance.now();
    await postFunction(env, name);
    const t202 = performance.now() - t0;
    const tries = await get200(`${env.app.url}/function/${name}.${env.ns}/`);
    if (i >= warmup) {
      accepted.push(t202);
      attempts.push(tries);
    }
  }, {
    iterations: n,
    warmup,
    after: async (i) => {
      await removeFunctions(env, [`${prefix}${i}`]);
    },
  });
  env.ctx.facts[`${figure}: GETs until the first 200 (max)`] = String(Math.max(...attempts));
  return { accepted, deploy };
}

/**
 * The deploy again with runc as the OCI runtime, as the baseline: the same appliance (data dir,
 * network, functions) restarted with `--runtime runc`. Done last, since the appliance stays so.
 */
async function runcDeployFigure(env: Env): Promise<Figure> {
  const code = await env.app.stop();
  if (code !== 0) throw new Error(`the appliance exited with code ${code} before the runc run`);
  env.app = await startAppliance({
    dataDir: env.app.dataDir,
    network: env.app.network,
    args: ["--runtime", "runc"],
  });
  env.ctx.facts["baseline OCI runtime"] = runtimeOf(env.app);
  const { deploy } = await deployFigure(env, DEPLOY_RUNC, "rdep");
  return deploy;
}

/** The OCI runtime an appliance says it uses in its "listening" log line. */
function runtimeOf(app: Appliance): string {
  return app.log().match(/"runtime":"([^"]+)"/)?.[1] ?? "unknown";
}

/**
 * There is no stopped replica in this provider (scale to zero always pauses), so the cold path
 * measured is a replica whose task must be created again: SIGKILL of a running replica's task,
 * then GET until the first 200 from the restarted task. The manager restarts a replica's first
 * crash at once (repeated crashes back off from 100 ms, doubling), so each iteration uses a fresh
 * function whose replica has not crashed before. Timed from the kill; the GETs start once the old task's
 * exit was seen, so the 200 can only come from the new task.
 */
async function crashFigures(env: Env): Promise<Figure[]> {
  const n = env.ctx.iterations(10);
  const warmup = warmupFor(n);
  env.ctx.log(`crashed replica → first 200 × ${n}, each a fresh function`);
  let pid = 0;
  const attempts: number[] = [];
  const crash = await measure(
    "crashed replica → first 200 (SIGKILL → restart → 200)",
    async (i) => {
      const id = `crash${i}-1-0`;
      const exited = env.client.tasks.wait(env.ns, id);
      exited.catch(() => {});
      await env.client.tasks.kill(env.ns, id, 9, { all: true });
      await exited;
      attempts.push(await get200(`${env.app.url}/function/crash${i}.${env.ns}/`));
    },
    {
      iterations: n,
      warmup,
      before: async (i) => {
        await deployAndWait(env, `crash${i}`);
        pid = (await env.client.tasks.get(env.ns, `crash${i}-1-0`)).pid;
      },
      after: async (i) => {
        try {
          const now = await env.client.tasks.get(env.ns, `crash${i}-1-0`);
          if (now.pid === pid) throw new Error(`crash${i}: the task was not restarted`);
        } finally {
          await removeFunctions(env, [`crash${i}`]);
        }
      },
    },
  );
  env.ctx.facts["crash: GETs until the first 200 (max; > 1 means a 502 or 503 first)"] = String(
    Math.max(...attempts),
  );
  return [crash];
}

/**
 * Memory per function (10 functions) and the fleet (100): shim RSS and PSS, the appliance's RSS
 * growth, and GET /system/functions with 100 functions deployed.
 */
async function fleetFigures(env: Env): Promise<Figure[]> {
  const f = env.ctx.facts;
  const pid = env.pid;
  const names = Array.from({ length: FLEET_FUNCTIONS }, (_, i) => `fleet${i}`);
  // The namespace's shim (shared by its replicas) exits a moment after its last container.
  for (let i = 0; (await shimPids(env.ns)).length > 0; i++) {
    if (i >= 100) throw new Error("a shim of the namespace still runs before the fleet");
    await new Promise((r) => setTimeout(r, 50));
  }
  await settle();
  const rss0 = await statusKb(pid, "VmRSS");
  f["appliance RSS before the fleet MB"] = mb(rss0);

  env.ctx.log(`memory: deploying ${MEMORY_FUNCTIONS} functions, ${CONCURRENCY} at once`);
  let t0 = performance.now();
  await pool(names.slice(0, MEMORY_FUNCTIONS), CONCURRENCY, (name) => deployAndWait(env, name));
  f[`deploy of ${MEMORY_FUNCTIONS} functions, ${CONCURRENCY} at once, s`] =
    ((performance.now() - t0) / 1000).toFixed(2);
  await settle();
  const shims = await shimPids(env.ns);
  const shimRss = await sumKb(shims, "rss");
  const shimPss = await sumKb(shims, "pss");
  const rss10 = await statusKb(pid, "VmRSS");
  const perFn = (shimRss + Math.max(0, rss10 - rss0)) / MEMORY_FUNCTIONS;
  f[`shim processes for ${MEMORY_FUNCTIONS} functions`] = String(shims.length);
  f[`shim RSS per function MB (${MEMORY_FUNCTIONS} functions, ps -o rss)`] = mb(
    shimRss / MEMORY_FUNCTIONS,
  );
  f[`shim PSS per function MB (${MEMORY_FUNCTIONS} functions, smaps_rollup)`] = mb(
    shimPss / MEMORY_FUNCTIONS,
  );
  f[`appliance RSS growth per function MB (${MEMORY_FUNCTIONS} functions)`] = mb(
    (rss10 - rss0) / MEMORY_FUNCTIONS,
  );
  f["memory per function beyond its own processes MB ((shim RSS + appliance growth) / N)"] = mb(
    perFn,
  );
  env.ctx.log(
    `memory: ${shims.length} shim(s), RSS ${mb(shimRss)} MB (PSS ${mb(shimPss)}); appliance ${
      mb(rss0)
    } → ${mb(rss10)} MB; per function ${mb(perFn)} MB`,
  );

  env.ctx.log(
    `fleet: deploying ${FLEET_FUNCTIONS - MEMORY_FUNCTIONS} more, ${CONCURRENCY} at once`,
  );
  t0 = performance.now();
  await pool(names.slice(MEMORY_FUNCTIONS), CONCURRENCY, (name) => deployAndWait(env, name));
  f[`deploy of functions ${MEMORY_FUNCTIONS + 1}–${FLEET_FUNCTIONS}, ${CONCURRENCY} at once, s`] =
    ((performance.now() - t0) / 1000).toFixed(2);
  await settle();
  const rssFleet = await statusKb(pid, "VmRSS");
  const fleetShims = await shimPids(env.ns);
  const fleetShimRss = await sumKb(fleetShims, "rss");
  f[`shim processes for ${FLEET_FUNCTIONS} functions`] = String(fleetShims.length);
  f[`shim RSS for ${FLEET_FUNCTIONS} functions MB`] = mb(fleetShimRss);
  f[`shim RSS per function MB (${FLEET_FUNCTIONS} functions)`] = mb(
    fleetShimRss / FLEET_FUNCTIONS,
  );
  f[`appliance RSS with ${FLEET_FUNCTIONS} functions MB`] = mb(rssFleet);
  f[`appliance RSS growth for ${FLEET_FUNCTIONS} functions MB`] = mb(rssFleet - rss0);
  env.ctx.log(
    `fleet: appliance RSS ${mb(rss0)} → ${mb(rssFleet)} MB; ${fleetShims.length} shim(s), ${
      mb(fleetShimRss)
    } MB`,
  );

  const cpu = await cpuPercent(pid, 5000);
  f[`appliance CPU while idle with ${FLEET_FUNCTIONS} functions (% of one core, 5 s)`] = cpu
    .toFixed(1);
  env.ctx.log(`fleet: appliance CPU while idle ${cpu.toFixed(1)} % of one core`);

  const n = env.ctx.iterations(50);
  const warmup = warmupFor(n);
  const list = await measure(
    `GET /system/functions with ${FLEET_FUNCTIONS} functions`,
    async () => {
      const res = await api(env.app, "GET", `/system/functions?namespace=${env.ns}`);
      if (res.status !== 200) throw new Error(`list answered ${res.status}`);
      const fns = res.json() as unknown[];
      if (fns.length !== FLEET_FUNCTIONS) throw new Error(`list has ${fns.length} functions`);
    },
    { iterations: n, warmup },
  );

  env.ctx.log(`fleet: deleting ${FLEET_FUNCTIONS} functions`);
  t0 = performance.now();
  await removeFunctions(env, names);
  f[`delete of ${FLEET_FUNCTIONS} functions, ${CONCURRENCY} at once, s`] =
    ((performance.now() - t0) / 1000).toFixed(2);
  await settle();
  f["appliance RSS after deleting the fleet MB"] = mb(await statusKb(pid, "VmRSS"));
  return [list];
}

// ---- the API ----

async function api(app: Appliance, method: string, path: string, body?: unknown) {
  const res = await fetch(`${app.url}${path}`, {
    method,
    headers: { authorization: app.auth },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) as unknown };
}

async function postFunction(env: Env, name: string): Promise<void> {
  env.live.add(name);
  const res = await api(env.app, "POST", "/system/functions", {
    service: name,
    image: env.image,
    namespace: env.ns,
    // Only a cap for a cleanup after a failure; the function exits on SIGTERM at once.
    envVars: { grace_period: "5s" },
  });
  if (res.status !== 202) throw new Error(`deploy of ${name} answered ${res.status}: ${res.text}`);
}

async function deployAndWait(env: Env, name: string): Promise<void> {
  await postFunction(env, name);
  await get200(`${env.app.url}/function/${name}.${env.ns}/`);
}

/** GETs `url` until it answers 200 with `body` (at most 15 s); returns the attempts. */
export async function get200(url: string, body = INDEX_BODY): Promise<number> {
  const deadline = performance.now() + 15_000;
  for (let attempt = 1;; attempt++) {
    const res = await fetch(url);
    const text = await res.text();
    if (res.status === 200) {
      if (text !== body) throw new Error(`GET ${url} answered 200 with "${text}"`);
      return attempt;
    }
    if (performance.now() > deadline) {
      throw new Error(`GET ${url} did not answer 200 within 15 s (last ${res.status}: ${text})`);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** One GET of `url`, body read (it must be 200 with `body`); its wall time in ms. */
export async function timedGet(url: string, body = INDEX_BODY): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url);
  const text = await res.text();
  const elapsed = performance.now() - t0;
  if (res.status !== 200 || text !== body) {
    throw new Error(`GET ${url} answered ${res.status}: ${text}`);
  }
  return elapsed;
}

async function listFunctions(app: Appliance, ns: string): Promise<string[]> {
  const res = await api(app, "GET", `/system/functions?namespace=${ns}`);
  if (res.status !== 200) throw new Error(`list answered ${res.status}: ${res.text}`);
  return (res.json() as Array<{ name: string }>).map((f) => f.name);
}

/** Deletes functions through the API, a few at once; 404 counts as deleted. */
async function removeFunctions(env: Env, names: string[]): Promise<void> {
  const errors: string[] = [];
  await pool(names, CONCURRENCY, async (name) => {
    const res = await api(env.app, "DELETE", `/system/functions?namespace=${env.ns}`, {
      functionName: name,
    });
    if (res.status === 202 || res.status === 404) env.live.delete(name);
    else errors.push(`DELETE ${name} answered ${res.status}: ${res.text}`);
  });
  if (errors.length > 0) throw new Error(errors.join("; "));
}

/** Runs `fn` over `items`, at most `limit` at once; rejects with the first error at the end. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++];
      try {
        await fn(item);
      } catch (err) {
        errors.push(err);
      }
    }
  }));
  if (errors.length > 0) throw errors[0];
}

/** The replica's IP from the provider's CNI result cache (`<ns>.<id>.json`). */
/** The IP of function `name`'s first replica, from the provider's CNI result cache. */
export async function replicaIp(
  app: Pick<Appliance, "dataDir">,
  ns: string,
  name: string,
): Promise<string> {
  const path = join(app.dataDir, "provider/cni/results", `${ns}.${name}-1-0.json`);
  const entry = JSON.parse(await readFile(path, "utf8")) as {
    result: { ips?: Array<{ address: string }> };
  };
  const ip = entry.result.ips?.[0]?.address.split("/")[0];
  if (!ip) throw new Error(`no IP in ${path}`);
  return ip;
}

// ---- processes and memory ----

/** Runs a command; its stdout, or an error with its stderr. */
export async function output(cmd: string, args: string[], okCodes = [0]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!okCodes.includes(out.code)) {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`${cmd} ${args.join(" ")} exited with ${out.code}: ${stderr}`);
  }
  return new TextDecoder().decode(out.stdout);
}

export async function requireTool(cmd: string, args: string[], hint: string): Promise<void> {
  try {
    await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
  } catch {
    throw new Error(`the provider scenario needs ${cmd} (${hint})`);
  }
}

/** The appliance's process: the one `deno run … main.ts up --data-dir <its dir>`. */
export async function appliancePid(app: Appliance): Promise<number> {
  const pids = (await output("pgrep", ["-f", `main\\.ts up --data-dir ${app.dataDir} `], [0, 1]))
    .trim().split("\n").filter(Boolean).map(Number);
  if (pids.length !== 1) throw new Error(`expected one appliance process, found ${pids.length}`);
  return pids[0];
}

/** The runc v2 shims of a containerd namespace (one per container). */
export async function shimPids(ns: string): Promise<number[]> {
  const out = await output("pgrep", ["-f", `containerd-shim-runc-v2 -namespace ${ns} -id `], [
    0,
    1,
  ]);
  return out.trim().split("\n").filter(Boolean).map(Number);
}

/** A `kB` field of /proc/<pid>/status, read with cat (Deno reads /proc only with --allow-all). */
export async function statusKb(pid: number, field: string): Promise<number> {
  return kbField(await output("cat", [`/proc/${pid}/status`]), field);
}

/** The summed RSS (ps -o rss) or PSS (smaps_rollup) of processes, in kB. */
async function sumKb(pids: number[], what: "rss" | "pss"): Promise<number> {
  if (what === "rss") {
    const out = await output("ps", ["-o", "rss=", "-p", pids.join(",")]);
    return out.trim().split(/\s+/).map(Number).reduce((a, b) => a + b, 0);
  }
  let total = 0;
  for (const pid of pids) {
    total += kbField(await output("cat", [`/proc/${pid}/smaps_rollup`]), "Pss");
  }
  return total;
}

/** CPU time (user + system) a process used over `ms`, in % of one core. */
async function cpuPercent(pid: number, ms: number): Promise<number> {
  const hz = Number((await output("getconf", ["CLK_TCK"])).trim());
  const ticks = async () => {
    // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    const stat = await output("cat", [`/proc/${pid}/stat`]);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]);
  };
  const t0 = await ticks();
  const w0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const used = (await ticks()) - t0;
  return (used / hz) * 1000 / (performance.now() - w0) * 100;
}

function kbField(text: string, field: string): number {
  const m = text.match(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m"));
  if (!m) throw new Error(`no ${field} in /proc output`);
  return Number(m[1]);
}

export function loadavg(): string {
  return os.loadavg().map((l) => l.toFixed(2)).join(", ");
}

export function mb(kb: number): string {
  return (kb / 1024).toFixed(1);
}

/** Lets the appliance finish background work (log collection, GC) before memory is read. */
export function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 1500));
}

/** One wrk run: requests per second and wrk's latency percentiles (ms). */
interface WrkResult {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  /** Requests still unanswered after wrk's --timeout. */
  timeouts: number;
}

function fmtWrk(r: WrkResult): string {
  return `${r.rps.toFixed(0)} req/s (latency p50 ${r.p50.toFixed(2)} ms, p90 ${
    r.p90.toFixed(2)
  } ms, p99 ${r.p99.toFixed(2)} ms${r.timeouts ? `, ${r.timeouts} over 5 s` : ""})`;
}

/**
 * Runs wrk against `url`; throws on connect, read or write errors and non-2xx answers. Requests
 * slower than 5 s are counted, not fatal: busybox httpd listens with a backlog of 9, and a SYN
 * it drops is sent again after 1 s, then 2 s (see docs/benchmarks.md).
 */
async function wrk(url: string): Promise<WrkResult> {
  const out = await output("wrk", [
    "-t1",
    `-c${WRK_CONNECTIONS}`,
    `-d${WRK_SECONDS}s`,
    "--latency",
    "--timeout",
    "5s",
    url,
  ]);
  const rps = Number(out.match(/^Requests\/sec:\s+([\d.]+)/m)?.[1]);
  if (!Number.isFinite(rps) || rps <= 0) throw new Error(`wrk ${url}: no Requests/sec:\n${out}`);
  if (/Non-2xx or 3xx responses/.test(out)) throw new Error(`wrk ${url}: non-2xx answers:\n${out}`);
  const errs = out.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  if (errs && errs.slice(1, 4).some((x) => Number(x) > 0)) {
    throw new Error(`wrk ${url}: socket errors:\n${out}`);
  }
  return {
    rps,
    p50: wrkPercentile(out, "50%"),
    p90: wrkPercentile(out, "90%"),
    p99: wrkPercentile(out, "99%"),
    timeouts: Number(errs?.[4] ?? 0),
  };
}

/** A latency percentile from wrk --latency output, in ms. */
export function wrkPercentile(out: string, label: string): number {
  const m = out.match(new RegExp(`^\\s+${label}\\s+([\\d.]+)(us|ms|s)\\s*$`, "m"));
  if (!m) return NaN;
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000 }[m[2] as "ms"];
}

// ---- other appliances on the same containerd ----

/**
 * Appliances adopt only replicas labelled with their own owner ID, so other appliances' functions
 * on the same containerd (other sessions' e2e tests) no longer disturb a run; they only share the
 * cores. Records which namespaces hold function containers at the start, for the report.
 */
export async function noteForeignFunctions(client: Containerd, ctx: ScenarioContext) {
  const busy: string[] = [];
  for (const { name } of await client.namespaces.list()) {
    const fns = await client.containers.list(name, [`labels."${FUNCTION_LABEL}"`]);
    if (fns.length > 0) busy.push(`${name} (${fns.length})`);
  }
  ctx.facts["other appliances' function containers at start"] = busy.join(", ") || "none";
}

/**
 * Fails when our appliance adopted another namespace's functions, or a replica of ours exited
 * other than in the crash figure (another appliance took it over, or it died): the figures of
 * such a run are not to be trusted.
 */
export function checkUndisturbed(log: string, ns: string): void {
  const problems: string[] = [];
  for (const line of log.split("\n")) {
    if (!line.startsWith("{")) continue;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(line);
    } catch {
      continue;
    }
    if (e.msg === "adopted" && e.namespace !== ns) {
      problems.push(`adopted function ${e.function} of namespace ${e.namespace}`);
    }
    if (e.msg === "replica exited, restarting" && !/^crash\d+-1-0$/.test(String(e.replica))) {
      problems.push(`replica ${e.replica} exited outside the crash figure`);
    }
  }
  if (problems.length > 0) {
    throw new Error(`the run was disturbed, its figures are not valid: ${problems.join("; ")}`);
  }
}

// ---- after the run ----

/** What the run may have left: the namespace, shims, the bridge, iptables rules for the subnet. */
export async function leftovers(
  client: Containerd,
  ns: string,
  network: TestNetwork | undefined,
): Promise<string[]> {
  const found: string[] = [];
  try {
    const names = (await client.namespaces.list()).map((n) => n.name);
    if (names.includes(ns)) found.push(`namespace ${ns} still exists`);
  } catch (err) {
    found.push(`list namespaces: ${(err as Error).message}`);
  }
  const shims = await shimPids(ns).catch(() => []);
  if (shims.length > 0) found.push(`${shims.length} shims of ${ns} still run`);
  if (network) {
    const links = await output("ip", ["-o", "link", "show"]);
    if (links.includes(`${network.bridge}:`)) found.push(`link ${network.bridge} still exists`);
    const prefix = network.subnet.split(".").slice(0, 3).join(".") + ".";
    const rules = (await output("iptables-save", [])).split("\n").filter((l) => l.includes(prefix));
    if (rules.length > 0) found.push(`iptables rules for ${prefix}0/24 left: ${rules.join(" | ")}`);
  }
  // Replicas' pinned netns are named `fts-<owner>-<namespace>.<container id>`.
  const netns = (await output("ip", ["netns", "list"]).catch(() => "")).split("\n")
    .map((l) => l.split(" ")[0]).filter((n) => n.includes(`-${ns}.`));
  if (netns.length > 0) {
    // Reported (the run fails) and removed: nobody else would.
    found.push(`netns left (removed now): ${netns.join(", ")}`);
    for (const n of netns) await output("ip", ["netns", "delete", n]).catch(() => "");
  }
  const dirs = await readdir("/run/containerd/io.containerd.runtime.v2.task").catch(() =>
    [] as string[]
  );
  if (dirs.includes(ns)) found.push(`/run/containerd/io.containerd.runtime.v2.task/${ns} left`);
  return found;
}

// A quarter of the timed count, at least one, at most 50: the first requests and containers pay
// for V8's compilation of the appliance's paths and for cold caches.
export function warmupFor(n: number): number {
  return Math.min(50, Math.max(1, Math.round(n / 4)));
}
