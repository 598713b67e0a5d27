/**
 * The services' entries in the hosts file every function replica mounts, so a function reaches a
 * service by its name.
 */

import { open } from "node:fs/promises";

/** The hosts file text: the provider's base entries, then `<ip>\t<name>` per running service. */
export function renderHosts(base: string, services: Map<string, string>): string {
  const lines = [...services].sort(([a], [b]) => a.localeCompare(b))
    .map(([name, ip]) => `${ip}\t${name}\n`);
  return base + (base.endsWith("\n") || base === "" ? "" : "\n") + lines.join("");
}

/**
 * Rewrites the file in place. Replicas bind-mount it, and a bind mount pins the inode: a new file
 * renamed over it would stay invisible to every running replica. So the whole text goes in one
 * write at offset 0 and only then is the file cut to its length — a reader never sees it empty,
 * and at worst (mid-write) the old text with part of the new one.
 */
export async function writeHostsInPlace(path: string, text: string): Promise<void> {
  const fh = await open(path, "r+");
  try {
    const bytes = new TextEncoder().encode(text);
    await fh.write(bytes, 0, bytes.length, 0);
    await fh.truncate(bytes.length);
  } finally {
    await fh.close();
  }
}
