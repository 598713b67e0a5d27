/**
 * One replica of a function: a containerd container on the image's snapshot, a task in a pinned
 * network namespace of its own that CNI wires up while the container and its task are being
 * created (before the process starts), stdout and stderr appended to a log file, and the steps
 * to tear all of it down again. Without pinned netns support in the network, runc creates the
 * namespace with the task and CNI attaches it in between create and start.
 */

import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Containers } from "../containerd/containers.ts";
import type { Snapshots } from "../containerd/snapshots.ts";
import type { ExitResult, TaskRuntimeOptions, Tasks } from "../containerd/tasks.ts";
import type { Mount } from "../containerd/types.ts";
import { AlreadyExistsError, NotFoundError, TimeoutError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Freezer, FreezerTarget } from "./freezer.ts";
import { replicaCgroupsPath } from "./spec.ts";

/** Attaches and detaches a network namespace (the CNI plugins in production). */
export interface Network {
  add(containerId: string, netnsPath: string): Promise<{ ip: string }>;
  del(containerId: string, netnsPath: string): Promise<void>;
  /** The path a replica's pinned netns has (or will have); absent: runc creates one per task. */
  netnsPath?(networkId: string): string;
  /** Creates the pinned netns; AlreadyExistsError when it exists. */
  createNetns?(networkId: string): Promise<void>;
  /** Whether the pinned netns exists (cheaper than trying to create it). */
  netnsExists?(networkId: string): Promise<boolean>;
  /** Brings `lo` up in a pinned netns made by createNetns (before CNI ADD attaches it). */
  loopbackUp?(networkId: string): Promise<void>;
  /** Removes the pinned netns; a missing one is fine. */
  removeNetns?(networkId: string): Promise<void>;
  /** The IP of a cached attachment, if any. */
  cachedIp?(networkId: string): Promise<string | undefined>;
}

/** The services a replica needs. */
export interface ReplicaDeps {
  containers: Pick<Containers, "create" | "delete" | "get">;
  snapshots: Pick<Snapshots, "prepare" | "remove" | "mounts">;
  tasks: Pick<Tasks, "create" | "start" | "kill" | "wait" | "delete" | "get" | "pause" | "resume">;
  network: Network;
  /** Thaws a replica frozen while idle before it is stopped (none for services: never frozen). */
  freezer?: Freezer;
  /** The OCI runtime the shim runs (crun when installed); the shim's default, runc, when absent. */
  runtime?: TaskRuntimeOptions;
  log: Logger;
}

/** What identifies a replica and where its pieces live. */
export interface ReplicaRef {
  namespace: string;
  id: string;
  /** The CNI container ID: unique across containerd namespaces. */
  networkId: string;
  logFile: string;
  /** The pinned network namespace in the replica's spec; none when runc creates one. */
  netns?: string;
}

/** The CNI container ID for a replica (containerd IDs are only unique per namespace). */
export function networkId(namespace: string, id: string): string {
  return `${namespace}.${id}`;
}

/** The pinned network namespace path in a container's OCI spec, if it has one. */
export function specNetnsPath(spec: Record<string, unknown>): string | undefined {
  const linux = spec.linux as { namespaces?: Array<{ type?: string; path?: string }> } | undefined;
  return linux?.namespaces?.find((n) => n.type === "network")?.path || undefined;
}

/** What the freezer needs to find a replica's cgroup. */
export function freezerTarget(ref: ReplicaRef): FreezerTarget {
  return {
    namespace: ref.namespace,
    id: ref.id,
    cgroupsPath: replicaCgroupsPath(ref.namespace, ref.id),
  };
}

/** The replica's log file under the data dir's log directory. */
export function logFile(logDir: string, namespace: string, fn: string, id: string): string {
  return join(logDir, namespace, fn, `${id}.log`);
}

/**
 * Creates the container record on a fresh snapshot of the image (no task yet). The record comes
 * first: it names the snapshot key, and containerd's garbage collector keeps a snapshot a
 * container names, so the snapshot is never unreferenced and no lease is needed — two metadata
 * transactions instead of four (lease, snapshot, record, lease removal), each one a disk sync.
 */
