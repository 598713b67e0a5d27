/**
 * host-local's lease files and their garbage collection. host-local (plugins 1.1.1) keeps one file
 * per allocated address under `<dataDir>/<network name>/<ip>`, holding `<containerId>\r\n<ifName>`
 * (older versions wrote the container ID alone), next to `lock` and `last_reserved_ip.<range>`.
 * A crash or reboot skips DEL, so those files outlive their replicas unless released here.
 */

import { readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError } from "../errors.ts";
import { listCache, removeCache } from "./cache.ts";
import { parseIpv4 } from "./conflist.ts";

/** One address host-local has handed out. */
export interface Lease {
  ip: string;
  containerId: string;
  /** The interface the address was given to; absent in files from older plugins. */
  ifName?: string;
  path: string;
}

/** Parses a lease file's content into the owning container ID and interface name. */
export function parseLeaseFile(content: string): { containerId: string; ifName?: string } {
  const [id, ifName] = content.split(/\r?\n/);
  const containerId = id.trim();
  const name = ifName?.trim();
  return name ? { containerId, ifName: name } : { containerId };
}

/** Reports whether a file name in host-local's directory is a lease (an IPv4 or IPv6 address). */
export function isLeaseFileName(name: string): boolean {
  return parseIpv4(name) !== undefined || (name.includes(":") && /^[0-9a-fA-F:.]+$/.test(name));
}

/** The leases host-local holds for `networkName` under `ipamDir`, sorted by path. */
export async function listLeases(ipamDir: string, networkName: string): Promise<Lease[]> {
  const dir = networkDir(ipamDir, networkName);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const leases: Lease[] = [];
  for (const ip of names.filter(isLeaseFileName).sort()) {
    const path = join(dir, ip);
    try {
      leases.push({ ip, path, ...parseLeaseFile(await readFile(path, "utf8")) });
    } catch (err) {
      // Released by a concurrent DEL between readdir and readFile.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  return leases;
}

/** What {@link releaseStaleLeases} needs. */
export interface ReleaseOptions {
  ipamDir: string;
  networkName: string;
  /** Container IDs whose leases and cache entries stay. */
  live: ReadonlySet<string>;
  /** When given, cache entries of containers not in `live` are removed too. */
  cacheDir?: string;
  /**
   * Only leases written before this time are released; a replica being attached while the live
   * set was computed is therefore safe. Defaults to the time of the call.
   */
  before?: Date;
}

/** What {@link releaseStaleLeases} removed. */
export interface Released {
  leases: Lease[];
  /** Container IDs whose cache entries were removed. */
  cache: string[];
}

/**
 * Removes the lease files (and, with `cacheDir`, the cache entries) of containers that are not
 * live, and returns them. It does not run the plugins: run DEL for cached attachments first so
 * their iptables rules go too.
 */
export async function releaseStaleLeases(opts: ReleaseOptions): Promise<Released> {
  const before = (opts.before ?? new Date()).getTime();
  const released: Released = { leases: [], cache: [] };
  for (const lease of await listLeases(opts.ipamDir, opts.networkName)) {
    if (opts.live.has(lease.containerId)) continue;
    try {
      if ((await stat(lease.path)).mtimeMs >= before) continue;
      await rm(lease.path);
      released.leases.push(lease);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }
  if (opts.cacheDir !== undefined) {
    for (const id of await listCache(opts.cacheDir)) {
      if (opts.live.has(id)) continue;
      await removeCache(opts.cacheDir, id);
      released.cache.push(id);
    }
  }
  return released;
}

function networkDir(ipamDir: string, networkName: string): string {
  if (!/^[a-zA-Z0-9_.-]+$/.test(networkName) || networkName === "." || networkName === "..") {
    throw new InvalidArgumentError(`Invalid CNI network name "${networkName}"`);
  }
  return join(ipamDir, networkName);
}
