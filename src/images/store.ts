/**
 * What pull and import share once blobs can be read: walk index → manifest → config, store each
 * with the GC labels containerd's collector follows, have the layers fetched, unpack; and the
 * reverse, reading an image already in containerd.
 */

import type { Content } from "../containerd/content.ts";
import type { Images } from "../containerd/images.ts";
import type { Snapshots } from "../containerd/snapshots.ts";
import type { Descriptor } from "../containerd/types.ts";
import { InvalidArgumentError, NotFoundError } from "../errors.ts";
import {
  type ImageConfig,
  type ImageManifest,
  isIndex,
  parseImageConfig,
  parseManifestDocument,
} from "./media_types.ts";
import { formatPlatform, type Platform, selectManifest } from "./platform.ts";
import { chainIds, isUnpacked } from "./unpack.ts";

/** An image as stored in containerd for one platform. */
export interface StoredImage {
  name: string;
  /** What the image record points at: an index or a manifest. */
  target: Descriptor;
  /** The manifest for the platform. */
  manifest: Descriptor;
  config: Descriptor;
  platform: string;
  layers: Descriptor[];
  /** The top snapshot, the parent of container snapshots. */
  chainId: string;
  /** Compressed size: manifest, config and layers. */
  size: number;
  /** The image config's `config` object (Entrypoint, Cmd, Env, User, …). */
  runConfig: Record<string, unknown>;
}

/** Arguments of {@link storeManifestChain}. */
export interface ChainArgs {
  content: Pick<Content, "info" | "write" | "setLabels">;
  namespace: string;
  lease: string;
  root: Descriptor;
  platform: Platform;
  /** The image as the user named it, for messages. */
  what: string;
  /** Labels for every blob (the distribution source). */
  labels: Record<string, string>;
  /** Returns a manifest, index or config, verified against its descriptor. */
  readBlob(desc: Descriptor): Promise<Uint8Array>;
  /**
   * Starts making sure every layer is in the content store; one promise per layer, so unpacking
   * can begin with the bottom layer while the others still download.
   */
  fetchLayers(layers: Descriptor[]): Promise<void>[];
  /** Unpacks the layers as each becomes ready; returns the top chain ID. */
  unpack(manifest: ImageManifest, config: ImageConfig, ready: Promise<void>[]): Promise<string>;
}

/** Stores the manifest chain under `root` for one platform and unpacks it. */
export async function storeManifestChain(a: ChainArgs): Promise<Omit<StoredImage, "name">> {
  const rootBytes = await a.readBlob(a.root);
  const doc = parseManifestDocument(a.root.mediaType, rootBytes, `${a.what} (${a.root.digest})`);
  let manifestDesc = a.root;
  let manifestBytes = rootBytes;
  if (doc.kind === "index") {
    const entry = selectManifest(a.platform, doc.index.manifests);
    await ensureBlob(a, a.root, rootBytes, {
      ...a.labels,
      ...Object.fromEntries(
        doc.index.manifests.map((m, i) => [`containerd.io/gc.ref.content.m.${i}`, m.digest]),
      ),
    });
    manifestDesc = { mediaType: entry.mediaType, digest: entry.digest, size: entry.size };
    manifestBytes = await a.readBlob(manifestDesc);
  }
  const parsed = parseManifestDocument(
    manifestDesc.mediaType,
    manifestBytes,
    `${a.what} (${manifestDesc.digest})`,
  );
  if (parsed.kind !== "manifest") {
    throw new InvalidArgumentError(`${a.what}: an index entry points at another index`);
  }
  const manifest = parsed.manifest;
  await ensureBlob(a, manifestDesc, manifestBytes, {
    ...a.labels,
    "containerd.io/gc.ref.content.config": manifest.config.digest,
    ...Object.fromEntries(
      manifest.layers.map((l, i) => [`containerd.io/gc.ref.content.l.${i}`, l.digest]),
    ),
  });
  const configBytes = await a.readBlob(manifest.config);
  await ensureBlob(a, manifest.config, configBytes, a.labels);
  const config = parseImageConfig(configBytes, `${a.what} config`);
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new InvalidArgumentError(
      `${a.what}: the config lists ${config.rootfs.diff_ids.length} layers, the manifest ${manifest.layers.length}`,
    );
  }
  const ready = a.fetchLayers(manifest.layers);
  // Errors surface through unpack (which waits per layer) or the Promise.all below.
  for (const p of ready) p.catch(() => {});
  let chainId: string;
  try {
    chainId = await a.unpack(manifest, config, ready);
  } finally {
    await Promise.allSettled(ready);
  }
  await Promise.all(ready);
  return {
    target: a.root,
    manifest: manifestDesc,
    config: manifest.config,
    platform: formatPlatform({
      os: config.os ?? a.platform.os,
      architecture: config.architecture ?? a.platform.architecture,
      ...(config.variant ? { variant: config.variant } : {}),
    }),
    layers: manifest.layers,
    chainId,
    runConfig: config.config ?? {},
    size: manifestDesc.size + manifest.config.size +
      manifest.layers.reduce((n, l) => n + l.size, 0),
  };
}

