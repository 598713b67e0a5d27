/**
 * `faasd uninstall`: stops and removes what install put on the host — units, program, sysctl
 * drop-in — and keeps the data dir (credentials, secrets, state) unless asked to purge it.
 */

import { lstat } from "node:fs/promises";
import { resolve } from "node:path";
import { FailedPreconditionError } from "../errors.ts";
import { removePath } from "./files.ts";
import { hostLayout, UNIT_NAMES } from "./paths.ts";
import type { Systemd } from "./systemd.ts";

/** What to remove, and where. */
export interface UninstallOptions {
  root: string;
  dataDir: string;
  /** Also remove the data dir. */
  purge: boolean;
}

/** What uninstall did. */
export interface UninstallReport {
  removed: string[];
  kept: string[];
  stopped: string[];
}

// Directories a mistyped --data-dir must never make --purge delete.
const NEVER_PURGE = new Set(["/", "/var", "/var/lib", "/usr", "/etc", "/home", "/root", "/opt"]);

/** Uninstalls faasd; see the file comment. */
export async function uninstall(
  deps: { systemd?: Systemd },
  opts: UninstallOptions,
): Promise<UninstallReport> {
  if (opts.purge && NEVER_PURGE.has(resolve(opts.dataDir))) {
    throw new FailedPreconditionError(
      `Refusing to purge data dir "${opts.dataDir}": it is a system directory`,
    );
  }
  const layout = hostLayout(opts.root, opts.dataDir);
  const report: UninstallReport = { removed: [], kept: [], stopped: [] };
  const units = [UNIT_NAMES.up, UNIT_NAMES.provider];
  if (deps.systemd) {
    for (const unit of units) {
      const present = await lstat(layout.unit(unit)).then(() => true, () => false);
      if (!present) continue;
      if (await deps.systemd.isActive(unit)) report.stopped.push(unit);
      await deps.systemd.disableNow(unit);
    }
  }
  for (const path of [...units.map(layout.unit), layout.binary, layout.libDir, layout.sysctl]) {
    if (await removePath(path)) report.removed.push(path);
  }
  if (deps.systemd) await deps.systemd.daemonReload();
  if (opts.purge) {
    if (await removePath(layout.dataDir)) report.removed.push(layout.dataDir);
  } else if (await lstat(layout.dataDir).then(() => true, () => false)) {
    report.kept.push(layout.dataDir);
  }
  return report;
}
