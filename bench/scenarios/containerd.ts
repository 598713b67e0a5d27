/**
 * Scenario "containerd": RPC round trips, a full /bin/true container lifecycle and task control
 * against the real containerd through our client, with `ctr run` (containerd's Go CLI) as the
 * baseline for the lifecycle. Everything lives in a fresh `faasd-bench-<random>` namespace that
 * is emptied and deleted at the end.
 */

import { rm } from "node:fs/promises";
import { Containerd } from "../../src/containerd/client.ts";
import type { ExitResult } from "../../src/containerd/tasks.ts";
import type { Mount } from "../../src/containerd/types.ts";
import { defaultSpec, writeBusyboxTree } from "../../tests/fixtures/busybox.ts";
import { purgeNamespace } from "../../tests/fixtures/namespace.ts";
import { type Figure, measure, type Scenario, type ScenarioContext } from "../harness.ts";

const VERSION = "Version RPC (our client)";
const CTR_RUN = "run /bin/true (ctr run --rm)";
const BASE_SNAPSHOT = "busybox";

/** The containerd scenario. */
export function containerdScenario(): Scenario {
  return {
    name: "containerd",
    description: "RPC round trips and task lifecycles against the real containerd",
    run,
  };
}

async function run(ctx: ScenarioContext): Promise<Figure[]> {
  const client = await Containerd.connect({ socket: ctx.containerdSocket });
  ctx.facts.containerd = client.serverVersion.version;
  ctx.facts.containerdRevision = client.serverVersion.revision;
  const ns = `faasd-bench-${crypto.randomUUID().slice(0, 8)}`;
  const hostRoot = await Deno.makeTempDir({ prefix: "faasd-bench-rootfs-" });
  const figures: Figure[] = [];
  let failures: string[] = [];
  try {
    ctx.log(`namespace ${ns}`);
    await client.namespaces.create(ns);
    figures.push(...await rpcFigures(client, ns, ctx));

    // Held for the whole run: the committed base snapshot has no other GC root.
    const lease = await client.leases.create(ns, { expireMs: 3600_000 });
    await buildBaseSnapshot(client, ns, lease.id);
    await writeBusyboxTree(hostRoot);
    figures.push(...await lifecycleFigures(client, ns, hostRoot, ctx));
    figures.push(...await taskControlFigures(client, ns, ctx));
  } finally {
    failures = await purgeNamespace(client, ns);
    await client.close();
    await rm(hostRoot, { recursive: true, force: true });
    for (const f of failures) ctx.log(`cleanup: ${f}`);
  }
  if (failures.length > 0) {
    throw new Error(`cleanup of namespace "${ns}" failed: ${failures.join("; ")}`);
  }
  return figures;
}

async function rpcFigures(client: Containerd, ns: string, ctx: ScenarioContext) {
  const n = ctx.iterations(200);
  const opts = { iterations: n, warmup: warmupFor(n) };
  ctx.log(`RPC round trips × ${n}`);
  // V8 compiles the gRPC call path over several hundred calls; without a shared warm-up the
  // first figure measured (the baseline) pays for it and every ratio against it is skewed.
  for (let i = 0; i < 300; i++) {
    await client.version();
    await client.namespaces.list();
    await client.containers.list(ns);
  }
  return [
    await measure(VERSION, () => client.version(), opts),
    await measure("Namespaces.List RPC", () => client.namespaces.list(), {
      ...opts,
      baseline: VERSION,
    }),
    await measure("Containers.List RPC", () => client.containers.list(ns), {
      ...opts,
      baseline: VERSION,
    }),
  ];
}

// overlayfs answers Prepare without a parent with a bind mount of an empty host directory; fill
// it and commit it so every container snapshot is a cheap overlay on top.
async function buildBaseSnapshot(client: Containerd, ns: string, lease: string): Promise<void> {
  const key = `${BASE_SNAPSHOT}-build`;
  const mounts = await client.snapshots.prepare(ns, key, "", {}, { lease });
  const bind = mounts[0];
  if (bind?.type !== "bind") {
    throw new Error(`expected a bind mount for a parentless snapshot, got "${bind?.type}"`);
  }
  await writeBusyboxTree(bind.source);
  await client.snapshots.commit(ns, BASE_SNAPSHOT, key, {}, { lease });
}

