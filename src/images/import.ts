/**
 * Imports image tarballs without a registry: `docker save` archives and OCI image layouts
 * (optionally gzip-compressed, from a file or stdin). Every member is streamed into containerd's
 * content store under a lease; image records are created only after the images are unpacked, so
 * a corrupt archive leaves nothing behind.
 */

import { createHash, randomBytes } from "node:crypto";
import { collectBytes } from "../bytes.ts";
import type { Content } from "../containerd/content.ts";
import type { Diff } from "../containerd/diff.ts";
import type { Images } from "../containerd/images.ts";
import type { Leases } from "../containerd/leases.ts";
import type { Snapshots } from "../containerd/snapshots.ts";
import type { Descriptor } from "../containerd/types.ts";
import { AlreadyExistsError, InvalidArgumentError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { MediaType } from "./media_types.ts";
import type { Platform } from "./platform.ts";
import { setImageRecord } from "./pull.ts";
import { parseReference } from "./reference.ts";
import { verifyDigest } from "./registry_client.ts";
import { type StoredImage, storeManifestChain } from "./store.ts";
import { readTar } from "./tar_reader.ts";
import { unpackLayers } from "./unpack.ts";

/** The services an import needs. */
export interface ImportDeps {
  content: Content;
  images: Images;
  leases: Leases;
  snapshots: Snapshots;
  diff: Diff;
  log: Logger;
}

/** Where to import to, and how to name the input in messages. */
export interface ImportOptions {
  namespace: string;
  platform: Platform;
  /** The file name (or "stdin"). */
  source?: string;
  signal?: AbortSignal;
}

/** The images an import created. */
export interface ImportResult {
  images: StoredImage[];
}

const METADATA = new Set(["manifest.json", "index.json", "oci-layout", "repositories"]);

/** Imports every image in the archive. */
export async function importArchive(
  deps: ImportDeps,
  input: ReadableStream<Uint8Array>,
  opts: ImportOptions,
): Promise<ImportResult> {
  const { namespace } = opts;
  const source = opts.source ?? "archive";
  return await deps.leases.with(namespace, async (lease) => {
    const files = new Map<string, Descriptor>();
    const metadata = new Map<string, Uint8Array>();
    let n = 0;
    for await (const entry of readTar(input, source)) {
      if (entry.type !== "file") continue;
      if (METADATA.has(entry.name)) {
        metadata.set(
          entry.name,
          await collectBytes(entry.body, {
            limit: 4 << 20,
            what: `${source}: ${entry.name}`,
          }),
        );
        continue;
      }
      if (/(^|\/)(VERSION|json)$/.test(entry.name)) continue; // docker save's legacy layer metadata
      const named = entry.name.match(/^blobs\/(sha256|sha512)\/([a-f0-9]+)$/);
      const expected = named ? `${named[1]}:${named[2]}` : undefined;
      const digest = await storeMember(deps.content, namespace, lease, entry.body, {
        ref: `import-${randomBytes(6).toString("hex")}-${n++}`,
        size: entry.size,
        expected,
        what: `${source}: ${entry.name}`,
      });
      files.set(entry.name, { mediaType: "", digest, size: entry.size });
    }

    const blob = (name: string, what: string): Descriptor => {
      const d = files.get(name);
      if (!d) {
        throw new InvalidArgumentError(`${source} is incomplete: ${what} "${name}" is missing`);
      }
      return d;
    };
    const readBlob = async (desc: Descriptor) => {
      const bytes = await deps.content.readAll(namespace, desc.digest).catch((err) => {
        throw new InvalidArgumentError(`${source} is incomplete: blob ${desc.digest} is missing`, {
          cause: err,
        });
      });
      verifyDigest(bytes, desc, source);
      return bytes;
    };
    const store = (root: Descriptor, what: string) =>
      storeManifestChain({
        content: deps.content,
        namespace,
        lease,
        root,
        platform: opts.platform,
        what,
        labels: {},
        readBlob,
        // Everything was read from the archive already: a layer is there, or it never will be.
        fetchLayers: (layers) =>
          layers.map((l) =>
            [...files.values()].some((f) => f.digest === l.digest)
              ? Promise.resolve()
              : Promise.reject(
                new InvalidArgumentError(`${source} is incomplete: layer ${l.digest} is missing`),
              )
          ),
        unpack: (manifest, config) =>
          unpackLayers(deps, {
            namespace,
            lease,
            config: manifest.config,
            layers: manifest.layers,
            diffIds: config.rootfs.diff_ids,
          }),
      });

    const results: StoredImage[] = [];
    if (metadata.has("oci-layout") && metadata.has("index.json")) {
      const index = parseJson(metadata.get("index.json")!, `${source}: index.json`) as {
        manifests?: Array<Descriptor & { annotations?: Record<string, string> }>;
      };
      for (const [i, m] of (index.manifests ?? []).entries()) {
        const name = imageName(m.annotations ?? {}, `${source}: index.json entry ${i}`);
        const root = { mediaType: m.mediaType, digest: m.digest, size: m.size };
        const stored = await store(root, name);
        await setImageRecord(deps.images, namespace, name, root);
        results.push({ ...stored, name });
      }
    } else if (metadata.has("manifest.json")) {
      const entries = parseJson(
        metadata.get("manifest.json")!,
        `${source}: manifest.json`,
      ) as Array<
        { Config: string; RepoTags?: string[] | null; Layers: string[] }
      >;
      for (const [i, e] of entries.entries()) {
        const tags = e.RepoTags ?? [];
        if (tags.length === 0) {
          throw new InvalidArgumentError(
            `${source}: image ${i + 1} in manifest.json has no RepoTags; tag it before docker save`,
          );
        }
        const config = { ...blob(e.Config, "config"), mediaType: MediaType.dockerConfig };
        const layers: Descriptor[] = [];
        for (const path of e.Layers) {
          const d = blob(path, "layer");
          layers.push({ ...d, mediaType: await layerMediaType(deps.content, namespace, d.digest) });
        }
        const root = await writeJsonBlob(deps.content, namespace, lease, {
          schemaVersion: 2,
          mediaType: MediaType.dockerManifest,
          config,
          layers,
        }, MediaType.dockerManifest);
        const names = tags.map((t) => parseReference(t).name);
        const stored = await store(root, names[0]);
        for (const name of names) {
          await setImageRecord(deps.images, namespace, name, root);
          results.push({ ...stored, name });
        }
      }
    } else {
      throw new InvalidArgumentError(
        `${source} is neither a docker save archive (manifest.json) nor an OCI image layout (oci-layout and index.json)`,
      );
    }
    deps.log.info("imported", { source, images: results.map((r) => r.name) });
    return { images: results };
  }, { signal: opts.signal });
}

function imageName(annotations: Record<string, string>, what: string): string {
  const full = annotations["io.containerd.image.name"];
  if (full) return parseReference(full).name;
  const ref = annotations["org.opencontainers.image.ref.name"];
  if (!ref) {
    throw new InvalidArgumentError(
      `${what} has no image name (annotation io.containerd.image.name or org.opencontainers.image.ref.name)`,
    );
  }
  // A bare tag such as "latest" names no repository; ctr files it under import-<date>.
  const name = /[/:@]/.test(ref) ? ref : `import-${new Date().toISOString().slice(0, 10)}:${ref}`;
  return parseReference(name).name;
}

async function storeMember(
  content: Content,
  namespace: string,
  lease: string,
  body: AsyncIterable<Uint8Array>,
  m: { ref: string; size: number; expected?: string; what: string },
): Promise<string> {
  const hash = createHash("sha256");
  let streamed = false;
  try {
    const digest = await content.write(namespace, {
      ref: m.ref,
      digest: m.expected,
      size: m.size,
      data: async function* () {
        streamed = true;
        for await (const chunk of body) {
          hash.update(chunk);
          yield chunk;
        }
      },
    }, { lease });
    return m.expected ?? digest;
  } catch (err) {
    if (err instanceof AlreadyExistsError) return m.expected ?? `sha256:${hash.digest("hex")}`;
    if (m.expected && !streamed) throw err;
    throw new InvalidArgumentError(`${m.what} could not be stored: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

async function layerMediaType(content: Content, namespace: string, digest: string) {
  for await (const head of content.read(namespace, digest, { size: 2 })) {
    return head[0] === 0x1f && head[1] === 0x8b ? MediaType.dockerLayerGzip : MediaType.dockerLayer;
  }
  return MediaType.dockerLayer;
}

async function writeJsonBlob(
  content: Content,
  namespace: string,
  lease: string,
  doc: unknown,
  mediaType: string,
): Promise<Descriptor> {
  const bytes = new TextEncoder().encode(JSON.stringify(doc));
  const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
  await content.write(namespace, {
    ref: `manifest-${digest}`,
    digest,
    size: bytes.length,
    data: () => [bytes],
  }, { lease });
  return { mediaType, digest, size: bytes.length };
}

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new InvalidArgumentError(`${what} is not valid JSON`, { cause: err });
  }
}
