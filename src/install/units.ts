/**
 * The systemd units `faasd install` writes, rendered from templates kept in this file so the
 * binary carries them (nothing is read from the working directory at run time).
 */

import { InvalidArgumentError } from "../errors.ts";
import { HOST_PATHS, UNIT_NAMES } from "./paths.ts";

/** What the unit templates need. */
export interface UnitOptions {
  /** The installed faasd program, as the host sees it (`/usr/local/bin/faasd`). */
  binary: string;
  /** The data dir, passed as `--data-dir` and used as the working directory. */
  dataDir: string;
  /** systemd's MemoryMax= for the faasd process (`512M`, `1G`, `25%`, `infinity`). */
  memoryMax: string;
  /** Further arguments after `--data-dir` (e.g. `--containerd-socket PATH`). */
  extraArgs?: string[];
}

/** The default memory cap: the gateway and provider only; functions run in containerd's shims. */
export const DEFAULT_MEMORY_MAX = "512M";

const MEMORY_MAX = /^(\d+[KMGT]?|\d{1,3}%|infinity)$/;

/** Throws InvalidArgumentError unless `value` is a MemoryMax= systemd accepts. */
export function validateMemoryMax(value: string): string {
  if (!MEMORY_MAX.test(value)) {
    throw new InvalidArgumentError(
      `Invalid memory cap "${value}": use bytes with an optional K, M, G or T suffix (512M), ` +
        `a percentage of RAM (25%), or infinity`,
    );
  }
  return value;
}

/** Quotes one ExecStart= argument the way systemd.service(5) reads it. */
export function execArg(arg: string): string {
  if (/[\n\r\0]/.test(arg)) {
    throw new InvalidArgumentError(`Cannot put ${JSON.stringify(arg)} in a unit: it has a newline`);
  }
  // systemd expands %-specifiers and $VARIABLES in ExecStart=; doubling them keeps them literal.
  const literal = arg.replaceAll("%", "%%").replaceAll("$", "$$$$");
  if (/^[A-Za-z0-9_@%$+=:,./-]+$/.test(literal)) return literal;
  return `"${literal.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

function absolute(what: string, path: string): string {
  if (!path.startsWith("/") || /[\n\r\0]/.test(path)) {
    throw new InvalidArgumentError(`Invalid ${what} "${path}": must be an absolute path`);
  }
  return path;
}

function render(mode: "up" | "provider", opts: UnitOptions): string {
  const binary = absolute("binary path", opts.binary);
  const dataDir = absolute("data dir", opts.dataDir);
  validateMemoryMax(opts.memoryMax);
  const exec = [binary, mode, "--data-dir", dataDir, ...opts.extraArgs ?? []].map(execArg);
  const what = mode === "up"
    ? "the gateway on :8080 and the provider on :8081"
    : "the provider API alone on :8081";
  const conflicts = mode === "up" ? UNIT_NAMES.provider : UNIT_NAMES.up;
  return `# Written by \`faasd install\`; the next install rewrites it. Settings go in
# ${HOST_PATHS.environment} as FAASD_* variables (see \`faasd ${mode} --help\`).
[Unit]
Description=faasd-ts ${mode}: ${what}
After=network-online.target containerd.service
Wants=network-online.target
Requires=containerd.service
# Both serve the provider API on the same port and manage the same functions.
Conflicts=${conflicts}
# Keep retrying: an appliance comes back by itself once containerd does.
StartLimitIntervalSec=0

[Service]
Type=simple
ExecStart=${exec.join(" ")}
WorkingDirectory=${dataDir}
EnvironmentFile=-${HOST_PATHS.environment}
Restart=on-failure
RestartSec=5s
# Caps faasd itself; function replicas live in containerd's shims, outside this unit, and keep
# running while faasd restarts or is upgraded.
MemoryMax=${opts.memoryMax}
LimitNOFILE=65536
TimeoutStopSec=30s

[Install]
WantedBy=multi-user.target
`;
}

/** Renders `faasd.service`: `faasd up`, the whole appliance. */
export function renderUpUnit(opts: UnitOptions): string {
  return render("up", opts);
}

/** Renders `faasd-provider.service`: `faasd provider` alone (not enabled by install). */
export function renderProviderUnit(opts: UnitOptions): string {
  return render("provider", opts);
}
