/** containerd's diff service: applies a layer blob onto snapshot mounts. */

import type { CallOptions, Rpc } from "./rpc.ts";
import {
  type Descriptor,
  fromWireDescriptor,
  type Mount,
  toWireDescriptor,
  toWireMount,
  type WireDescriptor,
} from "./types.ts";

const SVC = "containerd.services.diff.v1.Diff";

type Opts = Pick<CallOptions, "signal" | "timeoutMs" | "lease">;

/** Diff service client. */
export class Diff {
  constructor(private readonly rpc: Rpc) {}

  /**
   * Extracts `layer` (already in this namespace's content store) onto `mounts` and returns the
   * uncompressed descriptor, whose digest is the layer's diffID.
   */
  async apply(
    namespace: string,
    layer: Descriptor,
    mounts: Mount[],
    opts: Opts = {},
  ): Promise<Descriptor> {
    const res = await this.rpc.unary<{ applied: WireDescriptor }>(SVC, "Apply", {
      diff: toWireDescriptor(layer),
      mounts: mounts.map(toWireMount),
      payloads: {},
    }, { ...opts, namespace });
    return fromWireDescriptor(res.applied);
  }

  /** Computes the difference between two mount sets and stores it as a layer blob. */
  async diff(
    namespace: string,
    left: Mount[],
    right: Mount[],
    { mediaType = "", ref = "", labels = {} }: {
      mediaType?: string;
      ref?: string;
      labels?: Record<string, string>;
    } = {},
    opts: Opts = {},
  ): Promise<Descriptor> {
    const res = await this.rpc.unary<{ diff: WireDescriptor }>(SVC, "Diff", {
      left: left.map(toWireMount),
      right: right.map(toWireMount),
      media_type: mediaType,
      ref,
      labels,
    }, { ...opts, namespace });
    return fromWireDescriptor(res.diff);
  }
}
