/**
 * The ADD result cache: `<cacheDir>/<containerId>.json` keeps the conflist and the final result of
 * each attachment, so DEL can hand plugins their `prevResult` after an appliance restart (the
 * firewall plugin removes nothing without it). libcni keeps the same kind of cache.
 */

import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import { FailedPreconditionError, InvalidArgumentError } from "../errors.ts";
import type { Conflist } from "./conflist.ts";

/** A CNI result (SPEC §5); only the fields we read are typed. */
export interface CniResult {
  cniVersion?: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { interface?: number; address: string; gateway?: string }[];
  routes?: { dst: string; gw?: string }[];
  dns?: Record<string, unknown>;
  [key: string]: unknown;
}

/** What is cached for one attachment. */
export interface CacheEntry {
  containerId: string;
  /** The netns path the attachment was made in. */
  netns: string;
  ifName: string;
  /** The conflist used for ADD; DEL uses it too, even when the configured one changed since. */
  config: Conflist;
  result: CniResult;
}

// CNI_CONTAINERID: "must be non-empty and alphanumeric plus _ . -" (SPEC §2); it also names the
// cache file, so the rule keeps paths inside cacheDir.
const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Throws an InvalidArgumentError unless `id` is a valid CNI container ID. */
export function validateContainerId(id: string): void {
  if (!CONTAINER_ID.test(id) || id.length > 255) {
    throw new InvalidArgumentError(
      `Invalid CNI container ID "${id}": use letters, digits, "_", "." or "-", starting with a letter or digit`,
    );
  }
}

/** The cache file of `containerId`. */
export function cachePath(cacheDir: string, containerId: string): string {
  validateContainerId(containerId);
  return join(cacheDir, `${containerId}.json`);
}

/** Reads the cached attachment of `containerId`, or undefined when there is none. */
export async function readCache(
  cacheDir: string,
  containerId: string,
): Promise<CacheEntry | undefined> {
  const path = cachePath(cacheDir, containerId);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    const entry = JSON.parse(text) as CacheEntry;
    if (!entry?.config?.plugins || !entry.result) throw new Error("missing config or result");
    return entry;
  } catch (err) {
    throw new FailedPreconditionError(
      `Cannot read the CNI cache entry ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Writes the attachment atomically (temporary file, then rename). */
export async function writeCache(cacheDir: string, entry: CacheEntry): Promise<void> {
  const path = cachePath(cacheDir, entry.containerId);
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(entry), { mode: 0o600 });
  await rename(tmp, path);
}

/** Removes the cache entry of `containerId`; a missing one is fine. */
export async function removeCache(cacheDir: string, containerId: string): Promise<void> {
  await rm(cachePath(cacheDir, containerId), { force: true });
}

/** The container IDs that have a cache entry. */
export async function listCache(cacheDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(cacheDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return names
    .filter((n) => n.endsWith(".json"))
    .map((n) => n.slice(0, -".json".length))
    .filter((id) => CONTAINER_ID.test(id))
    .sort();
}
