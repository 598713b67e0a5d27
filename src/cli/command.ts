/**
 * The shape every subcommand shares: its flags (turned into node:util parseArgs options and into
 * `--help` text), and a run function that receives parsed values and its dependencies.
 */

import { parseArgs } from "node:util";
import {
  type ConfigInput,
  DEFAULTS,
  ENV_NAMES,
  resolveConfig,
  type ResolvedConfig,
} from "../config/config.ts";
import { InvalidArgumentError, UsageError } from "../errors.ts";

/** One command-line flag. */
export interface Flag {
  type: "string" | "boolean";
  description: string;
  short?: string;
  /** Shown in help as `--flag VALUE`. */
  valueName?: string;
  /** For string flags: the config key it feeds, so help can show its env variable and default. */
  config?: keyof ResolvedConfig;
  /** Default shown in help for flags that are not config keys. */
  defaultText?: string;
  multiple?: boolean;
}

/** Where a command writes: stdout for results, stderr for messages. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Whether stdout is a terminal (progress bars) or a pipe/file (plain lines). */
  isTty: boolean;
  /** Reads stdin to its end (`registry login --password-stdin`); absent where there is none. */
  readStdin?: () => Promise<Uint8Array>;
}

/** What a command's run function receives. */
export interface CommandContext {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
  env: Readonly<Record<string, string | undefined>>;
  io: Io;
}

/** A subcommand of `faasd`. */
export interface Command {
  name: string;
  /** One line for the top-level help. */
  summary: string;
  /** `faasd NAME …` usage line without the `Usage: ` prefix. */
  usage: string;
  /** Paragraphs shown by `--help` after the usage line. */
  description: string;
  flags: Record<string, Flag>;
  /** Whether positional arguments are accepted. */
  positionals?: boolean;
  run(ctx: CommandContext): Promise<number>;
}

/** Flags every command that talks to containerd or the data dir accepts. */
export const COMMON_FLAGS: Record<string, Flag> = {
  "data-dir": {
    type: "string",
    valueName: "DIR",
    config: "dataDir",
    description: "state, secrets and logs",
  },
  "containerd-socket": {
    type: "string",
    valueName: "PATH",
    config: "containerdSocket",
    description: "containerd's gRPC socket",
  },
  "log-level": {
    type: "string",
    valueName: "LEVEL",
    config: "logLevel",
    description: "debug, info, warn or error",
  },
};

/** Flags of the commands that network function replicas. */
export const NETWORK_FLAGS: Record<string, Flag> = {
  bridge: {
    type: "string",
    valueName: "NAME",
    config: "bridge",
    description: "bridge for function replicas",
  },
  subnet: {
    type: "string",
    valueName: "CIDR",
    config: "subnet",
    description: "subnet for function replicas",
  },
  dns: {
    type: "string",
    valueName: "IP[,IP]",
    config: "dns",
    description: "DNS servers for functions (empty: the host's resolvers)",
  },
  runtime: {
    type: "string",
    valueName: "NAME",
    config: "runtime",
    description:
      "OCI runtime for replicas: auto (crun when installed, else runc), runc, crun or a path",
  },
};

/** Flags of the gateway (`faasd up`). */
export const GATEWAY_FLAGS: Record<string, Flag> = {
  queue: {
    type: "string",
    valueName: "BACKEND",
    config: "queue",
    description: "async queue: file (a journal under the data dir) or nats://HOST:PORT",
  },
  "upstream-timeout": {
    type: "string",
    valueName: "DURATION",
    config: "upstreamTimeout",
    description: "how long a function may take to answer",
  },
  "max-body-size": {
    type: "string",
    valueName: "SIZE",
    config: "maxBodySize",
    description: "largest request body accepted (413 above it)",
  },
  "scale-down-window": {
    type: "string",
    valueName: "DURATION",
    config: "scaleDownWindow",
    description: "how long a lower load must last before the autoscaler removes replicas",
  },
};

/** A port flag backed by a config key. */
export function portFlag(config: "port" | "providerPort", description: string): Flag {
  return { type: "string", valueName: "PORT", config, description };
}

const HELP_FLAG: Flag = { type: "boolean", short: "h", description: "show this help" };

/** Parses argv for `cmd`; unknown flags and stray positionals become UsageError. */
export function parseCommandArgs(
  cmd: Command,
  argv: string[],
): { values: CommandContext["values"]; positionals: string[]; help: boolean } {
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean }
  > = {};
  for (const [name, f] of Object.entries({ ...cmd.flags, help: HELP_FLAG })) {
    options[name] = { type: f.type };
    if (f.short) options[name].short = f.short;
    if (f.multiple) options[name].multiple = true;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(parseArgsMessage(err), { cause: err });
  }
  const help = parsed.values.help === true;
  if (!help && !cmd.positionals && parsed.positionals.length > 0) {
    throw new UsageError(`unexpected argument "${parsed.positionals[0]}"`);
  }
  return { values: parsed.values, positionals: parsed.positionals, help };
}

/**
 * Resolves the configuration from a command's config-backed flags and the environment. A bad
 * value is a usage error (exit 2) naming the flag or variable.
 */
export function commandConfig(cmd: Command, ctx: CommandContext): Readonly<ResolvedConfig> {
  const flags: Record<string, string | undefined> = {};
  for (const [name, f] of Object.entries(cmd.flags)) {
    if (f.config) flags[f.config] = ctx.values[name] as string | undefined;
  }
  try {
    return resolveConfig(flags as ConfigInput, ctx.env);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new UsageError(err.message, { cause: err });
    throw err;
  }
}

/** Renders `faasd CMD --help`. */
export function renderHelp(cmd: Command): string {
  const rows = Object.entries({ ...cmd.flags, help: HELP_FLAG }).map(([name, f]) => {
    const left = `${f.short ? `-${f.short}, ` : "    "}--${name}${
      f.valueName ? ` ${f.valueName}` : ""
    }`;
    const extra: string[] = [];
    if (f.config) {
      extra.push(`env ${ENV_NAMES[f.config]}`);
      if (DEFAULTS[f.config] !== "") extra.push(`default ${DEFAULTS[f.config]}`);
    } else if (f.defaultText) {
      extra.push(`default ${f.defaultText}`);
    }
    return [left, f.description + (extra.length ? ` (${extra.join(", ")})` : "")];
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  const lines = rows.map(([l, r]) => `  ${l.padEnd(width)}${r}`);
  return `Usage: ${cmd.usage}\n\n${cmd.description.trim()}\n\nOptions:\n${lines.join("\n")}\n`;
}

// node:util parseArgs errors are TypeErrors with Node's wording; keep the gist.
function parseArgsMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const unknown = msg.match(/Unknown option '([^']+)'/);
  if (unknown) return `unknown option "${unknown[1]}"`;
  const missing = msg.match(/Option '([^']+)' argument missing/);
  if (missing) return `option "${flagName(missing[1])}" needs a value`;
  const notValue = msg.match(/Option '([^']+)' does not take an argument/);
  if (notValue) return `option "${flagName(notValue[1])}" does not take a value`;
  return msg.split("\n")[0];
}

function flagName(s: string): string {
  return s.replace(/^-\w, /, "").replace(/ <value>$/, "");
}
