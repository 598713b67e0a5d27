/**
 * Unpacks an image's layers into the overlayfs snapshotter with containerd's diff service, the
 * way containerd's own unpacker does: one committed snapshot per chain ID, layers already
 * unpacked are skipped, and GC labels tie the snapshots to the image's config.
 */

import { createHash, randomBytes } from "node:crypto";
import type { Content } from "../containerd/content.ts";
import type { Diff } from "../containerd/diff.ts";
import type { Snapshots } from "../containerd/snapshots.ts";
import type { Descriptor } from "../containerd/types.ts";
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from "../errors.ts";

/** The label on an image config that keeps its top snapshot (and so the chain) alive. */
export const SNAPSHOT_GC_LABEL = "containerd.io/gc.ref.snapshot.overlayfs";
/** The label on a compressed layer blob naming its uncompressed digest. */
export const UNCOMPRESSED_LABEL = "containerd.io/uncompressed";

/** containerd's chain IDs: chain[0] = diff[0]; chain[i] = sha256(chain[i-1] + " " + diff[i]). */
export function chainIds(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const [i, diff] of diffIds.entries()) {
    out.push(
      i === 0
        ? diff
        : `sha256:${createHash("sha256").update(`${out[i - 1]} ${diff}`).digest("hex")}`,
    );
  }
  return out;
}

/** The services unpacking uses. */
export interface UnpackDeps {
  snapshots: Pick<Snapshots, "stat" | "prepare" | "commit" | "remove">;
  diff: Pick<Diff, "apply">;
  content: Pick<Content, "setLabels">;
}

/** What to unpack. */
export interface UnpackRequest {
  namespace: string;
  lease: string;
  config: Descriptor;
  layers: Descriptor[];
  diffIds: string[];
  /** Called as each layer is applied (or found already unpacked). */
  onLayer?: (index: number, applied: boolean) => void;
  /** Per layer: resolves when its blob is in the content store (all present when absent). */
  ready?: Promise<void>[];
}

/** Reports whether the image's top snapshot exists (ctr's "unpacked" check). */
export async function isUnpacked(
  snapshots: Pick<Snapshots, "stat">,
  namespace: string,
  diffIds: string[],
): Promise<boolean> {
  if (diffIds.length === 0) return true;
  try {
    await snapshots.stat(namespace, chainIds(diffIds).at(-1)!);
    return true;
  } catch (err) {
    if (err instanceof NotFoundError) return false;
    throw err;
  }
}

/** Unpacks the layers and returns the top chain ID (the parent for container snapshots). */
export async function unpackLayers(deps: UnpackDeps, req: UnpackRequest): Promise<string> {
  const { namespace, lease } = req;
  if (req.layers.length !== req.diffIds.length) {
    throw new InvalidArgumentError(
      `image config lists ${req.diffIds.length} layers but the manifest has ${req.layers.length}`,
    );
  }
  const chain = chainIds(req.diffIds);
  for (const [i, layer] of req.layers.entries()) {
    const exists = await deps.snapshots.stat(namespace, chain[i]).then(() => true, (err) => {
      if (err instanceof NotFoundError) return false;
      throw err;
    });
    if (!exists) {
      await req.ready?.[i];
      await applyLayer(deps, namespace, lease, layer, req.diffIds[i], chain[i], chain[i - 1] ?? "");
    }
    req.onLayer?.(i, !exists);
  }
  const top = chain.at(-1) ?? "";
  if (top) {
    await deps.content.setLabels(namespace, req.config.digest, { [SNAPSHOT_GC_LABEL]: top }, {
      lease,
    });
  }
  return top;
}

async function applyLayer(
  deps: UnpackDeps,
  namespace: string,
  lease: string,
  layer: Descriptor,
  diffId: string,
  chainId: string,
  parent: string,
): Promise<void> {
  const key = `extract-${randomBytes(6).toString("hex")} ${chainId}`;
  const mounts = await deps.snapshots.prepare(namespace, key, parent, {
    "containerd.io/snapshot.ref": chainId,
  }, { lease });
  try {
    const applied = await deps.diff.apply(namespace, layer, mounts, { lease });
    if (applied.digest !== diffId) {
      throw new InvalidArgumentError(
        `layer ${layer.digest} unpacks to ${applied.digest}, but the image config says ${diffId}`,
      );
    }
    try {
      await deps.snapshots.commit(namespace, chainId, key, {}, { lease });
    } catch (err) {
      // Another pull of an image sharing this layer committed it first: theirs is as good.
      if (!(err instanceof AlreadyExistsError)) throw err;
      await deps.snapshots.remove(namespace, key).catch(() => {});
    }
  } catch (err) {
    await deps.snapshots.remove(namespace, key).catch(() => {});
    throw err;
  }
  if (layer.digest !== diffId) {
    await deps.content.setLabels(namespace, layer.digest, { [UNCOMPRESSED_LABEL]: diffId }, {
      lease,
    });
  }
}
