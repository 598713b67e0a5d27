/** containerd tasks: the running processes of containers (create, start, wait, kill, delete, …). */

import type { ProtoApi } from "./proto.ts";
import { decodeAny } from "./proto.ts";
import type { CallOptions, Rpc } from "./rpc.ts";
import { fromTimestamp, type Mount, toWireMount, type WireTimestamp } from "./types.ts";

const SVC = "containerd.services.tasks.v1.Tasks";

/** Task states as containerd names them. */
export type TaskStatus = "UNKNOWN" | "CREATED" | "RUNNING" | "STOPPED" | "PAUSED" | "PAUSING";

/** Where the task's stdio goes (see the stdio URI table in the containerd reference). */
export interface TaskIO {
  stdin?: string;
  /** `""` for /dev/null, an existing FIFO or file path, `file:///abs` or `binary:///abs?k=v`. */
  stdout?: string;
  stderr?: string;
  terminal?: boolean;
}

/** Options for one task's runtime shim (io.containerd.runc.v2). */
export interface TaskRuntimeOptions {
  /**
   * The OCI runtime binary the shim runs for this task (`crun`, `/usr/bin/crun`, …); absent or
   * empty: the shim's default, `runc`.
   */
  binaryName?: string;
}

/** The Any type URL containerd's runc shim reads its per-task options from. */
export const RUNC_OPTIONS_TYPE_URL = "containerd.runc.v1.Options";

/** A task's main process as containerd reports it. */
export interface TaskProcess {
  id: string;
  pid: number;
  status: TaskStatus;
  exitStatus: number;
  exitedAt?: Date;
}

/** How a process ended. */
export interface ExitResult {
  exitStatus: number;
  exitedAt?: Date;
}

/** Resource usage of one task, whatever the host's cgroup version. */
export interface TaskMetrics {
  id: string;
  /** Total CPU time used, in nanoseconds. */
  cpuNanos: number;
  memoryBytes: number;
  memoryLimitBytes?: number;
  pids?: number;
}

interface WireProcess {
  container_id: string;
  id: string;
  pid: number;
  status: TaskStatus;
  exit_status: number;
  exited_at?: WireTimestamp;
}

type Opts = Pick<CallOptions, "signal" | "timeoutMs">;

/** Tasks service client; every call names its namespace. */
export class Tasks {
  constructor(private readonly rpc: Rpc, private readonly api: ProtoApi) {}

