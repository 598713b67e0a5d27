/**
 * One replica of a function: a containerd container on the image's snapshot, a task whose
 * network namespace runc creates and CNI wires up before the process starts, stdout and stderr
 * appended to a log file, and the steps to tear all of it down again.
 */

import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Containers } from "../containerd/containers.ts";
import type { Leases } from "../containerd/leases.ts";
import type { Snapshots } from "../containerd/snapshots.ts";
import type { ExitResult, Tasks } from "../containerd/tasks.ts";
import type { Mount } from "../containerd/types.ts";
import { NotFoundError, TimeoutError } from "../errors.ts";
import type { Logger } from "../log.ts";

/** Attaches and detaches a network namespace (the CNI plugins in production). */
export interface Network {
  add(containerId: string, netnsPath: string): Promise<{ ip: string }>;
  del(containerId: string, netnsPath: string): Promise<void>;
}

/** The services a replica needs. */
export interface ReplicaDeps {
  containers: Pick<Containers, "create" | "delete" | "get">;
  snapshots: Pick<Snapshots, "prepare" | "remove" | "mounts">;
  tasks: Pick<Tasks, "create" | "start" | "kill" | "wait" | "delete" | "get" | "pause" | "resume">;
  leases: Pick<Leases, "create" | "delete">;
  network: Network;
  log: Logger;
}

/** What identifies a replica and where its pieces live. */
export interface ReplicaRef {
  namespace: string;
  id: string;
  /** The CNI container ID: unique across containerd namespaces. */
  networkId: string;
  logFile: string;
}

/** The CNI container ID for a replica (containerd IDs are only unique per namespace). */
export function networkId(namespace: string, id: string): string {
  return `${namespace}.${id}`;
}

/** The replica's log file under the data dir's log directory. */
export function logFile(logDir: string, namespace: string, fn: string, id: string): string {
  return join(logDir, namespace, fn, `${id}.log`);
}

/** Creates the container record on a fresh snapshot of the image (no task yet). */
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
  // Prepare and Create under one lease: GC would otherwise collect the snapshot in between.
  const lease = await deps.leases.create(ref.namespace, { expireMs: 3600_000 });
  try {
    const mounts = await deps.snapshots.prepare(ref.namespace, ref.id, opts.parentSnapshot, {}, {
      lease: lease.id,
    });
    await deps.containers.create(ref.namespace, {
      id: ref.id,
      image: opts.image,
      spec: opts.spec,
      labels: opts.labels,
      snapshotKey: ref.id,
    }, { lease: lease.id });
    return mounts;
  } catch (err) {
    await deps.snapshots.remove(ref.namespace, ref.id).catch(() => {});
    throw err;
  } finally {
    await deps.leases.delete(ref.namespace, lease.id).catch(() => {});
  }
}

/** A started task: its IP and a promise that settles when it exits. */
export interface StartedTask {
  pid: number;
  ip: string;
  exited: Promise<ExitResult>;
}

/**
 * Creates and starts the container's task: runc creates the network namespace, CNI attaches it
 * (so the network is up before the function's process runs), then the process starts.
 */
export async function startReplicaTask(
  deps: ReplicaDeps,
  ref: ReplicaRef,
  /** The snapshot's mounts when the caller has them (a fresh container); else asked for. */
  knownMounts?: Mount[],
): Promise<StartedTask> {
  const { namespace, id } = ref;
  await mkdir(join(ref.logFile, ".."), { recursive: true });
  const mounts = knownMounts ?? await deps.snapshots.mounts(namespace, id);
  const stdio = `file://${ref.logFile}`;
  const pid = await deps.tasks.create(namespace, id, mounts, { stdout: stdio, stderr: stdio });
  let ip: string;
  try {
    ({ ip } = await deps.network.add(ref.networkId, `/proc/${pid}/ns/net`));
  } catch (err) {
    await deps.tasks.kill(namespace, id, 9, { all: true }).catch(() => {});
    await deps.tasks.delete(namespace, id).catch(() => {});
    throw err;
  }
  const exited = deps.tasks.wait(namespace, id);
  exited.catch(() => {});
  await deps.tasks.start(namespace, id);
  return { pid, ip, exited };
}

/**
 * Stops a task: SIGTERM, up to `graceMs` for it to exit, then SIGKILL; deletes the task and
 * releases its network. Missing pieces are fine (a crash may have removed them).
 */
export async function stopReplicaTask(
  deps: ReplicaDeps,
  ref: ReplicaRef,
  graceMs: number,
): Promise<void> {
  const { namespace, id } = ref;
  let task;
  try {
    task = await deps.tasks.get(namespace, id);
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  if (task && task.status !== "STOPPED") {
    const exited = deps.tasks.wait(namespace, id);
    exited.catch(() => {});
    // A frozen task cannot handle SIGTERM; thaw it first.
    if (task.status === "PAUSED" || task.status === "PAUSING") {
      await deps.tasks.resume(namespace, id).catch(() => {});
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
  await Promise.all([
    deps.network.del(ref.networkId, task ? `/proc/${task.pid}/ns/net` : "").catch((err) => {
      deps.log.warn("CNI DEL failed", { replica: id, err: String(err) });
    }),
    task
      ? deps.tasks.delete(namespace, id).catch((err) => {
        if (!(err instanceof NotFoundError)) throw err;
      })
      : undefined,
  ]);
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
