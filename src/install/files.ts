/**
 * File writes that make `faasd install` idempotent: each reports whether it created, changed or
 * left a file alone, and a changed file is replaced by a rename so no reader sees half of it.
 */

import { chmod, lstat, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import process from "node:process";
import { Buffer } from "node:buffer";
import { dirname } from "node:path";

/** What a write did. */
export type Change = "created" | "updated" | "unchanged";

/** Writes `content` to `path` with `mode` unless it already holds exactly that. */
export async function writeIfChanged(
  path: string,
  content: string | Uint8Array,
  mode: number,
): Promise<Change> {
  const bytes = typeof content === "string" ? new TextEncoder().encode(content) : content;
  const old = await readFile(path).catch((err) => {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  });
  if (old && Buffer.compare(old, bytes) === 0) {
    if (((await stat(path)).mode & 0o7777) === mode) return "unchanged";
    await chmod(path, mode);
    return "updated";
  }
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await replaceFile(path, bytes, mode);
  return old ? "updated" : "created";
}

/**
 * Replaces `path` through a temporary file in the same directory and a rename, so a running
 * binary is never written in place (which fails with ETXTBSY) and readers see old or new.
 */
export async function replaceFile(path: string, bytes: Uint8Array, mode: number): Promise<void> {
  const tmp = `${path}.faasd-new-${process.pid}`;
  try {
    await writeFile(tmp, bytes, { mode });
    await chmod(tmp, mode);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Removes a file or directory tree; true when something was there. */
export async function removePath(path: string): Promise<boolean> {
  const there = await lstat(path).then(() => true, () => false);
  if (there) await rm(path, { recursive: true, force: true });
  return there;
}
