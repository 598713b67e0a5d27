/**
 * What a host needs before faasd can run there: containerd, runc and the CNI plugins. A missing
 * piece is named together with the one apt command that installs all of them.
 */

import { access, constants } from "node:fs/promises";
import { join } from "node:path";
import { DEFAULT_PLUGIN_DIRS } from "../cni/plugins.ts";
import { FailedPreconditionError } from "../errors.ts";

/** The Debian/Ubuntu packages that provide what faasd needs. */
export const APT_INSTALL = "apt-get install containerd runc containernetworking-plugins";

/** Where to look, passed in so tests can point at a fake host. */
export interface HostSearch {
  /** Directories searched for containerd and runc (the PATH). */
  path: readonly string[];
  /** Directories searched for the CNI `bridge` plugin. */
  pluginDirs?: readonly string[];
}

/** Throws FailedPreconditionError naming every missing piece and the command to install it. */
export async function checkPrerequisites(search: HostSearch): Promise<void> {
  const missing: string[] = [];
  for (const program of ["containerd", "runc"]) {
    if (!await findExecutable(search.path, program)) {
      missing.push(program);
    }
  }
  const pluginDirs = search.pluginDirs ?? DEFAULT_PLUGIN_DIRS;
  if (!await findExecutable(pluginDirs, "bridge")) {
    missing.push(`the CNI plugins (no "bridge" plugin in ${pluginDirs.join(" or ")})`);
  }
  if (missing.length > 0) {
    const where = missing.some((m) => m === "containerd" || m === "runc")
      ? ` (searched PATH ${search.path.join(":")})`
      : "";
    throw new FailedPreconditionError(
      `faasd needs containerd, runc and the CNI plugins; missing: ${missing.join(", ")}${where}. ` +
        `Install them with: ${APT_INSTALL} (other distributions: their containerd, runc and ` +
        `CNI plugins packages, or the upstream releases with the plugins in /opt/cni/bin)`,
    );
  }
}

/** The first executable `name` in `dirs`, or undefined. */
export async function findExecutable(
  dirs: readonly string[],
  name: string,
): Promise<string | undefined> {
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (await access(candidate, constants.X_OK).then(() => true, () => false)) return candidate;
  }
  return undefined;
}
