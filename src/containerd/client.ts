/**
 * The containerd client: one gRPC channel over the unix socket and a typed wrapper per service.
 * This is the only way the rest of the appliance talks to containerd.
 */

import { stat } from "node:fs/promises";
import { PermissionDeniedError, UnavailableError } from "../errors.ts";
import { Containers } from "./containers.ts";
import { Content } from "./content.ts";
import { Diff } from "./diff.ts";
import { unreachableMessage } from "./errors.ts";
import { Events } from "./events.ts";
import { Images } from "./images.ts";
import { Leases } from "./leases.ts";
import { Namespaces } from "./namespaces.ts";
import { loadProtoApi, type ProtoApi } from "./proto.ts";
import { GrpcRpc, type Rpc } from "./rpc.ts";
import { Snapshots } from "./snapshots.ts";
import { Tasks } from "./tasks.ts";
import { type ContainerdVersion, getVersion } from "./version.ts";

/** Options for {@link Containerd.connect}. */
export interface ConnectOptions {
  /** Path of containerd's socket, e.g. `/run/containerd/containerd.sock`. */
  socket: string;
  /** How long the first call may take before containerd counts as unreachable. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A connected containerd client. Close it when done; it holds a socket open. */
export class Containerd {
  readonly namespaces: Namespaces;
  readonly containers: Containers;
  readonly tasks: Tasks;
  readonly snapshots: Snapshots;
  readonly content: Content;
  readonly images: Images;
  readonly diff: Diff;
  readonly leases: Leases;
  readonly events: Events;

  private constructor(
    readonly socket: string,
    private readonly rpc: Rpc & { close(): Promise<void> },
    api: ProtoApi,
    /** The daemon's version, read when connecting. */
    readonly serverVersion: ContainerdVersion,
  ) {
    this.namespaces = new Namespaces(rpc);
    this.containers = new Containers(rpc);
    this.tasks = new Tasks(rpc, api);
    this.snapshots = new Snapshots(rpc);
    this.content = new Content(rpc);
    this.images = new Images(rpc);
    this.diff = new Diff(rpc);
    this.leases = new Leases(rpc);
    this.events = new Events(rpc, api);
  }

  /**
   * Connects and proves containerd answers (Version). A missing socket, a socket we may not
   * open, or a daemon that does not answer each get an error that says what to do.
   */
  static async connect(opts: ConnectOptions): Promise<Containerd> {
    await checkSocket(opts.socket);
    const api = loadProtoApi();
    const rpc = new GrpcRpc(opts.socket, api);
    try {
      const version = await getVersion(rpc, {
        timeoutMs: opts.timeoutMs ?? 5000,
        signal: opts.signal,
      });
      return new Containerd(opts.socket, rpc, api, version);
    } catch (err) {
      await rpc.close();
      if (err instanceof Error && err.name === "TimeoutError") {
        throw new UnavailableError(`${unreachableMessage(opts.socket)} (no answer)`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  /** Asks the daemon for its version again (a cheap liveness check). */
  version(opts: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<ContainerdVersion> {
    return getVersion(this.rpc, opts);
  }

  /** Closes the connection; pending calls fail with UNAVAILABLE, later ones with CANCELLED. */
  close(): Promise<void> {
    return this.rpc.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function checkSocket(socket: string): Promise<void> {
  let info;
  try {
    info = await stat(socket);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EACCES" || code === "EPERM" || (err as Error).name === "NotCapable") {
      throw new PermissionDeniedError(
        `cannot open containerd's socket ${socket}: permission denied — run faasd as root`,
        { cause: err },
      );
    }
    throw new UnavailableError(`${unreachableMessage(socket)} (the socket does not exist)`, {
      cause: err,
    });
  }
  if (!info.isSocket()) {
    throw new UnavailableError(`${unreachableMessage(socket)} (${socket} is not a socket)`);
  }
}
