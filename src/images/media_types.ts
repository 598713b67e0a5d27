/** OCI and Docker media types, and the manifest shapes the pull and import code reads. */

import { InvalidArgumentError } from "../errors.ts";
import type { Descriptor } from "../containerd/types.ts";
import type { Platform } from "./platform.ts";

export const MediaType = Object.freeze({
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayer: "application/vnd.oci.image.layer.v1.tar",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerZstd: "application/vnd.oci.image.layer.v1.tar+zstd",
  dockerList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayer: "application/vnd.docker.image.rootfs.diff.tar",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
  dockerSchema1: "application/vnd.docker.distribution.manifest.v1+prettyjws",
});

/** What registries are asked for when resolving a tag. */
export const MANIFEST_ACCEPT = [
  MediaType.dockerManifest,
  MediaType.dockerList,
  MediaType.ociManifest,
  MediaType.ociIndex,
  "*/*",
].join(", ");

/** containerd refuses manifests larger than this; so do we. */
export const MAX_MANIFEST_BYTES = 4 * 1048 * 1048;

/** Whether a media type is an index (OCI index or Docker manifest list). */
export function isIndex(mediaType: string): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerList;
}

/** Whether a media type is a single-platform manifest. */
export function isManifest(mediaType: string): boolean {
  return mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest;
}

/** Whether a media type is a layer containerd's diff service can apply. */
export function isLayer(mediaType: string): boolean {
  return mediaType.startsWith("application/vnd.oci.image.layer.") ||
    mediaType.startsWith("application/vnd.docker.image.rootfs.");
}

/** An entry of an index: a manifest and the platform it is for. */
export interface IndexEntry extends Descriptor {
  platform?: Platform;
}

/** An image index / manifest list. */
export interface ImageIndex {
  mediaType: string;
  manifests: IndexEntry[];
}

/** A single-platform image manifest. */
export interface ImageManifest {
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}

/** The parts of an image config the appliance reads. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  rootfs: { type: string; diff_ids: string[] };
  config?: Record<string, unknown>;
}

/**
 * Parses manifest or index JSON of the given media type (a Docker v2 manifest may omit its
 * media type in the body). Schema 1 and anything unknown are refused by name.
 */
export function parseManifestDocument(
  mediaType: string,
  bytes: Uint8Array,
  what: string,
): { kind: "index"; index: ImageIndex } | { kind: "manifest"; manifest: ImageManifest } {
  if (mediaType === MediaType.dockerSchema1) {
    throw new InvalidArgumentError(
      `${what} is a Docker schema 1 manifest, which is no longer supported: push it again with a current client`,
    );
  }
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new InvalidArgumentError(`${what} is not valid JSON`, { cause: err });
  }
  const type = mediaType || String(doc.mediaType ?? "");
  if (isIndex(type) || (!type && Array.isArray(doc.manifests))) {
    const manifests = (doc.manifests as Array<Record<string, unknown>> | undefined) ?? [];
    return {
      kind: "index",
      index: { mediaType: type || MediaType.ociIndex, manifests: manifests.map(toEntry) },
    };
  }
  if (isManifest(type) || (!type && doc.config)) {
    const config = doc.config as Record<string, unknown> | undefined;
    const layers = (doc.layers as Array<Record<string, unknown>> | undefined) ?? [];
    if (!config) throw new InvalidArgumentError(`${what} has no config descriptor`);
    return {
      kind: "manifest",
      manifest: {
        mediaType: type || MediaType.ociManifest,
        config: toDescriptor(config),
        layers: layers.map(toDescriptor),
      },
    };
  }
  throw new InvalidArgumentError(`${what} has unsupported media type "${mediaType}"`);
}

/** Parses an image config blob. */
export function parseImageConfig(bytes: Uint8Array, what: string): ImageConfig {
  let doc: ImageConfig;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new InvalidArgumentError(`${what} is not valid JSON`, { cause: err });
  }
  if (!doc.rootfs || !Array.isArray(doc.rootfs.diff_ids)) {
    throw new InvalidArgumentError(`${what} has no rootfs.diff_ids`);
  }
  return doc;
}

function toDescriptor(d: Record<string, unknown>): Descriptor {
  const out: Descriptor = {
    mediaType: String(d.mediaType ?? ""),
    digest: String(d.digest ?? ""),
    size: Number(d.size ?? 0),
  };
  if (!/^sha(256|512):[a-f0-9]+$/.test(out.digest)) {
    throw new InvalidArgumentError(`descriptor has an invalid digest "${out.digest}"`);
  }
  if (d.annotations && typeof d.annotations === "object") {
    out.annotations = d.annotations as Record<string, string>;
  }
  return out;
}

function toEntry(d: Record<string, unknown>): IndexEntry {
  const entry: IndexEntry = toDescriptor(d);
  const p = d.platform as Record<string, unknown> | undefined;
  if (p) {
    entry.platform = {
      os: String(p.os ?? ""),
      architecture: String(p.architecture ?? ""),
      ...(p.variant ? { variant: String(p.variant) } : {}),
    };
  }
  return entry;
}