export async function createReplicaContainer(
  deps: ReplicaDeps,
  ref: ReplicaRef,
  opts: {
    image: string;
    parentSnapshot: string;
    spec: Record<string, unknown>;
    labels: Record<string, string>;
  },
): Promise<Mount[]> {
  const t0 = performance.now();
  await deps.containers.create(ref.namespace, {
    id: ref.id,
    image: opts.image,
    spec: opts.spec,
    labels: opts.labels,
    snapshotKey: ref.id,
  });
  const t1 = performance.now();
  let mounts: Mount[];
  try {
    mounts = await deps.snapshots.prepare(ref.namespace, ref.id, opts.parentSnapshot);
  } catch (err) {
    await deps.containers.delete(ref.namespace, ref.id).catch(() => {});
    throw err;
  }
  const ms = (a: number, b: number) => Math.round((b - a) * 10) / 10;
  deps.log.debug("replica container created", {
    replica: ref.id,
    containerMs: ms(t0, t1),
    snapshotMs: ms(t1, performance.now()),
  });
  return mounts;
}

/** A started task: its IP and a promise that settles when it exits. */
export interface StartedTask {
  pid: number;
  ip: string;
  exited: Promise<ExitResult>;
  /** The snapshot's mounts the task was created on (the same for every task of the replica). */
  mounts: Mount[];
}

/** A replica's network being set up: the pinned netns exists once `created` resolves. */
export interface PendingNetwork {
  created: Promise<void>;
  ip: Promise<string>;
}

/**
 * Sets up a replica's pinned network namespace and attaches it (CNI ADD), to run while the
 * container and its task are created. An existing netns is reused (a restart); with `reuseIp`
 * an attachment the cache still holds is kept as it is.
 */
export function setUpReplicaNetwork(
  deps: ReplicaDeps,
  ref: ReplicaRef,
  opts: { reuseIp?: boolean } = {},
): PendingNetwork {
  const net = deps.network;
  let fresh = true;
  // A restart usually finds its netns: a look at the file spares running `ip netns add`.
  const exists = opts.reuseIp && net.netnsExists ? net.netnsExists(ref.networkId) : undefined;
  const created = (exists ?? Promise.resolve(false)).then((there) => {
    if (there) {
      fresh = false;
      return;
    }
    return net.createNetns!(ref.networkId).catch((err) => {
      if (!(err instanceof AlreadyExistsError)) throw err;
      fresh = false;
    });
  });
  // The task can be created once the netns exists; `lo` and the attachment only have to be
  // there before it starts, so they run while containerd creates it.
  const ip = created.then(async () => {
    if (fresh) await net.loopbackUp?.(ref.networkId);
    const cached = !fresh && opts.reuseIp ? await net.cachedIp?.(ref.networkId) : undefined;
    return cached ?? (await net.add(ref.networkId, ref.netns!)).ip;
  });
  ip.catch(() => {});
  return { created, ip };
}

/**
 * Undoes {@link setUpReplicaNetwork} once it has settled (and the replica's process is gone):
 * the netns goes first, then CNI DEL releases the IP. Without a process or mount left, the
 * kernel drops the netns and the veth in it in the background (as it did for a netns runc made),
 * and DEL does not have to enter it.
 */
export async function releaseReplicaNetwork(
  deps: ReplicaDeps,
  ref: ReplicaRef,
  pending?: PendingNetwork,
): Promise<void> {
  if (pending) await Promise.allSettled([pending.created, pending.ip]);
  if (ref.netns) {
    await deps.network.removeNetns?.(ref.networkId).catch((err) => {
      deps.log.warn("cannot remove the replica's netns", { replica: ref.id, err: String(err) });
    });
  }
  await deps.network.del(ref.networkId, ref.netns ?? "").catch((err) => {
    deps.log.warn("CNI DEL failed", { replica: ref.id, err: String(err) });
  });
}

/**
 * Creates and starts the container's task with its network attached before the process runs.
 * In a pinned netns (`ref.netns`) the task is created as soon as the netns exists, while CNI
 * attaches it; otherwise runc creates the netns and CNI attaches it between create and start.
 */
