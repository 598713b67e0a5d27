/**
 * The kernel's cgroup `favordynmods` mode, turned on for container starts.
 *
 * Moving a process into a cgroup (what the OCI runtime does for every new container, writing its
 * PID to `cgroup.procs`) takes a global lock whose writer, by default, waits for an RCU grace
 * period: 4–15 ms per container on this machine class, a third of a deploy. With `favordynmods`
 * (Linux 6.0 and later, a mount option of the cgroup2 hierarchy that applies to every
 * hierarchy) the lock's readers take a slightly slower path instead: forks and exits cost a
 * little more, moves into cgroups no longer wait. Container hosts are what the option is for.
 *
 * The option is set by remounting the cgroup2 hierarchy (`/sys/fs/cgroup` on a v2 host,
 * `/sys/fs/cgroup/unified` on a hybrid one) with its other options and flags repeated: a cgroup2
 * remount resets every option it is not given (nsdelegate, memory_recursiveprot, …). It lasts until the
 * next reboot; the appliance sets it again at each start. A host without a cgroup2 hierarchy, an
 * older kernel or a container without the right to remount keeps the default, and is told.
 */

import { readFile } from "node:fs/promises";

/** A cgroup2 mount, from /proc/self/mountinfo. */
export interface Cgroup2Mount {
  mountPoint: string;
  /** The mount point's own flags (e.g. rw, nosuid, nodev, noexec, relatime). */
  flags: string[];
  /** The superblock's options without rw/ro (e.g. nsdelegate, memory_recursiveprot). */
  options: string[];
}

/** What {@link favorDynmods} found or did. */
export type FavorDynmods =
  | { state: "on" | "already on"; mountPoint: string }
  | { state: "unavailable"; reason: string };

/** What the tuning needs from the host. */
export interface TuningHost {
  /** /proc/self/mountinfo's text. */
  mountinfo(): Promise<string>;
  /** Remounts `mountPoint` (cgroup2) with `options`; rejects with the error mount printed. */
  remount(mountPoint: string, options: string[]): Promise<void>;
}

/** The option's name in the mount table and on `mount -o`. */
export const FAVOR_DYNMODS = "favordynmods";

/**
 * The cgroup2 hierarchy the host's cgroups live under: `/sys/fs/cgroup` (v2) before
 * `/sys/fs/cgroup/unified` (hybrid) before any other cgroup2 mount.
 */
export function cgroup2Mount(mountinfo: string): Cgroup2Mount | undefined {
  const mounts: Cgroup2Mount[] = [];
  for (const line of mountinfo.split("\n")) {
    // <id> <parent> <maj:min> <root> <mount point> <options> [optional fields…] - <type> <source> <super options>
    const [left, right] = line.split(" - ");
    if (!right) continue;
    const [fsType, , superOptions = ""] = right.split(" ");
    if (fsType !== "cgroup2") continue;
    const fields = left.split(" ");
    const mountPoint = unescapeMountinfo(fields[4] ?? "");
    const flags = (fields[5] ?? "").split(",").filter(Boolean);
    const options = superOptions.split(",").filter((o) => o && o !== "rw" && o !== "ro");
    mounts.push({ mountPoint, flags, options });
  }
  const rank = (m: Cgroup2Mount) =>
    m.mountPoint === "/sys/fs/cgroup" ? 0 : m.mountPoint === "/sys/fs/cgroup/unified" ? 1 : 2;
  return mounts.sort((a, b) => rank(a) - rank(b))[0];
}

/** Turns favordynmods on (unless it is); never throws: a host that cannot is told why. */
export async function favorDynmods(host: TuningHost): Promise<FavorDynmods> {
  let mount: Cgroup2Mount | undefined;
  try {
    mount = cgroup2Mount(await host.mountinfo());
  } catch (err) {
    return { state: "unavailable", reason: `cannot read the mount table: ${errorText(err)}` };
  }
  if (!mount) return { state: "unavailable", reason: "the host has no cgroup2 hierarchy" };
  if (mount.options.includes(FAVOR_DYNMODS)) {
    return { state: "already on", mountPoint: mount.mountPoint };
  }
  try {
    // The mount point's flags too: a remount without them would clear nosuid, nodev, noexec
    // (util-linux's mount adds them itself; others may not).
    await host.remount(mount.mountPoint, [...mount.flags, ...mount.options, FAVOR_DYNMODS]);
  } catch (err) {
    return {
      state: "unavailable",
      reason: `remounting ${mount.mountPoint} with ${FAVOR_DYNMODS} failed (Linux 6.0 or later ` +
        `and the right to remount are needed): ${errorText(err)}`,
    };
  }
  // A kernel that ignored the option would not list it.
  const after = cgroup2Mount(await host.mountinfo().catch(() => ""));
  if (!after?.options.includes(FAVOR_DYNMODS)) {
    return {
      state: "unavailable",
      reason: `${mount.mountPoint} was remounted but does not list ${FAVOR_DYNMODS}`,
    };
  }
  return { state: "on", mountPoint: mount.mountPoint };
}

/** The host's mount table and `mount -o remount,…`, run through `exec`. */
export function hostTuning(
  exec: (file: string, args: string[]) => Promise<{ code: number; stderr: string }>,
): TuningHost {
  return {
    mountinfo: () => readFile("/proc/self/mountinfo", "utf8"),
    remount: async (mountPoint, options) => {
      const r = await exec("mount", ["-o", ["remount", ...options].join(","), mountPoint]);
      if (r.code !== 0) throw new Error(r.stderr.trim() || `mount exited with code ${r.code}`);
    },
  };
}

/** Mount points escape space, tab, newline and backslash as octal (`\040`). */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct) => String.fromCharCode(parseInt(oct, 8)));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
