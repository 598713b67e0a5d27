/** containerd containers: metadata records (spec, labels, snapshot) that tasks are started from. */

import type { CallOptions, Rpc } from "./rpc.ts";
import { fromTimestamp, labelMask, labelsToSet, type WireTimestamp } from "./types.ts";

const SVC = "containerd.services.containers.v1.Containers";

/** The type URL containerd 1.6 uses for an OCI runtime spec stored as JSON bytes. */
export const SPEC_TYPE_URL = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

/** The runtime every container here runs under. */
export const RUNC_V2 = "io.containerd.runc.v2";

/** What a caller provides to create a container. */
export interface ContainerSpec {
  id: string;
  /** The OCI runtime spec (config.json) as a plain object. */
  spec: Record<string, unknown>;
  labels?: Record<string, string>;
  image?: string;
  runtime?: string;
  snapshotter?: string;
  snapshotKey?: string;
}

/** A container record as stored by containerd. */
export interface Container {
  id: string;
  labels: Record<string, string>;
  image: string;
  runtime: string;
  spec: Record<string, unknown>;
  snapshotter: string;
  snapshotKey: string;
  createdAt?: Date;
  updatedAt?: Date;
}

interface WireContainer {
  id: string;
  labels: Record<string, string>;
  image: string;
  runtime: { name: string } | null;
  spec: { type_url: string; value: Uint8Array } | null;
  snapshotter: string;
  snapshot_key: string;
  created_at?: WireTimestamp;
  updated_at?: WireTimestamp;
}

type Opts = Pick<CallOptions, "signal" | "timeoutMs" | "lease">;

/** Containers service client; every call names its namespace. */
export class Containers {
  constructor(private readonly rpc: Rpc) {}

  /** Creates a container record; create its snapshot first, under the same lease. */
  async create(namespace: string, c: ContainerSpec, opts: Opts = {}): Promise<Container> {
    const container = {
      id: c.id,
      labels: c.labels ?? {},
      image: c.image ?? "",
      runtime: { name: c.runtime ?? RUNC_V2 },
      spec: {
        type_url: SPEC_TYPE_URL,
        value: new TextEncoder().encode(JSON.stringify(c.spec)),
      },
      snapshotter: c.snapshotKey ? (c.snapshotter ?? "overlayfs") : (c.snapshotter ?? ""),
      snapshot_key: c.snapshotKey ?? "",
    };
    const res = await this.rpc.unary<{ container: WireContainer }>(
      SVC,
      "Create",
      { container },
      { ...opts, namespace },
    );
    return toContainer(res.container);
  }

  /** Gets one container; NotFoundError when missing. */
  async get(namespace: string, id: string, opts: Opts = {}): Promise<Container> {
    const res = await this.rpc.unary<{ container: WireContainer }>(
      SVC,
      "Get",
      { id },
      { ...opts, namespace },
    );
    return toContainer(res.container);
  }

  /**
   * Lists containers. Filters follow containerd's syntax (`labels."a.b"==v`); separate strings
   * are OR-ed, commas inside one string AND-ed.
   */
  async list(namespace: string, filters: string[] = [], opts: Opts = {}): Promise<Container[]> {
    const res = await this.rpc.unary<{ containers: WireContainer[] }>(
      SVC,
      "List",
      { filters },
      { ...opts, namespace },
    );
    return res.containers.map(toContainer);
  }

  /** Merges `labels` into the container's labels (an empty value deletes the label). */
  async setLabels(
    namespace: string,
    id: string,
    labels: Record<string, string>,
    opts: Opts = {},
  ): Promise<Container> {
    const res = await this.rpc.unary<{ container: WireContainer }>(
      SVC,
      "Update",
      {
        container: { id, labels: labelsToSet(labels) },
        update_mask: labelMask("labels", labels),
      },
      { ...opts, namespace },
    );
    return toContainer(res.container);
  }

  /** Deletes the record (not its snapshot, which the caller removes). */
  async delete(namespace: string, id: string, opts: Opts = {}): Promise<void> {
    await this.rpc.unary(SVC, "Delete", { id }, { ...opts, namespace });
  }
}

function toContainer(c: WireContainer): Container {
  let spec: Record<string, unknown> = {};
  if (c.spec?.type_url === SPEC_TYPE_URL && c.spec.value.length > 0) {
    spec = JSON.parse(new TextDecoder().decode(c.spec.value));
  }
  return {
    id: c.id,
    labels: c.labels ?? {},
    image: c.image,
    runtime: c.runtime?.name ?? "",
    spec,
    snapshotter: c.snapshotter,
    snapshotKey: c.snapshot_key,
    createdAt: fromTimestamp(c.created_at),
    updatedAt: fromTimestamp(c.updated_at),
  };
}
