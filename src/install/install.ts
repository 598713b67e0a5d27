/**
 * `faasd install`: makes this host (or a staging root) run faasd under systemd. Idempotent —
 * every file is rewritten only when its content differs, credentials are never overwritten, and
 * the service is restarted only when its program or units changed.
 */

import { mkdir } from "node:fs/promises";
import { credentialPaths, type Credentials, ensureCredentials } from "./credentials.ts";
import { writeIfChanged } from "./files.ts";
import { HOST_PATHS, hostLayout, UNIT_NAMES } from "./paths.ts";
import { installProgram, type Program, type Written } from "./program.ts";
import { SYSCTL_CONF } from "./sysctl.ts";
import type { Systemd } from "./systemd.ts";
import { renderProviderUnit, renderUpUnit } from "./units.ts";

/** What to install, and where. */
export interface InstallOptions {
  /** `/` for the host, or a staging directory. */
  root: string;
  /** The data dir as the host sees it. */
  dataDir: string;
  program: Program;
  memoryMax: string;
  /** Arguments the units pass after `--data-dir` (non-default settings). */
  extraArgs?: string[];
  /** Start (or restart) faasd.service; false only enables it. */
  start: boolean;
}

/** The host effects install needs; absent ones are skipped with a note. */
export interface InstallDeps {
  /** systemctl; undefined when systemd does not run this host or a staging root is used. */
  systemd?: Systemd;
  /** Applies net.ipv4.ip_forward now; undefined for a staging root. */
  applyIpForward?: () => Promise<boolean>;
}

/** What install did. */
export interface InstallReport {
  files: Written[];
  credentials: Credentials & { created: boolean; passwordFile: string };
  /** Things the user should know (skipped steps). */
  notes: string[];
  /** What was done to the service: "started", "restarted", "enabled", "running" or "skipped". */
  service: "started" | "restarted" | "enabled" | "running" | "skipped";
}

/** Installs faasd; see the file comment. */
export async function install(deps: InstallDeps, opts: InstallOptions): Promise<InstallReport> {
  const layout = hostLayout(opts.root, opts.dataDir);
  const notes: string[] = [];
  const files: Written[] = [];

  const dataDirExisted = await mkdir(layout.dataDir, { recursive: true, mode: 0o755 }) ===
    undefined;
  files.push({ path: layout.dataDir, change: dataDirExisted ? "unchanged" : "created" });
  const creds = await ensureCredentials(layout.dataDir);
  const passwordFile = credentialPaths(opts.dataDir).password;
  files.push({
    path: credentialPaths(layout.dataDir).password,
    change: creds.created ? "created" : "unchanged",
  });

  const programFiles = await installProgram(layout, opts.program);
  files.push(...programFiles);

  files.push({
    path: layout.sysctl,
    change: await writeIfChanged(layout.sysctl, SYSCTL_CONF, 0o644),
  });
  if (deps.applyIpForward) {
    try {
      if (await deps.applyIpForward()) notes.push("net.ipv4.ip_forward was 0; set it to 1");
    } catch (err) {
      // A container may see /proc/sys read-only; the host (or the next boot) must set it.
      notes.push(
        `could not set net.ipv4.ip_forward now (${(err as Error).message}): set it on the ` +
          `host, or run sysctl --system once the drop-in can apply`,
      );
    }
  } else {
    notes.push("net.ipv4.ip_forward not applied (staging root): the sysctl.d file sets it at boot");
  }

  const unitOpts = {
    binary: HOST_PATHS.binary,
    dataDir: opts.dataDir,
    memoryMax: opts.memoryMax,
    extraArgs: opts.extraArgs,
  };
  const unitFiles: Written[] = [];
  for (
    const [name, content] of [
      [UNIT_NAMES.up, renderUpUnit(unitOpts)],
      [UNIT_NAMES.provider, renderProviderUnit(unitOpts)],
    ]
  ) {
    const path = layout.unit(name);
    unitFiles.push({ path, change: await writeIfChanged(path, content, 0o644) });
  }
  files.push(...unitFiles);

  let service: InstallReport["service"] = "skipped";
  if (deps.systemd) {
    const changed = [...programFiles, ...unitFiles].some((f) => f.change !== "unchanged");
    await deps.systemd.daemonReload();
    await deps.systemd.enable(UNIT_NAMES.up);
    service = "enabled";
    if (opts.start) {
      if (!await deps.systemd.isActive(UNIT_NAMES.up)) {
        await deps.systemd.start(UNIT_NAMES.up);
        service = "started";
      } else if (changed) {
        // Replicas run in containerd's shims, so a restart keeps them; faasd re-adopts them.
        await deps.systemd.restart(UNIT_NAMES.up);
        service = "restarted";
      } else {
        service = "running";
      }
    } else {
      notes.push(`${UNIT_NAMES.up} enabled, not started (--no-start): systemctl start faasd`);
    }
  }
  return { files, credentials: { ...creds, passwordFile }, notes, service };
}
