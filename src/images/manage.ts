/** Listing, removing and pruning the images of a containerd namespace. */

import type { Containers } from "../containerd/containers.ts";
import type { Content } from "../containerd/content.ts";
import type { Images } from "../containerd/images.ts";
import type { Snapshots } from "../containerd/snapshots.ts";
import { NotFoundError } from "../errors.ts";
import type { Platform } from "./platform.ts";
import { parseReference } from "./reference.ts";
import { inspectImage } from "./store.ts";

/** One row of `faasd image ls`. */
export interface ListedImage {
  name: string;
  digest: string;
  /** Compressed size for the platform, or undefined when the content is incomplete. */
  size?: number;
  platform?: string;
  unpacked: boolean;
  createdAt?: Date;
}

/** What a prune removed. */
export interface PruneResult {
  removed: string[];
  /** Content bytes and snapshot bytes that are gone after the collection. */
  bytesFreed: number;
}

interface Deps {
  images: Images;
  content: Content;
  snapshots: Snapshots;
  containers: Containers;
}

/** Lists the images of a namespace, with size and unpack state for `platform`. */
export async function listImages(
  deps: Deps,
  namespace: string,
  platform: Platform,
): Promise<ListedImage[]> {
  const out: ListedImage[] = [];
  for (const image of await deps.images.list(namespace)) {
    const row: ListedImage = {
      name: image.name,
      digest: image.target.digest,
      unpacked: false,
      createdAt: image.createdAt,
    };
    try {
      const s = await inspectImage(deps, namespace, image.name, platform);
      Object.assign(row, { size: s.size, platform: s.platform, unpacked: s.unpacked });
    } catch {
      // Content missing or no variant for this platform: list it without details.
    }
    out.push(row);
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Removes an image record by reference; returns the record's name. */
export async function removeImage(deps: Deps, namespace: string, ref: string): Promise<string> {
  const name = parseReference(ref).name;
  try {
    await deps.images.delete(namespace, name, true);
  } catch (err) {
    if (err instanceof NotFoundError) {
      throw new NotFoundError(`image not found: ${ref} (namespace "${namespace}")`, { cause: err });
    }
    throw err;
  }
  return name;
}

/**
 * Removes every image that no container of the namespace was created from, lets containerd's
 * GC collect the content and snapshots only they held, and measures what that freed.
 */
export async function pruneImages(deps: Deps, namespace: string): Promise<PruneResult> {
  const inUse = new Set((await deps.containers.list(namespace)).map((c) => c.image));
  const unused = (await deps.images.list(namespace)).filter((i) => !inUse.has(i.name));
  const before = await usage(deps, namespace);
  for (const [i, image] of unused.entries()) {
    // Only the last delete waits for GC; each delete schedules a collection anyway.
    await deps.images.delete(namespace, image.name, i === unused.length - 1).catch((err) => {
      if (!(err instanceof NotFoundError)) throw err;
    });
  }
  const after = await usage(deps, namespace);
  let bytesFreed = 0;
  for (const [key, size] of before) if (!after.has(key)) bytesFreed += size;
  return { removed: unused.map((i) => i.name), bytesFreed };
}

// Every blob and committed snapshot of the namespace with its size.
async function usage(deps: Deps, namespace: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const c of await deps.content.list(namespace)) out.set(c.digest, c.size);
  for (const s of await deps.snapshots.list(namespace)) {
    if (s.kind !== "COMMITTED") continue;
    const u = await deps.snapshots.usage(namespace, s.name).catch(() => ({ size: 0 }));
    out.set(`snapshot:${s.name}`, u.size);
  }
  return out;
}
