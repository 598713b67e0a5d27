/**
 * Pulls an image from a registry into containerd with our own client: resolve the reference
 * (mirrors first, then the origin), fetch the index, the manifest for the wanted platform, the
 * config and the layers (concurrently, skipping blobs containerd already has) into the content
 * store under a lease, unpack into the snapshotter, and only then point the image record at it.
 */

import type { Content } from "../containerd/content.ts";
import type { Diff } from "../containerd/diff.ts";
import type { Images } from "../containerd/images.ts";
import type { Leases } from "../containerd/leases.ts";
import type { Snapshots } from "../containerd/snapshots.ts";
import type { Descriptor } from "../containerd/types.ts";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from "../errors.ts";
import type { Logger } from "../log.ts";
import { isIndex, isLayer, isManifest } from "./media_types.ts";
import { hostPlatform, type Platform } from "./platform.ts";
import { parseReference } from "./reference.ts";
import type { RegistryClient, RegistryEndpoint, Repository } from "./registry_client.ts";
import { type StoredImage, storeManifestChain } from "./store.ts";
import { unpackLayers } from "./unpack.ts";

/** The containerd services and registry access a pull needs. */
export interface PullDeps {
  content: Content;
  images: Images;
  leases: Leases;
  snapshots: Snapshots;
  diff: Diff;
  registry: RegistryClient;
  /** Endpoints to try for a registry domain, mirrors first and the origin last. */
  endpoints: (domain: string) => Array<RegistryEndpoint & { mirror?: boolean }>;
  log: Logger;
}

/** What to pull. */
export interface PullOptions {
  ref: string;
  namespace: string;
  platform?: Platform;
  signal?: AbortSignal;
  /** Layers fetched at once. */
  concurrency?: number;
  progress?: PullProgress;
}

/** Progress callbacks, for a terminal display or plain log lines. */
export interface PullProgress {
  resolved?(name: string, root: Descriptor, host: string): void;
  layer?(
    e: { digest: string; size: number; state: "present" | "downloading" | "done"; bytes: number },
  ): void;
  unpacking?(layers: number): void;
}

/** The outcome of a pull. */
export interface PullResult extends StoredImage {
  /** The endpoint the image came from (a mirror or the origin). */
  host: string;
  /** Bytes fetched from the registry for layers (0 when everything was present). */
  downloadedBytes: number;
}

/** Pulls `opts.ref` and returns the stored image. */
export async function pullImage(deps: PullDeps, opts: PullOptions): Promise<PullResult> {
  const ref = parseReference(opts.ref);
  const platform = opts.platform ?? hostPlatform();
  const { namespace, signal } = opts;
  const { repo, root } = await resolveAny(deps, ref, signal);
  opts.progress?.resolved?.(ref.name, root, repo.endpoint.host);
  deps.log.debug("resolved", { image: ref.name, digest: root.digest, host: repo.endpoint.host });

  const sourceLabel = { [`containerd.io/distribution.source.${ref.domain}`]: ref.path };
  let downloadedBytes = 0;
  const stored = await deps.leases.with(namespace, async (lease) => {
    const fetchSmall = async (desc: Descriptor): Promise<Uint8Array> => {
      const local = await readIfPresent(deps.content, namespace, desc);
      if (local) return local;
      return isIndex(desc.mediaType) || isManifest(desc.mediaType)
        ? await repo.fetchManifest(desc, signal)
        : await repo.fetchSmallBlob(desc, signal);
    };
    const fetchLayer = async (layer: Descriptor) => {
      if (!isLayer(layer.mediaType)) {
        throw new InvalidArgumentError(
          `image ${ref.original} has a layer of unsupported type "${layer.mediaType}"`,
        );
      }
      const present = await has(deps.content, namespace, layer.digest);
      if (present) {
        opts.progress?.layer?.({
          digest: layer.digest,
          size: layer.size,
          state: "present",
          bytes: layer.size,
        });
        return;
      }
      let bytes = 0;
      opts.progress?.layer?.({
        digest: layer.digest,
        size: layer.size,
        state: "downloading",
        bytes,
      });
      try {
        await deps.content.write(namespace, {
          ref: `layer-${layer.digest}`,
          digest: layer.digest,
          size: layer.size,
          labels: sourceLabel,
          data: async function* (offset) {
            bytes = offset;
            for await (const chunk of await repo.fetchBlob(layer, { offset, signal })) {
              bytes += chunk.length;
              downloadedBytes += chunk.length;
              opts.progress?.layer?.({
                digest: layer.digest,
                size: layer.size,
                state: "downloading",
                bytes,
              });
              yield chunk;
            }
          },
        }, { lease, signal });
      } catch (err) {
        if (err instanceof FailedPreconditionError) {
          throw new InvalidArgumentError(
            `layer ${layer.digest} from ${repo.endpoint.host} is truncated or does not match its digest (${err.message})`,
            { cause: err },
          );
        }
        throw err;
      }
      opts.progress?.layer?.({
        digest: layer.digest,
        size: layer.size,
        state: "done",
        bytes: layer.size,
      });
    };

    const result = await storeManifestChain({
      content: deps.content,
      namespace,
      lease,
      root,
      platform,
      what: ref.original,
      labels: sourceLabel,
      readBlob: fetchSmall,
      fetchLayers: (layers) => startLimited(layers, opts.concurrency ?? 3, fetchLayer),
      unpack: async (manifest, config, ready) => {
        opts.progress?.unpacking?.(manifest.layers.length);
        return await unpackLayers(deps, {
          namespace,
          lease,
          config: manifest.config,
          layers: manifest.layers,
          diffIds: config.rootfs.diff_ids,
          ready,
        });
      },
    });
    // Still under the lease: once it ends, GC may run at any moment, and only the image record
    // keeps what was just stored.
    await setImageRecord(deps.images, namespace, ref.name, root);
    return result;
  }, { signal });

  return { ...stored, name: ref.name, host: repo.endpoint.host, downloadedBytes };
}

