/** containerd leases: keep content and snapshots alive while they are being assembled. */

import type { CallOptions, Rpc } from "./rpc.ts";
import { fromTimestamp, type WireTimestamp } from "./types.ts";

const SVC = "containerd.services.leases.v1.Leases";

/** The label that makes containerd expire a forgotten lease. */
export const LEASE_EXPIRE_LABEL = "containerd.io/gc.expire";

/** A lease record. */
export interface Lease {
  id: string;
  labels: Record<string, string>;
  createdAt?: Date;
}

/** A resource held by a lease, e.g. `{ id: digest, type: "content" }`. */
export interface LeaseResource {
  id: string;
  /** `content`, `snapshots/overlayfs`, `ingests`, … */
  type: string;
}

type Opts = Pick<CallOptions, "signal" | "timeoutMs">;

/** Leases service client. */
export class Leases {
  constructor(private readonly rpc: Rpc) {}

  /**
   * Creates a lease that expires after `expireMs` (24 h by default, as the Go client does) so
   * a crash never pins garbage forever. An empty id lets containerd pick one.
   */
  async create(
    namespace: string,
    { id = "", labels = {}, expireMs = 24 * 3600_000 }: {
      id?: string;
      labels?: Record<string, string>;
      expireMs?: number;
    } = {},
    opts: Opts = {},
  ): Promise<Lease> {
    const all = { ...labels, [LEASE_EXPIRE_LABEL]: rfc3339(new Date(Date.now() + expireMs)) };
    const res = await this.rpc.unary<{ lease: WireLease }>(
      SVC,
      "Create",
      { id, labels: all },
      { ...opts, namespace },
    );
    return toLease(res.lease);
  }

  /** Deletes a lease; with `sync` containerd collects what it released before answering. */
  async delete(namespace: string, id: string, sync = false, opts: Opts = {}): Promise<void> {
    await this.rpc.unary(SVC, "Delete", { id, sync }, { ...opts, namespace });
  }

  /** Lists leases, optionally filtered (`id==x`, `labels."k"==v`). */
  async list(namespace: string, filters: string[] = [], opts: Opts = {}): Promise<Lease[]> {
    const res = await this.rpc.unary<{ leases: WireLease[] }>(
      SVC,
      "List",
      { filters },
      { ...opts, namespace },
    );
    return res.leases.map(toLease);
  }

  /** Adds a resource to a lease. */
  async addResource(namespace: string, id: string, r: LeaseResource, opts: Opts = {}) {
    await this.rpc.unary(SVC, "AddResource", { id, resource: r }, { ...opts, namespace });
  }

  /** Removes a resource from a lease. */
  async deleteResource(namespace: string, id: string, r: LeaseResource, opts: Opts = {}) {
    await this.rpc.unary(SVC, "DeleteResource", { id, resource: r }, { ...opts, namespace });
  }

  /** Lists what a lease holds. */
  async listResources(namespace: string, id: string, opts: Opts = {}): Promise<LeaseResource[]> {
    const res = await this.rpc.unary<{ resources: LeaseResource[] }>(
      SVC,
      "ListResources",
      { id },
      { ...opts, namespace },
    );
    return res.resources.map((r) => ({ id: r.id, type: r.type }));
  }

  /**
   * Runs `fn` under a fresh lease and deletes the lease afterwards, whether `fn` succeeded or
   * not. Whatever `fn` made that nothing else references is then collected.
   */
  async with<T>(
    namespace: string,
    fn: (leaseId: string) => Promise<T>,
    opts: Opts = {},
  ): Promise<T> {
    const lease = await this.create(namespace, {}, opts);
    try {
      return await fn(lease.id);
    } finally {
      await this.delete(namespace, lease.id, false, opts);
    }
  }
}

interface WireLease {
  id: string;
  labels: Record<string, string>;
  created_at?: WireTimestamp;
}

function toLease(l: WireLease): Lease {
  return { id: l.id, labels: l.labels ?? {}, createdAt: fromTimestamp(l.created_at) };
}

function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, "Z");
}
