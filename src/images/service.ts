/**
 * The image service: pull, import, list, remove and prune, wired from the containerd client and
 * the data dir's registry settings (`.docker/config.json`, `registries.yaml`). The CLI and the
 * provider both use it.
 */

import { readFile } from "node:fs/promises";
import type { Containerd } from "../containerd/client.ts";
import { InvalidArgumentError, NotFoundError, NotImplementedError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { fetchTrusting } from "../platform/fetch.ts";
import { credentialsFor, dockerConfigPath, readDockerConfig } from "./docker_config.ts";
import { importArchive, type ImportOptions, type ImportResult } from "./import.ts";
import { formatPlatform, hostPlatform, type Platform } from "./platform.ts";
import { pullImage, type PullProgress, type PullResult } from "./pull.ts";
import { parseReference } from "./reference.ts";
import { endpointsFor, hostConfigFor, loadRegistriesConfig } from "./registries_config.ts";
import { RegistryClient } from "./registry_client.ts";
import { inspectImage, type StoredImage } from "./store.ts";
import {
  type ListedImage,
  listImages,
  pruneImages,
  type PruneResult,
  removeImage,
} from "./manage.ts";

/** The function label that sets the pull policy (a deploy option may set it too). */
export const PULL_POLICY_LABEL = "com.openfaas.pull-policy";

/** When to contact the registry before using an image. */
export type PullPolicy = "Always" | "IfNotPresent" | "Never";

/** Parses a pull policy as written in a deploy request or label (case-insensitive). */
export function parsePullPolicy(s: string | undefined): PullPolicy {
  if (s === undefined || s === "") return "IfNotPresent";
  const found = (["Always", "IfNotPresent", "Never"] as const).find((p) =>
    p.toLowerCase() === s.toLowerCase()
  );
  if (!found) {
    throw new InvalidArgumentError(`invalid pull policy "${s}": use Always, IfNotPresent or Never`);
  }
  return found;
}

/** Builds the image service for one data dir. Settings files are read per operation. */
export function createImageService(deps: {
  containerd: Containerd;
  dataDir: string;
  log: Logger;
  /** How long a registry may take to answer (default 30 s). */
  registryTimeoutMs?: number;
}) {
  const { containerd, dataDir } = deps;
  const log = deps.log.child({ component: "images" });

  const registryClient = async () => {
    const [docker, registries] = await Promise.all([
      readDockerConfig(dataDir),
      loadRegistriesConfig(dataDir),
    ]);
    const caCache = new Map<string, typeof fetch>();
    for (const [host, cfg] of Object.entries(registries.configs)) {
      if (cfg.tls?.insecureSkipVerify) {
        throw new NotImplementedError(
          `registries.yaml: insecure_skip_verify for "${host}" is not supported; give the registry's CA with ca_file instead`,
        );
      }
      if (cfg.tls?.caFile) caCache.set(host, fetchTrusting(await readFile(cfg.tls.caFile, "utf8")));
    }
    const client = new RegistryClient({
      log,
      timeoutMs: deps.registryTimeoutMs,
      credentials: {
        lookup: (host) => credentialsFor(docker, host) ?? hostConfigFor(registries, host)?.auth,
        describe: () => dockerConfigPath(dataDir),
      },
      fetchFor: (host) => caCache.get(host) ?? caCache.get("*") ?? fetch,
    });
    return { client, endpoints: (domain: string) => endpointsFor(registries, domain) };
  };

  // What inspectImage last found for an unpacked image, by namespace, name and platform. It is
  // used while the record still has the same target digest (what a digest names never changes)
  // and the top snapshot is still there, both checked at once: that saves reading and parsing
  // the manifest and config blobs (a few milliseconds) on every deploy and scale-up.
  const inspected = new Map<string, StoredImage>();
  const INSPECTED_MAX = 256;
  const inspectedKey = (namespace: string, name: string, platform: Platform) =>
    [namespace, name, formatPlatform(platform)].join("\n");

  // The remembered image, if the record still names the same digest and its top snapshot is
  // there (one round trip for both); forgotten otherwise. Reads only.
  const knownImage = async (
    namespace: string,
    name: string,
    platform: Platform,
  ): Promise<StoredImage | undefined> => {
    const key = inspectedKey(namespace, name, platform);
    const known = inspected.get(key);
    if (!known) return undefined;
    const [record, snapshot] = await Promise.allSettled([
      containerd.images.get(namespace, name),
      known.chainId ? containerd.snapshots.stat(namespace, known.chainId) : undefined,
    ]);
    if (
      record.status === "fulfilled" && snapshot.status === "fulfilled" &&
      record.value.target.digest === known.target.digest
    ) {
      return known;
    }
    inspected.delete(key);
    return undefined;
  };

  const pullDeps = async () => {
    const { client, endpoints } = await registryClient();
    return { ...containerdParts(containerd), registry: client, endpoints, log };
  };

  return {
    /** Pulls an image from its registry (or a mirror). */
    async pull(
      ref: string,
      opts: {
        namespace: string;
        platform?: Platform;
        progress?: PullProgress;
        signal?: AbortSignal;
      },
    ): Promise<PullResult> {
      return await pullImage(await pullDeps(), { ref, ...opts });
    },

    /**
     * The image as ensure() last found it present and unpacked in the namespace, if that still
     * holds; undefined otherwise. Only reads (never pulls): safe to run before the namespace is
     * known to be usable.
     */
    async known(
      ref: string,
      opts: { namespace: string; platform?: Platform },
    ): Promise<(StoredImage & { pulled: boolean }) | undefined> {
      const image = await knownImage(
        opts.namespace,
        parseReference(ref).name,
        opts.platform ?? hostPlatform(),
      );
      return image && { ...image, pulled: false };
    },

    /**
     * Makes sure the image is present and unpacked, contacting the registry as the policy says:
     * Always pulls, IfNotPresent pulls only when missing, Never only checks.
     */
    async ensure(
      ref: string,
      opts: { namespace: string; policy: PullPolicy; platform?: Platform; signal?: AbortSignal },
    ): Promise<StoredImage & { pulled: boolean }> {
      const name = parseReference(ref).name;
      const platform = opts.platform ?? hostPlatform();
      if (opts.policy !== "Always") {
        try {
          const known = await knownImage(opts.namespace, name, platform);
          if (known) return { ...known, pulled: false };
          const local = await inspectImage(containerd, opts.namespace, name, platform);
          if (local.unpacked) {
            if (inspected.size >= INSPECTED_MAX) inspected.delete(inspected.keys().next().value!);
            const { unpacked: _, ...image } = local;
            inspected.set(inspectedKey(opts.namespace, name, platform), image);
            return { ...local, pulled: false };
          }
        } catch (err) {
          if (!(err instanceof NotFoundError)) throw err;
        }
        if (opts.policy === "Never") {
          throw new NotFoundError(
            `image ${ref} is not present in namespace "${opts.namespace}" and the pull policy is Never`,
          );
        }
      }
      const pulled = await pullImage(await pullDeps(), { ref, ...opts, platform });
      return { ...pulled, pulled: true };
    },

    /** Imports a `docker save` or OCI-layout tarball (optionally gzip-compressed). */
    async import(
      input: ReadableStream<Uint8Array>,
      opts: Omit<ImportOptions, "platform"> & { platform?: Platform },
    ): Promise<ImportResult> {
      return await importArchive(
        { ...containerdParts(containerd), log },
        input,
        { ...opts, platform: opts.platform ?? hostPlatform() },
      );
    },

    /** Lists the namespace's images for the host platform. */
    list(namespace: string): Promise<ListedImage[]> {
      return listImages(containerd, namespace, hostPlatform());
    },

    /** Removes an image record; its content goes with the next GC unless shared. */
    remove(ref: string, namespace: string): Promise<string> {
      return removeImage(containerd, namespace, ref);
    },

    /** Removes every image no container uses and reports the bytes freed. */
    prune(namespace: string): Promise<PruneResult> {
      return pruneImages(containerd, namespace);
    },
  };
}

/** The image service's surface. */
export type ImageService = ReturnType<typeof createImageService>;

function containerdParts(c: Containerd) {
  return {
    content: c.content,
    images: c.images,
    leases: c.leases,
    snapshots: c.snapshots,
    diff: c.diff,
    containers: c.containers,
  };
}