async function lifecycleFigures(
  client: Containerd,
  ns: string,
  hostRoot: string,
  ctx: ScenarioContext,
): Promise<Figure[]> {
  const n = ctx.iterations(20);
  const opts = { iterations: n, warmup: warmupFor(n) };
  ctx.log(`container lifecycles × ${n}`);

  const ctrVersion = await measure("ctr version (process spawn + 1 RPC)", async () => {
    await ctr(["version"]);
  }, opts);

  const ctrRunArgs = ["-n", ns, "run", "--rm", "--null-io", "--rootfs", hostRoot];
  const ctrRun = await measure(CTR_RUN, async (i) => {
    await ctr([...ctrRunArgs, `ctr-${i}`, "/bin/true"]);
  }, opts);

  // The same work ctr does: no snapshot, the spec's root is the host directory.
  const hostDir = await measure("run /bin/true (our client, host dir rootfs)", async (i) => {
    const id = `host-${i}`;
    const spec = defaultSpec({ namespace: ns, id, args: ["/bin/true"], rootPath: hostRoot });
    await client.containers.create(ns, { id, spec });
    await runToExit(client, ns, id, []);
    await client.containers.delete(ns, id);
  }, { ...opts, baseline: CTR_RUN });

  // What faasd does for a function: a fresh snapshot on the image's top layer.
  const snapshot = await measure("run /bin/true (our client)", async (i) => {
    const id = `snap-${i}`;
    const mounts = await createContainer(client, ns, id, ["/bin/true"]);
    await runToExit(client, ns, id, mounts);
    // Snapshot first, as the Go client's WithSnapshotCleanup does: once the container record is
    // gone the snapshot has no GC root, and a GC run may collect it before our Remove arrives.
    await client.snapshots.remove(ns, id);
    await client.containers.delete(ns, id);
  }, { ...opts, baseline: CTR_RUN });

  return [ctrVersion, ctrRun, hostDir, snapshot];
}

async function taskControlFigures(
  client: Containerd,
  ns: string,
  ctx: ScenarioContext,
): Promise<Figure[]> {
  const id = "sleeper";
  const mounts = await createContainer(client, ns, id, ["/bin/sleep", "1000"]);
  let exited: Promise<ExitResult> | undefined;
  const start = async () => {
    await client.tasks.create(ns, id, mounts);
    exited = client.tasks.wait(ns, id);
    exited.catch(() => {}); // awaited by the stop figure; cleanup may cancel it instead
    await client.tasks.start(ns, id);
  };
  await start();

  const nRpc = ctx.iterations(200);
  ctx.log(`task control on /bin/sleep: Tasks.Get × ${nRpc}`);
  const get = await measure("Tasks.Get RPC (asks the shim)", () => client.tasks.get(ns, id), {
    iterations: nRpc,
    warmup: warmupFor(nRpc),
    baseline: VERSION,
  });

  const nPause = ctx.iterations(50);
  ctx.log(`pause+resume × ${nPause}`);
  const pause = await measure("pause+resume", async () => {
    await client.tasks.pause(ns, id);
    await client.tasks.resume(ns, id);
  }, { iterations: nPause, warmup: warmupFor(nPause) });

  const nStop = ctx.iterations(20);
  ctx.log(`stop × ${nStop}`);
  const stop = await measure("stop (SIGKILL → exit)", async () => {
    await client.tasks.kill(ns, id, 9);
    const res = await exited!;
    if (res.exitStatus !== 137) throw new Error(`expected exit status 137, got ${res.exitStatus}`);
  }, {
    iterations: nStop,
    warmup: warmupFor(nStop),
    before: async (i) => {
      if (i > 0) await start();
    },
    after: async () => {
      await client.tasks.delete(ns, id);
    },
  });
  return [get, pause, stop];
}

/** Prepares the container's snapshot on the base and creates the container, under one lease. */
function createContainer(
  client: Containerd,
  ns: string,
  id: string,
  args: string[],
): Promise<Mount[]> {
  return client.leases.with(ns, async (lease) => {
    const mounts = await client.snapshots.prepare(ns, id, BASE_SNAPSHOT, {}, { lease });
    const spec = defaultSpec({ namespace: ns, id, args });
    await client.containers.create(ns, { id, spec, snapshotKey: id }, { lease });
    return mounts;
  });
}

/** Creates the task, starts it, waits for a zero exit and deletes the task. */
async function runToExit(client: Containerd, ns: string, id: string, rootfs: Mount[]) {
  await client.tasks.create(ns, id, rootfs);
  // Wait is asked for before Start so even an instant exit is reported.
  const exited = client.tasks.wait(ns, id);
  exited.catch(() => {});
  await client.tasks.start(ns, id);
  const res = await exited;
  if (res.exitStatus !== 0) throw new Error(`task "${id}" exited with ${res.exitStatus}`);
  await client.tasks.delete(ns, id);
}

async function ctr(args: string[]): Promise<void> {
  const out = await new Deno.Command("ctr", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    const stderr = new TextDecoder().decode(out.stderr).trim();
    throw new Error(`ctr ${args.join(" ")} exited with ${out.code}: ${stderr}`);
  }
}

// A quarter of the timed count, at most 50: the gRPC call path takes a few dozen calls to be
// compiled, and the first containers pay for cold page cache and shim binaries.
function warmupFor(n: number): number {
  return Math.min(50, Math.max(1, Math.round(n / 4)));
}