  #runcOptions(runtime: TaskRuntimeOptions): { type_url: string; value: Uint8Array } {
    const value = this.api.encode(RUNC_OPTIONS_TYPE_URL, { binary_name: runtime.binaryName });
    return { type_url: RUNC_OPTIONS_TYPE_URL, value };
  }

  /** Creates the task (status CREATED) with the container's rootfs mounts; returns its pid. */
  async create(
    namespace: string,
    containerId: string,
    rootfs: Mount[],
    io: TaskIO = {},
    opts: Opts & { runtime?: TaskRuntimeOptions } = {},
  ): Promise<number> {
    const { runtime, ...callOpts } = opts;
    const res = await this.rpc.unary<{ pid: number }>(SVC, "Create", {
      container_id: containerId,
      rootfs: rootfs.map(toWireMount),
      stdin: io.stdin ?? "",
      stdout: io.stdout ?? "",
      stderr: io.stderr ?? "",
      terminal: io.terminal ?? false,
      options: runtime?.binaryName ? this.#runcOptions(runtime) : null,
    }, { ...callOpts, namespace });
    return res.pid;
  }

  /** Starts a created task; returns its pid. */
  async start(namespace: string, containerId: string, opts: Opts = {}): Promise<number> {
    const res = await this.rpc.unary<{ pid: number }>(
      SVC,
      "Start",
      { container_id: containerId, exec_id: "" },
      { ...opts, namespace },
    );
    return res.pid;
  }

  /**
   * Resolves when the task exits. Call it before start() so a fast exit is not missed; it has no
   * deadline unless `opts.timeoutMs` is given.
   */
  async wait(namespace: string, containerId: string, opts: Opts = {}): Promise<ExitResult> {
    const res = await this.rpc.unary<{ exit_status: number; exited_at?: WireTimestamp }>(
      SVC,
      "Wait",
      { container_id: containerId, exec_id: "" },
      { ...opts, namespace },
    );
    return { exitStatus: res.exit_status, exitedAt: fromTimestamp(res.exited_at) };
  }

  /** Sends a signal (15 = SIGTERM, 9 = SIGKILL); `all` signals every process in the task. */
  async kill(
    namespace: string,
    containerId: string,
    signal: number,
    { all = false, ...opts }: Opts & { all?: boolean } = {},
  ): Promise<void> {
    await this.rpc.unary(
      SVC,
      "Kill",
      { container_id: containerId, exec_id: "", signal, all },
      { ...opts, namespace },
    );
  }

  /** Freezes every process of the task (status PAUSED). */
  async pause(namespace: string, containerId: string, opts: Opts = {}): Promise<void> {
    await this.rpc.unary(SVC, "Pause", { container_id: containerId }, { ...opts, namespace });
  }

  /** Thaws a paused task (status RUNNING). */
  async resume(namespace: string, containerId: string, opts: Opts = {}): Promise<void> {
    await this.rpc.unary(SVC, "Resume", { container_id: containerId }, { ...opts, namespace });
  }

  /** Deletes a stopped task; FailedPrecondition/ContainerdError while it still runs. */
  async delete(namespace: string, containerId: string, opts: Opts = {}): Promise<ExitResult> {
    const res = await this.rpc.unary<{ exit_status: number; exited_at?: WireTimestamp }>(
      SVC,
      "Delete",
      { container_id: containerId },
      { ...opts, namespace },
    );
    return { exitStatus: res.exit_status, exitedAt: fromTimestamp(res.exited_at) };
  }

  /** Gets the task's main process; NotFoundError when the container has no task. */
  async get(namespace: string, containerId: string, opts: Opts = {}): Promise<TaskProcess> {
    const res = await this.rpc.unary<{ process: WireProcess }>(
      SVC,
      "Get",
      { container_id: containerId, exec_id: "" },
      { ...opts, namespace },
    );
    return toProcess(res.process);
  }

  /** Lists the namespace's tasks. */
  async list(namespace: string, opts: Opts = {}): Promise<TaskProcess[]> {
    const res = await this.rpc.unary<{ tasks: WireProcess[] }>(
      SVC,
      "List",
      { filter: "" },
      { ...opts, namespace },
    );
    return res.tasks.map(toProcess);
  }

  /** Reads cgroup metrics for the given containers (all tasks of the namespace when empty). */
  async metrics(namespace: string, ids: string[] = [], opts: Opts = {}): Promise<TaskMetrics[]> {
    const res = await this.rpc.unary<{
      metrics: Array<{ id: string; data: { type_url: string; value: Uint8Array } | null }>;
    }>(SVC, "Metrics", { filters: ids.map((id) => `id==${id}`) }, { ...opts, namespace });
    return res.metrics.flatMap((m) => {
      const decoded = m.data ? decodeAny(this.api, m.data) : undefined;
      return decoded ? [toMetrics(m.id, decoded.typeUrl, decoded.value)] : [];
    });
  }
}

function toProcess(p: WireProcess): TaskProcess {
  return {
    // Tasks.Get/List report the container id in `id` and leave `container_id` empty.
    id: p.id || p.container_id,
    pid: p.pid,
    status: p.status,
    exitStatus: p.exit_status,
    exitedAt: fromTimestamp(p.exited_at),
  };
}

// deno-lint-ignore no-explicit-any
type Loose = any;

// cgroup v1 reports cpu in ns and memory under memory.usage; v2 in µs and memory.usage directly.
function toMetrics(id: string, typeUrl: string, m: Loose): TaskMetrics {
  if (typeUrl.endsWith("cgroups.v2.Metrics")) {
    return {
      id,
      cpuNanos: Number(m.cpu?.usage_usec ?? 0) * 1000,
      memoryBytes: Number(m.memory?.usage ?? 0),
      memoryLimitBytes: limit(m.memory?.usage_limit),
      pids: m.pids ? Number(m.pids.current) : undefined,
    };
  }
  return {
    id,
    cpuNanos: Number(m.cpu?.usage?.total ?? 0),
    memoryBytes: Number(m.memory?.usage?.usage ?? 0),
    memoryLimitBytes: limit(m.memory?.usage?.limit),
    pids: m.pids ? Number(m.pids.current) : undefined,
  };
}

// "No limit" is reported as a huge number (page-rounded 2^63-1 on v1, max uint64 on v2).
function limit(v: string | number | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  return n > 0 && n < 2 ** 53 ? n : undefined;
}
