/**
 * `faasd install`: installs faasd as a systemd service on this host, or renders the same files
 * into a staging root (`--root`). Also the flags and host wiring uninstall and upgrade share.
 */

import { relative } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { createExec, type Exec } from "../cni/exec.ts";
import { DEFAULTS } from "../config/config.ts";
import { PermissionDeniedError, UsageError } from "../errors.ts";
import { install, type InstallReport } from "../install/install.ts";
import { checkPrerequisites } from "../install/prerequisites.ts";
import { type Program, runningProgram, type Runtime } from "../install/program.ts";
import { applyIpForward } from "../install/sysctl.ts";
import { createSystemctl, type Systemd, systemdBooted } from "../install/systemd.ts";
import { DEFAULT_MEMORY_MAX, validateMemoryMax } from "../install/units.ts";
import { probeVersion } from "../install/upgrade.ts";
import {
  type Command,
  commandConfig,
  type CommandContext,
  COMMON_FLAGS,
  type Flag,
} from "./command.ts";

/** `--root`, shared by install, uninstall and upgrade. */
export const ROOT_FLAG: Flag = {
  type: "string",
  valueName: "DIR",
  defaultText: "/",
  description:
    "work on a staging root instead of this host (no systemctl, no sysctl, no root needed)",
};

/** The staging root from `--root`, validated; "/" means the host itself. */
export function rootOf(ctx: CommandContext): string {
  const root = (ctx.values.root as string | undefined) ?? "/";
  if (!root.startsWith("/")) throw new UsageError(`--root must be an absolute path, got "${root}"`);
  return root.length > 1 ? root.replace(/\/+$/, "") : root;
}

/** Throws PermissionDeniedError unless root, for commands that change the host itself. */
export function requireRoot(command: string): void {
  if (process.getuid?.() !== 0) {
    throw new PermissionDeniedError(
      `faasd ${command} must run as root: it writes /usr/local/bin, /etc/systemd/system and ` +
        `/etc/sysctl.d and runs systemctl — run "sudo faasd ${command}", or pass --root DIR to ` +
        `render the files into a staging directory`,
    );
  }
}

/** systemctl when systemd runs this host and `root` is "/"; otherwise undefined and a note. */
export async function hostSystemd(
  root: string,
  exec: Exec,
): Promise<{ systemd?: Systemd; note?: string }> {
  if (root !== "/") return { note: "systemctl not run (staging root)" };
  if (!await systemdBooted()) {
    return {
      note: "systemd is not running this host (PID 1 is not systemd), so nothing was enabled " +
        "or started: run `faasd up` under your own supervisor, or boot with systemd",
    };
  }
  return { systemd: createSystemctl(exec) };
}

/** The running program's facts, for {@link runningProgram}. */
function runtime(): Runtime {
  const deno = (globalThis as { Deno?: typeof Deno }).Deno;
  if (deno) {
    return {
      denoStandalone: deno.build.standalone,
      execPath: deno.execPath(),
      mainPath: fileURLToPath(deno.mainModule),
    };
  }
  return { execPath: process.execPath, mainPath: process.argv[1] };
}

/** Creates the `install` command. */
export function installCommand(): Command {
  const cmd: Command = {
    name: "install",
    summary: "install faasd as a systemd service on this host",
    usage: "faasd install [--root DIR] [--binary FILE] [--no-start] [options]",
    description: `
Idempotent; run it again after changing options. It creates the data dir and the admin
credentials (never overwritten), puts faasd at /usr/local/bin/faasd, writes
/etc/sysctl.d/90-faasd.conf (net.ipv4.ip_forward=1, applied now too) and the units
faasd.service (faasd up) and faasd-provider.service (faasd provider, not enabled), then runs
systemctl daemon-reload and enable --now faasd. Settings for the units go in
/etc/default/faasd as FAASD_* variables.
The program installed is --binary FILE if given, else the running one: a compiled binary is
copied, the armhf Node.js bundle goes to /usr/local/lib/faasd, and a source checkout gets a
launcher script that runs its main.ts with its Deno (keep the checkout in place).
Needs containerd, runc and the CNI plugins (apt-get install containerd runc
containernetworking-plugins).`,
    flags: {
      "data-dir": COMMON_FLAGS["data-dir"],
      "containerd-socket": COMMON_FLAGS["containerd-socket"],
      root: ROOT_FLAG,
      binary: {
        type: "string",
        valueName: "FILE",
        description: "install this faasd binary instead of the running program",
      },
      "memory-max": {
        type: "string",
        valueName: "SIZE",
        defaultText: DEFAULT_MEMORY_MAX,
        description: "MemoryMax= of faasd.service (512M, 1G, 25%, infinity)",
      },
      "no-start": { type: "boolean", description: "enable faasd.service but do not start it" },
    },
    run: async (ctx) => {
      const config = commandConfig(cmd, ctx);
      const root = rootOf(ctx);
      let memoryMax = (ctx.values["memory-max"] as string | undefined) ?? DEFAULT_MEMORY_MAX;
      try {
        memoryMax = validateMemoryMax(memoryMax);
      } catch (err) {
        throw new UsageError(`--memory-max: ${(err as Error).message}`, { cause: err });
      }
      if (root === "/") {
        requireRoot("install");
        await checkPrerequisites({ path: (ctx.env.PATH ?? "/usr/sbin:/usr/bin").split(":") });
      }
      const exec = createExec();
      const binary = ctx.values.binary as string | undefined;
      let program: Program;
      if (binary !== undefined) {
        await probeVersion(exec, binary);
        program = { kind: "binary", path: binary };
      } else {
        program = runningProgram(runtime());
      }
      const { systemd, note } = await hostSystemd(root, exec);
      const extraArgs = config.containerdSocket === DEFAULTS.containerdSocket
        ? []
        : ["--containerd-socket", config.containerdSocket];
      const report = await install(
        { systemd, applyIpForward: root === "/" ? () => applyIpForward() : undefined },
        {
          root,
          dataDir: config.dataDir,
          program,
          memoryMax,
          extraArgs,
          start: !ctx.values["no-start"],
        },
      );
      if (note) report.notes.push(note);
      ctx.io.out(renderReport(report, root, program));
      return 0;
    },
  };
  return cmd;
}

function renderReport(report: InstallReport, root: string, program: Program): string {
  const shown = (p: string) => (root === "/" ? p : `${root}/${relative(root, p)}`);
  const lines = report.files.map((f) => `  ${f.change.padEnd(9)} ${shown(f.path)}`);
  const from = program.kind === "source"
    ? `a launcher for the source checkout ${program.main}`
    : program.kind === "node"
    ? `the Node.js bundle ${program.bundle}`
    : program.path;
  const service = {
    started: "faasd.service enabled and started",
    restarted: "faasd.service restarted (its program or unit changed)",
    running: "faasd.service already running, unchanged",
    enabled: "faasd.service enabled",
    skipped: undefined,
  }[report.service];
  const c = report.credentials;
  return `faasd install${root === "/" ? "" : ` (staging root ${root})`}: ${from}
${lines.join("\n")}
${[service, ...report.notes].filter(Boolean).map((n) => `note: ${n}`).join("\n")}

Next steps:
  cat ${c.passwordFile} | faas-cli login --username ${c.user} --password-stdin --gateway http://127.0.0.1:8080
  journalctl -u faasd -f
`;
}
