/** containerd snapshots: the layered filesystems images unpack into and containers run on. */

import type { CallOptions, Rpc } from "./rpc.ts";
import {
  fromTimestamp,
  fromWireMount,
  labelMask,
  labelsToSet,
  type Mount,
  type WireMount,
  type WireTimestamp,
} from "./types.ts";

const SVC = "containerd.services.snapshots.v1.Snapshots";

/** The snapshotter used everywhere unless a caller says otherwise. */
export const DEFAULT_SNAPSHOTTER = "overlayfs";

/** A snapshot's metadata. */
export interface SnapshotInfo {
  name: string;
  parent: string;
  kind: "UNKNOWN" | "VIEW" | "ACTIVE" | "COMMITTED";
  labels: Record<string, string>;
  createdAt?: Date;
  updatedAt?: Date;
}

interface WireInfo {
  name: string;
  parent: string;
  kind: SnapshotInfo["kind"];
  labels: Record<string, string>;
  created_at?: WireTimestamp;
  updated_at?: WireTimestamp;
}

type Opts = Pick<CallOptions, "signal" | "timeoutMs" | "lease"> & { snapshotter?: string };

/** Snapshots service client; every call names its namespace. */
export class Snapshots {
  constructor(private readonly rpc: Rpc) {}

  /**
   * Creates an active (writable) snapshot on `parent` and returns its mounts. Do it under a
   * lease: containerd's GC removes an unreferenced active snapshot at the next deletion.
   */
  prepare(
    namespace: string,
    key: string,
    parent = "",
    labels: Record<string, string> = {},
    opts: Opts = {},
  ): Promise<Mount[]> {
    return this.#mounts("Prepare", namespace, { key, parent, labels }, opts);
  }

  /** Creates a read-only view of `parent` and returns its mounts. */
  view(
    namespace: string,
    key: string,
    parent: string,
    labels: Record<string, string> = {},
    opts: Opts = {},
  ): Promise<Mount[]> {
    return this.#mounts("View", namespace, { key, parent, labels }, opts);
  }

  /** Returns the mounts of an existing active snapshot or view. */
  mounts(namespace: string, key: string, opts: Opts = {}): Promise<Mount[]> {
    return this.#mounts("Mounts", namespace, { key }, opts);
  }

  /** Turns active snapshot `key` into committed snapshot `name`. */
  async commit(
    namespace: string,
    name: string,
    key: string,
    labels: Record<string, string> = {},
    opts: Opts = {},
  ): Promise<void> {
    await this.rpc.unary(SVC, "Commit", { snapshotter: sn(opts), name, key, labels }, {
      ...opts,
      namespace,
    });
  }

  /** Removes a snapshot; FailedPrecondition while it has children. */
  async remove(namespace: string, key: string, opts: Opts = {}): Promise<void> {
    await this.rpc.unary(SVC, "Remove", { snapshotter: sn(opts), key }, { ...opts, namespace });
  }

  /** Gets a snapshot's info; NotFoundError when missing. */
  async stat(namespace: string, key: string, opts: Opts = {}): Promise<SnapshotInfo> {
    const res = await this.rpc.unary<{ info: WireInfo }>(
      SVC,
      "Stat",
      { snapshotter: sn(opts), key },
      { ...opts, namespace },
    );
    return toInfo(res.info);
  }

  /** Merges labels into a snapshot's labels. */
  async setLabels(
    namespace: string,
    key: string,
    labels: Record<string, string>,
    opts: Opts = {},
  ): Promise<SnapshotInfo> {
    const res = await this.rpc.unary<{ info: WireInfo }>(SVC, "Update", {
      snapshotter: sn(opts),
      info: { name: key, labels: labelsToSet(labels) },
      update_mask: labelMask("labels", labels),
    }, { ...opts, namespace });
    return toInfo(res.info);
  }

  /** Lists snapshots, optionally filtered (`parent==x`, `labels."k"==v`). */
  async list(namespace: string, filters: string[] = [], opts: Opts = {}): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    const stream = this.rpc.serverStream<{ info: WireInfo[] }>(
      SVC,
      "List",
      { snapshotter: sn(opts), filters },
      { ...opts, namespace },
    );
    for await (const page of stream) out.push(...page.info.map(toInfo));
    return out;
  }

  /** Disk usage of a snapshot (for an active one, of its own layer). */
  async usage(
    namespace: string,
    key: string,
    opts: Opts = {},
  ): Promise<{ size: number; inodes: number }> {
    const res = await this.rpc.unary<{ size: string; inodes: string }>(
      SVC,
      "Usage",
      { snapshotter: sn(opts), key },
      { ...opts, namespace },
    );
    return { size: Number(res.size), inodes: Number(res.inodes) };
  }

  async #mounts(method: string, namespace: string, req: object, opts: Opts): Promise<Mount[]> {
    const res = await this.rpc.unary<{ mounts: WireMount[] }>(
      SVC,
      method,
      { snapshotter: sn(opts), ...req },
      { ...opts, namespace },
    );
    return res.mounts.map(fromWireMount);
  }
}

function sn(opts: Opts): string {
  return opts.snapshotter ?? DEFAULT_SNAPSHOTTER;
}

function toInfo(i: WireInfo): SnapshotInfo {
  return {
    name: i.name,
    parent: i.parent,
    kind: i.kind,
    labels: i.labels ?? {},
    createdAt: fromTimestamp(i.created_at),
    updatedAt: fromTimestamp(i.updated_at),
  };
}