async function ensureBlob(
  a: Pick<ChainArgs, "content" | "namespace" | "lease">,
  desc: Descriptor,
  bytes: Uint8Array,
  labels: Record<string, string>,
): Promise<void> {
  let existing: Record<string, string> | undefined;
  try {
    existing = (await a.content.info(a.namespace, desc.digest)).labels;
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
  }
  if (!existing) {
    await a.content.write(a.namespace, {
      ref: `${isIndex(desc.mediaType) ? "index" : "blob"}-${desc.digest}`,
      digest: desc.digest,
      size: desc.size,
      labels,
      data: () => [bytes],
    }, { lease: a.lease });
    return;
  }
  const missing = Object.fromEntries(
    Object.entries(labels).filter(([k, v]) => existing[k] !== v),
  );
  if (Object.keys(missing).length > 0) {
    await a.content.setLabels(a.namespace, desc.digest, missing, { lease: a.lease });
  }
}

/** The services reading a stored image needs. */
export interface InspectDeps {
  images: Pick<Images, "get">;
  content: Pick<Content, "readAll">;
  snapshots: Pick<Snapshots, "stat">;
}

/**
 * Reads an image already in containerd: its record, the manifest for `platform`, and whether
 * it is unpacked. NotFoundError when there is no such image or its content is gone.
 */
export async function inspectImage(
  deps: InspectDeps,
  namespace: string,
  name: string,
  platform: Platform,
): Promise<StoredImage & { unpacked: boolean }> {
  const image = await deps.images.get(namespace, name);
  const read = async (desc: Descriptor) => await deps.content.readAll(namespace, desc.digest);
  let manifestDesc = image.target;
  let doc = parseManifestDocument(manifestDesc.mediaType, await read(manifestDesc), name);
  if (doc.kind === "index") {
    const entry = selectManifest(platform, doc.index.manifests);
    manifestDesc = { mediaType: entry.mediaType, digest: entry.digest, size: entry.size };
    doc = parseManifestDocument(manifestDesc.mediaType, await read(manifestDesc), name);
  }
  if (doc.kind !== "manifest") throw new InvalidArgumentError(`${name}: nested index`);
  const config = parseImageConfig(await read(doc.manifest.config), `${name} config`);
  const diffIds = config.rootfs.diff_ids;
  return {
    name,
    target: image.target,
    manifest: manifestDesc,
    config: doc.manifest.config,
    platform: formatPlatform({
      os: config.os ?? platform.os,
      architecture: config.architecture ?? platform.architecture,
      ...(config.variant ? { variant: config.variant } : {}),
    }),
    layers: doc.manifest.layers,
    chainId: chainIds(diffIds).at(-1) ?? "",
    runConfig: config.config ?? {},
    size: manifestDesc.size + doc.manifest.config.size +
      doc.manifest.layers.reduce((n, l) => n + l.size, 0),
    unpacked: await isUnpacked(deps.snapshots, namespace, diffIds),
  };
}
