/** containerd namespaces: the unit of isolation for containers, images, content and snapshots. */

import { AlreadyExistsError, NotFoundError } from "../errors.ts";
import type { CallOptions, Rpc } from "./rpc.ts";
import { labelMask, labelsToSet } from "./types.ts";

const SVC = "containerd.services.namespaces.v1.Namespaces";

/** A containerd namespace and its labels. */
export interface Namespace {
  name: string;
  labels: Record<string, string>;
}

interface WireNamespace {
  name: string;
  labels: Record<string, string>;
}

type Opts = Pick<CallOptions, "signal" | "timeoutMs">;

/** Namespaces service client. */
export class Namespaces {
  constructor(private readonly rpc: Rpc) {}

  /** Lists every namespace, sorted by name. */
  async list(opts: Opts = {}): Promise<Namespace[]> {
    const res = await this.rpc.unary<{ namespaces: WireNamespace[] }>(SVC, "List", {}, opts);
    return res.namespaces.map(toNamespace).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Gets one namespace; NotFoundError when it does not exist. */
  async get(name: string, opts: Opts = {}): Promise<Namespace> {
    const res = await this.rpc.unary<{ namespace: WireNamespace }>(SVC, "Get", { name }, opts);
    const ns = toNamespace(res.namespace);
    // containerd 1.6 answers Get for a namespace that does not exist with an empty one, so an
    // unlabelled answer is checked against the list.
    if (Object.keys(ns.labels).length === 0) {
      const all = await this.list(opts);
      if (!all.some((n) => n.name === name)) {
        throw new NotFoundError(`namespace "${name}" not found`);
      }
    }
    return ns;
  }

  /** Creates a namespace; AlreadyExistsError when it exists. */
  async create(name: string, labels: Record<string, string> = {}, opts: Opts = {}): Promise<void> {
    // containerd publishes an event for the change, and publishing needs a namespace header.
    await this.rpc.unary(SVC, "Create", { namespace: { name, labels } }, {
      ...opts,
      namespace: name,
    });
  }

  /** Creates the namespace unless it exists; either way sets `labels` on it. */
  async ensure(name: string, labels: Record<string, string> = {}, opts: Opts = {}): Promise<void> {
    try {
      await this.create(name, labels, opts);
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
      if (Object.keys(labels).length > 0) await this.setLabels(name, labels, opts);
    }
  }

  /**
   * Sets (or, with an empty value, clears) the given labels and leaves the others alone.
   * containerd accepts only `labels.<key>` mask paths here.
   */
  async setLabels(name: string, labels: Record<string, string>, opts: Opts = {}): Promise<void> {
    await this.rpc.unary(
      SVC,
      "Update",
      {
        namespace: { name, labels: labelsToSet(labels) },
        update_mask: labelMask("labels", labels),
      },
      { ...opts, namespace: name },
    );
  }

  /** Deletes a namespace; FailedPreconditionError when it still holds anything. */
  async delete(name: string, opts: Opts = {}): Promise<void> {
    await this.rpc.unary(SVC, "Delete", { name }, { ...opts, namespace: name });
  }
}

function toNamespace(n: WireNamespace): Namespace {
  return { name: n.name, labels: n.labels ?? {} };
}
