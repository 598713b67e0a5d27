/**
 * Named network namespaces, as `ip netns` keeps them: a bind-mounted nsfs file per name under
 * /var/run/netns. Each replica gets its own, named `<prefix><containerId>`.
 */

import { stat } from "node:fs/promises";
import { AlreadyExistsError, InvalidArgumentError } from "../errors.ts";
import { commandFailed, type Exec, run } from "./exec.ts";

/** The directory `ip netns` keeps named namespaces in. */
export const NETNS_DIR = "/var/run/netns";

// A file name under NETNS_DIR; the leading letter or digit keeps `ip` from reading it as a flag.
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$/;

/** Throws an InvalidArgumentError unless `name` is usable as a netns name. */
export function validateNetnsName(name: string): void {
  if (!NAME.test(name)) {
    throw new InvalidArgumentError(
      `Invalid netns name "${name}": use letters, digits, "_", "." or "-", starting with a letter or digit`,
    );
  }
}

/** The path of a named netns, which is what CNI_NETNS and the OCI spec's namespace path take. */
export function netnsPath(name: string): string {
  validateNetnsName(name);
  return `${NETNS_DIR}/${name}`;
}

/**
 * Creates the named netns (`ip netns add`) and returns its path. An existing one is an
 * AlreadyExistsError rather than reused: it may still hold a previous replica's interfaces.
 */
export async function createNetns(deps: { exec: Exec }, name: string): Promise<string> {
  const path = netnsPath(name);
  const r = await deps.exec("ip", ["netns", "add", name]);
  if (r.code !== 0) {
    if (/File exists/i.test(r.stderr)) {
      throw new AlreadyExistsError(`Cannot create netns "${name}": it already exists`);
    }
    throw commandFailed(`Cannot create netns "${name}"`, r);
  }
  return path;
}

/**
 * Whether the named netns exists: its file is a mount (nsfs, on another device than the
 * directory), not a file left without its mount. No process is run.
 */
export async function netnsMounted(name: string): Promise<boolean> {
  try {
    const [file, dir] = await Promise.all([stat(netnsPath(name)), stat(NETNS_DIR)]);
    return file.dev !== dir.dev;
  } catch {
    return false;
  }
}

/** Deletes the named netns (`ip netns delete`); reports false when it did not exist. */
export async function deleteNetns(deps: { exec: Exec }, name: string): Promise<boolean> {
  validateNetnsName(name);
  const r = await deps.exec("ip", ["netns", "delete", name]);
  if (r.code === 0) return true;
  if (/No such file or directory/i.test(r.stderr)) return false;
  throw commandFailed(`Cannot delete netns "${name}"`, r);
}

/** The names of all named netns (`ip netns list`), sorted. */
export async function listNetns(deps: { exec: Exec }): Promise<string[]> {
  const out = await run(deps.exec, "Cannot list netns", "ip", ["netns", "list"]);
  return parseNetnsList(out);
}

/** Parses `ip netns list` output, whose lines look like `name` or `name (id: 3)`. */
export function parseNetnsList(out: string): string[] {
  return out.split("\n").map((l) => l.trim().split(/\s+/)[0]).filter((n) => n !== "").sort();
}

/**
 * Deletes every netns named `<prefix><containerId>` whose container is not in `live` (left by a
 * crash, or by a replica whose cleanup failed) and returns the names it deleted.
 */
export async function pruneNetns(
  deps: { exec: Exec },
  prefix: string,
  live: ReadonlySet<string>,
): Promise<string[]> {
  if (prefix === "") throw new InvalidArgumentError("Cannot prune netns: empty name prefix");
  validateNetnsName(prefix);
  const pruned: string[] = [];
  for (const name of await listNetns(deps)) {
    if (!name.startsWith(prefix) || name === prefix) continue;
    if (live.has(name.slice(prefix.length))) continue;
    if (await deleteNetns(deps, name)) pruned.push(name);
  }
  return pruned;
}

/**
 * Brings `lo` up in the named netns (`ip -n NAME link set lo up`), as runc's own netns has it, so
 * no loopback plugin run is needed.
 */
export async function loopbackUp(deps: { exec: Exec }, name: string): Promise<void> {
  validateNetnsName(name);
  const r = await deps.exec("ip", ["-n", name, "link", "set", "lo", "up"]);
  if (r.code !== 0) throw commandFailed(`Cannot bring lo up in netns "${name}"`, r);
}
