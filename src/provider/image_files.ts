/**
 * Reads small files (/etc/passwd, /etc/group) from an unpacked image without mounting it: a
 * read-only view of the image's top snapshot is an overlay whose lower directories are plain host
 * directories, searched here top layer first (whiteouts respected).
 */

import { randomUUID } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Leases } from "../containerd/leases.ts";
import type { Snapshots } from "../containerd/snapshots.ts";
import type { Mount } from "../containerd/types.ts";

/** The layer directories of a view's mounts, top first. */
export function layerDirs(mounts: Mount[]): string[] {
  const [m] = mounts;
  if (!m) return [];
  if (m.type === "bind") return [m.source];
  const lower = m.options.find((o) => o.startsWith("lowerdir="));
  return lower ? lower.slice("lowerdir=".length).split(":") : [];
}

/** Reads `paths` from the image whose top snapshot is `chainId`; missing files are undefined. */
export async function readImageFiles(
  deps: { snapshots: Pick<Snapshots, "view" | "remove">; leases: Pick<Leases, "with"> },
  namespace: string,
  chainId: string,
  paths: string[],
): Promise<Record<string, string | undefined>> {
  return await deps.leases.with(namespace, async (lease) => {
    const key = `files-${randomUUID()}`;
    const mounts = await deps.snapshots.view(namespace, key, chainId, {}, { lease });
    try {
      const dirs = layerDirs(mounts);
      const out: Record<string, string | undefined> = {};
      for (const p of paths) out[p] = await findInLayers(dirs, p);
      return out;
    } finally {
      await deps.snapshots.remove(namespace, key).catch(() => {});
    }
  });
}

async function findInLayers(dirs: string[], path: string): Promise<string | undefined> {
  const rel = path.replace(/^\/+/, "");
  const parts = rel.split("/");
  const whiteout = join(...parts.slice(0, -1), `.wh.${parts.at(-1)}`);
  for (const dir of dirs) {
    const text = await readFile(join(dir, rel), "utf8").catch(() => undefined);
    if (text !== undefined) return text;
    // A whiteout in a higher layer deletes the file of the layers below.
    if (await stat(join(dir, whiteout)).then(() => true, () => false)) return undefined;
  }
  return undefined;
}

/**
 * The user database a container needs when its USER is a name (OpenFaaS templates use "app"):
 * the image's /etc/passwd and /etc/group; nothing for a numeric or empty user.
 */
export async function userDatabase(
  deps: { snapshots: Pick<Snapshots, "view" | "remove">; leases: Pick<Leases, "with"> },
  namespace: string,
  chainId: string,
  user: string,
): Promise<{ etcPasswd?: string; etcGroup?: string }> {
  if (!user || /^\d+(:\d+)?$/.test(user)) return {};
  const files = await readImageFiles(deps, namespace, chainId, ["/etc/passwd", "/etc/group"]);
  return { etcPasswd: files["/etc/passwd"], etcGroup: files["/etc/group"] };
}