export async function startReplicaTask(
  deps: ReplicaDeps,
  ref: ReplicaRef,
  opts: {
    /** The snapshot's mounts when the caller has them (a fresh container); else asked for. */
    mounts?: Mount[];
    /** The pinned netns being set up; set up here (reusing a cached IP) when absent. */
    network?: PendingNetwork;
  } = {},
): Promise<StartedTask> {
  const { namespace, id } = ref;
  const t0 = performance.now();
  const network = ref.netns
    ? opts.network ?? setUpReplicaNetwork(deps, ref, { reuseIp: true })
    : undefined;
  const [mounts] = await Promise.all([
    opts.mounts ?? deps.snapshots.mounts(namespace, id),
    mkdir(join(ref.logFile, ".."), { recursive: true }),
    network?.created,
  ]);
  const stdio = `file://${ref.logFile}`;
  const t1 = performance.now();
  const pid = await deps.tasks.create(namespace, id, mounts, { stdout: stdio, stderr: stdio }, {
    runtime: deps.runtime,
  });
  const t2 = performance.now();
  let ip: string;
  try {
    ip = network
      ? await network.ip
      : (await deps.network.add(ref.networkId, `/proc/${pid}/ns/net`)).ip;
  } catch (err) {
    await deps.tasks.kill(namespace, id, 9, { all: true }).catch(() => {});
    await deps.tasks.delete(namespace, id).catch(() => {});
    throw err;
  }
  const exited = deps.tasks.wait(namespace, id);
  exited.catch(() => {});
  const t3 = performance.now();
  await deps.tasks.start(namespace, id);
  const ms = (a: number, b: number) => Math.round((b - a) * 10) / 10;
  deps.log.debug("replica task started", {
    replica: id,
    waitMs: ms(t0, t1),
    createMs: ms(t1, t2),
    networkMs: ms(t2, t3),
    startMs: ms(t3, performance.now()),
  });
  return { pid, ip, exited, mounts };
}

/**
 * Stops a task: SIGTERM, up to `graceMs` for it to exit, then SIGKILL; deletes the task and
 * releases its network. Missing pieces are fine (a crash may have removed them).
 */
export async function stopReplicaTask(
  deps: ReplicaDeps,
  ref: ReplicaRef,
  graceMs: number,
  /** Keep a pinned netns and its attachment (a restart in the same netns, with the same IP). */
  opts: { keepNetwork?: boolean } = {},
): Promise<void> {
  const { namespace, id } = ref;
  const t0 = performance.now();
  let task;
  try {
    task = await deps.tasks.get(namespace, id);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  if (task && task.status !== "STOPPED") {
    const exited = deps.tasks.wait(namespace, id);
    exited.catch(() => {});
    // A frozen task cannot handle SIGTERM; thaw it first. The appliance freezes idle replicas
    // through the cgroup (containerd then still says RUNNING); older versions paused them
    // through containerd.
    if (task.status === "PAUSED" || task.status === "PAUSING") {
      await deps.tasks.resume(namespace, id).catch(() => {});
    } else if (deps.freezer && await deps.freezer.frozen(freezerTarget(ref)).catch(() => false)) {
      await deps.freezer.thaw(freezerTarget(ref)).catch(() => {});
    }
    await deps.tasks.kill(namespace, id, 15).catch(() => {});
    const gone = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), graceMs)),
    ]);
    if (!gone) {
      await deps.tasks.kill(namespace, id, 9, { all: true }).catch(() => {});
      await Promise.race([
        exited,
        new Promise((_, reject) =>
          setTimeout(() => reject(new TimeoutError(`replica "${id}" ignored SIGKILL`)), 10_000)
        ),
      ]);
    }
  }
  // Release the IP whether or not the task was still there (after a crash it is not), at the
  // same time as the task is deleted: neither needs the other.
  const keep = opts.keepNetwork && ref.netns !== undefined;
  const t1 = performance.now();
  const ms = (a: number) => Math.round((performance.now() - a) * 10) / 10;
  let networkMs = 0, deleteMs = 0;
  await Promise.all([
    (keep
      ? undefined
      : ref.netns
      ? releaseReplicaNetwork(deps, ref)
      : deps.network.del(ref.networkId, task ? `/proc/${task.pid}/ns/net` : "").catch((err) => {
        deps.log.warn("CNI DEL failed", { replica: id, err: String(err) });
      }))?.then(() => networkMs = ms(t1)),
    task
      ? deps.tasks.delete(namespace, id).then(() => deleteMs = ms(t1), (err) => {
        if (!(err instanceof NotFoundError)) throw err;
      })
      : undefined,
  ]);
  deps.log.debug("replica task stopped", {
    replica: id,
    exitMs: Math.round((t1 - t0) * 10) / 10,
    networkMs,
    deleteMs,
  });
}

/** Removes the container and its snapshot (the task must be gone). */
export async function removeReplicaContainer(deps: ReplicaDeps, ref: ReplicaRef): Promise<void> {
  // Snapshot first: once the record is gone GC may collect it and a later remove fails.
  await deps.snapshots.remove(ref.namespace, ref.id).catch((err) => {
    if (!(err instanceof NotFoundError)) throw err;
  });
  await deps.containers.delete(ref.namespace, ref.id).catch((err) => {
    if (!(err instanceof NotFoundError)) throw err;
  });
}