/** Creates the image record, or points an existing one at the new target. */
export async function setImageRecord(
  images: Images,
  namespace: string,
  name: string,
  target: Descriptor,
): Promise<void> {
  try {
    await images.create(namespace, { name, target });
  } catch (err) {
    if (!(err instanceof AlreadyExistsError)) throw err;
    await images.setTarget(namespace, name, target);
  }
}

async function resolveAny(
  deps: PullDeps,
  ref: ReturnType<typeof parseReference>,
  signal?: AbortSignal,
): Promise<{ repo: Repository; root: Descriptor }> {
  const endpoints = deps.endpoints(ref.domain);
  let lastError: unknown;
  for (const ep of endpoints) {
    const repo = deps.registry.repository(ep, ref.path);
    try {
      const root = await repo.resolve(ref.digest ?? ref.tag ?? "latest", signal);
      if (ref.digest && root.digest !== ref.digest) {
        throw new InvalidArgumentError(
          `registry ${ep.host} answered ${root.digest} for ${ref.original}`,
        );
      }
      return { repo, root };
    } catch (err) {
      if (signal?.aborted) throw err;
      lastError = err;
      if (ep.mirror) {
        deps.log.warn("mirror failed, trying the next endpoint", {
          mirror: ep.host,
          err: String(err),
        });
        continue;
      }
      if (err instanceof NotFoundError) {
        throw new NotFoundError(`image not found: ${ref.original} (${err.message})`, {
          cause: err,
        });
      }
      throw err;
    }
  }
  throw lastError ?? new NotFoundError(`image not found: ${ref.original} (no registry endpoint)`);
}

async function has(content: Content, namespace: string, digest: string): Promise<boolean> {
  try {
    await content.info(namespace, digest);
    return true;
  } catch (err) {
    if (err instanceof NotFoundError) return false;
    throw err;
  }
}

async function readIfPresent(
  content: Content,
  namespace: string,
  desc: Descriptor,
): Promise<Uint8Array | undefined> {
  // One round trip: a missing blob answers NotFound to the read itself.
  try {
    return await content.readAll(namespace, desc.digest);
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/**
 * Starts `fn` over `items` in order with at most `limit` running at once, and returns one
 * promise per item (so the first items can be used while later ones still run).
 */
export function startLimited<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void>[] {
  let running = 0;
  const queue: Array<() => void> = [];
  const slot = () =>
    new Promise<void>((resolve) => {
      if (running < limit) {
        running++;
        resolve();
      } else queue.push(resolve);
    });
  const free = () => {
    const next = queue.shift();
    if (next) next();
    else running--;
  };
  return items.map(async (item) => {
    await slot();
    try {
      await fn(item);
    } finally {
      free();
    }
  });
}
