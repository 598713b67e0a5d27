/**
 * The composition root of the CLI: picks the subcommand, parses its flags, runs it, and turns
 * errors into messages and exit codes (0 ok, 1 failed, 2 usage).
 */

import { BUILD_INFO } from "../build_info.ts";
import { UsageError } from "../errors.ts";
import { type Command, type Io, parseCommandArgs, renderHelp } from "./command.ts";
import { containerdCommand } from "./containerd.ts";
import { installCommand } from "./install.ts";
import { providerCommand } from "./provider.ts";
import { registryCommand } from "./registry.ts";
import { serviceCommand } from "./service.ts";
import { imageCommand } from "./image.ts";
import { uninstallCommand } from "./uninstall.ts";
import { upCommand } from "./up.ts";
import { upgradeCommand } from "./upgrade.ts";
import { versionCommand } from "./version.ts";

/** Every subcommand, in the order `faasd --help` lists them. */
export function commands(): Command[] {
  return [
    upCommand(),
    providerCommand(),
    installCommand(),
    uninstallCommand(),
    upgradeCommand(),
    imageCommand(),
    registryCommand(),
    serviceCommand(),
    containerdCommand(),
    versionCommand(),
  ];
}

/** Renders `faasd --help`. */
export function renderTopHelp(cmds: Command[]): string {
  const width = Math.max(...cmds.map((c) => c.name.length)) + 2;
  return `faasd-ts ${BUILD_INFO.version}: OpenFaaS functions on containerd, in one binary

Usage: faasd COMMAND [options]

Commands:
${cmds.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join("\n")}

Run "faasd COMMAND --help" for a command's options.
`;
}

/** Runs the CLI and returns the process exit code. */
export async function runCli(
  argv: string[],
  env: Readonly<Record<string, string | undefined>>,
  io: Io,
): Promise<number> {
  const cmds = commands();
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? io.err : io.out)(renderTopHelp(cmds));
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") return runCli(["version"], env, io);
  const cmd = cmds.find((c) => c.name === name);
  if (!cmd) {
    io.err(`faasd: unknown command "${name}"\nUsage: faasd COMMAND [options] (see faasd --help)\n`);
    return 2;
  }
  try {
    const { values, positionals, help } = parseCommandArgs(cmd, rest);
    if (help) {
      io.out(renderHelp(cmd));
      return 0;
    }
    return await cmd.run({ values, positionals, env, io });
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(
        `faasd ${cmd.name}: ${err.message}\nUsage: ${cmd.usage} (see faasd ${cmd.name} --help)\n`,
      );
      return 2;
    }
    io.err(`faasd ${cmd.name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
