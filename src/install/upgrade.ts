/**
 * `faasd upgrade FILE`: checks that FILE is a faasd that runs on this host, swaps it in for the
 * installed program with a rename, and restarts the service. Function replicas keep running:
 * they live in containerd's shims, and faasd re-adopts them when it starts.
 */

import { access, constants, lstat, readFile, stat } from "node:fs/promises";
import type { Exec } from "../cni/exec.ts";
import { FailedPreconditionError, InvalidArgumentError } from "../errors.ts";
import { replaceFile } from "./files.ts";
import { hostLayout, UNIT_NAMES } from "./paths.ts";
import type { Systemd } from "./systemd.ts";

/** A version as `faasd version --json` prints it. */
export interface VersionInfo {
  version: string;
  sha: string;
}

/** What upgrade did. */
export interface UpgradeReport {
  from?: VersionInfo;
  to: VersionInfo;
  binary: string;
  restarted: string[];
}

/** Runs `file version --json`; InvalidArgumentError when it is not a working faasd. */
export async function probeVersion(exec: Exec, file: string): Promise<VersionInfo> {
  const info = await stat(file).catch((err) => {
    throw new InvalidArgumentError(`Cannot upgrade to "${file}": ${(err as Error).message}`, {
      cause: err,
    });
  });
  if (!info.isFile()) throw new InvalidArgumentError(`Cannot upgrade to "${file}": not a file`);
  if (!await access(file, constants.X_OK).then(() => true, () => false)) {
    throw new InvalidArgumentError(
      `Cannot upgrade to "${file}": not executable (chmod +x it first)`,
    );
  }
  const r = await exec(file, ["version", "--json"], { timeoutMs: 30_000 }).catch((err) => {
    throw new InvalidArgumentError(
      `"${file}" does not run on this host: ${(err as Error).message}`,
      { cause: err },
    );
  });
  let parsed: Partial<VersionInfo> | undefined;
  try {
    parsed = JSON.parse(r.stdout);
  } catch { /* reported below */ }
  if (r.code !== 0 || typeof parsed?.version !== "string" || typeof parsed.sha !== "string") {
    const said = (r.stderr || r.stdout).trim().split("\n")[0] || `exit code ${r.code}`;
    throw new InvalidArgumentError(
      `"${file}" is not a faasd binary: "${file} version --json" did not print its version ` +
        `(${said})`,
    );
  }
  return { version: parsed.version, sha: parsed.sha };
}

/** Upgrades the installed program to `file`; see the file comment. */
export async function upgrade(
  deps: { exec: Exec; systemd?: Systemd },
  opts: { root: string; file: string },
): Promise<UpgradeReport> {
  const layout = hostLayout(opts.root, "/");
  const to = await probeVersion(deps.exec, opts.file);
  const installed = await lstat(layout.binary).catch(() => undefined);
  if (!installed) {
    throw new FailedPreconditionError(
      `faasd is not installed (no ${layout.binary}): run "${opts.file} install" instead`,
    );
  }
  if (installed.isSymbolicLink()) {
    throw new FailedPreconditionError(
      `${layout.binary} is the armhf Node.js bundle's launcher: upgrade it by running install.sh ` +
        `again with the new release (FAASD_BINARY for a local file)`,
    );
  }
  const from = await probeVersion(deps.exec, layout.binary).catch(() => undefined);
  await replaceFile(layout.binary, await readFile(opts.file), 0o755);
  const restarted: string[] = [];
  if (deps.systemd) {
    for (const unit of [UNIT_NAMES.up, UNIT_NAMES.provider]) {
      if (await deps.systemd.isActive(unit)) {
        await deps.systemd.restart(unit);
        restarted.push(unit);
      }
    }
  }
  return { from, to, binary: layout.binary, restarted };
}
