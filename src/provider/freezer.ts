/**
 * Freezing and thawing an idle replica through its cgroup's freezer, by the appliance itself.
 *
 * containerd's Tasks.Pause and Tasks.Resume reach the same kernel freezer, but through the shim
 * and a run of the OCI runtime binary: 5–10 ms per call here, which was the whole budget of a
 * scale from zero. Writing the freezer file takes microseconds. containerd is not told: it
 * reports a frozen replica's task as RUNNING (its shim keeps the state it last set), so the
 * appliance reads the freezer file itself when it re-adopts replicas after a restart.
 *
 * cgroup v1 (`<root>/freezer/<path>/freezer.state`: FROZEN, FREEZING, THAWED) and v2
 * (`<root>/<path>/cgroup.freeze`: 1 or 0, with `frozen 1` in cgroup.events once done) are both
 * handled. A replica whose freezer file is missing (another cgroup layout, e.g. the systemd
 * driver) is paused and resumed through containerd instead.
 */

import { readFile, stat, writeFile } from "node:fs/promises";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { UnavailableError } from "../errors.ts";

/** Where a replica's cgroup is, and how to pause it through containerd when the file is not. */
export interface FreezerTarget {
  namespace: string;
  id: string;
  /** The spec's `linux.cgroupsPath` (`/<namespace>/<id>`). */
  cgroupsPath: string;
}

/** Pauses and resumes replicas. */
export interface Freezer {
  /** Freezes every process of the replica; resolves once the kernel says they all are. */
  freeze(target: FreezerTarget): Promise<void>;
  /** Thaws the replica; resolves once its processes may run again. A thawed one is fine. */
  thaw(target: FreezerTarget): Promise<void>;
  /** Whether the replica's cgroup is frozen (or freezing); undefined when its file is missing. */
  frozen(target: FreezerTarget): Promise<boolean | undefined>;
}

/** The containerd calls the freezer falls back to. */
export interface PauseRpc {
  pause(namespace: string, id: string): Promise<void>;
  resume(namespace: string, id: string): Promise<void>;
}

/** How long a freeze may take before it is given up (tasks in uninterruptible sleep). */
const FREEZE_TIMEOUT_MS = 2_000;

type Layout = { version: 1 | 2; root: string } | undefined;

/** Detects the host's cgroup layout under `root` (`/sys/fs/cgroup`). */
export async function detectCgroupLayout(root = "/sys/fs/cgroup"): Promise<Layout> {
  if (await exists(join(root, "cgroup.controllers"))) return { version: 2, root };
  if (await exists(join(root, "freezer"))) return { version: 1, root: join(root, "freezer") };
  return undefined;
}

/**
 * A freezer writing the cgroup files under the given layout (see {@link detectCgroupLayout}),
 * falling back to `rpc` per replica when a file is missing or there is no layout.
 */
export function cgroupFreezer(layout: Layout, rpc: PauseRpc): Freezer {
  const stateFile = (t: FreezerTarget) =>
    layout && join(
      layout.root,
      t.cgroupsPath,
      layout.version === 1 ? "freezer.state" : "cgroup.freeze",
    );
  const frozenValue = layout?.version === 1 ? "FROZEN" : "1";
  const thawedValue = layout?.version === 1 ? "THAWED" : "0";

  // Whether the kernel has finished freezing (v1: the state file; v2: cgroup.events).
  const isFrozen = async (t: FreezerTarget, file: string): Promise<boolean> => {
    if (layout?.version === 1) return (await readFile(file, "utf8")).trim() === "FROZEN";
    const events = await readFile(join(layout!.root, t.cgroupsPath, "cgroup.events"), "utf8");
    return /^frozen 1$/m.test(events);
  };

  return {
    async freeze(t) {
      const file = stateFile(t);
      if (!file || !(await exists(file))) return rpc.pause(t.namespace, t.id);
      const deadline = Date.now() + FREEZE_TIMEOUT_MS;
      for (let round = 0;; round++) {
        await writeFile(file, frozenValue);
        if (await isFrozen(t, file)) return;
        if (Date.now() > deadline) {
          await writeFile(file, thawedValue).catch(() => {});
          throw new UnavailableError(
            `replica "${t.id}" could not be frozen within ${FREEZE_TIMEOUT_MS} ms ` +
              `(a process in uninterruptible sleep?); it was left running`,
          );
        }
        // v1 can stay FREEZING while a task is in uninterruptible sleep: thawing now and then
        // lets it leave that state before the next try.
        if (layout?.version === 1 && round % 50 === 49) await writeFile(file, thawedValue);
        await new Promise((r) => setTimeout(r, 1));
      }
    },

    thaw(t) {
      const file = stateFile(t);
      if (file) {
        try {
          // Synchronous on purpose: this is on the path of a request waiting for the replica,
          // and a write to cgroupfs takes microseconds, less than a trip to the thread pool.
          writeFileSync(file, thawedValue);
          return Promise.resolve();
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOENT") return Promise.reject(err);
        }
      }
      return rpc.resume(t.namespace, t.id);
    },

    async frozen(t) {
      const file = stateFile(t);
      if (!file) return undefined;
      try {
        const value = (await readFile(file, "utf8")).trim();
        return layout!.version === 1 ? value !== "THAWED" : value === "1";
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw err;
      }
    },
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
