/**
 * Configuration resolved once, at start-up, from flags, then environment variables, then
 * defaults. The result is frozen and passed down; nothing below src/cli/ reads argv or env.
 */

import { InvalidArgumentError } from "../errors.ts";
import { isLogLevel, type LogLevel } from "../log.ts";

/** Everything a subcommand needs to know about where things live and which ports to use. */
export interface ResolvedConfig {
  /** State and secrets (`/var/lib/faasd`). */
  readonly dataDir: string;
  /** containerd's gRPC unix socket. */
  readonly containerdSocket: string;
  /** Gateway port (`faasd up`); 0 picks a free port. */
  readonly port: number;
  /** Provider API port (`faasd provider`, and the provider inside `faasd up`). */
  readonly providerPort: number;
  readonly logLevel: LogLevel;
  /** Linux bridge the function replicas attach to. */
  readonly bridge: string;
  /** IPv4 subnet the replicas' addresses come from. */
  readonly subnet: string;
  /** DNS servers for functions, comma-separated; empty means the host's resolvers. */
  readonly dns: string;
  /** Async queue backend: `file` (a journal under the data dir) or a `nats://host:port` URL. */
  readonly queue: string;
  /** How long a function may take to answer (Go-style duration, `65s`, `2m`). */
  readonly upstreamTimeout: string;
  /** Largest request body the gateway accepts (`20Mi`, `1Gi`, plain bytes). */
  readonly maxBodySize: string;
  /** How long a lower load must last before the autoscaler removes replicas (`30s`). */
  readonly scaleDownWindow: string;
  /** OCI runtime for replicas: `auto` (crun when installed, else runc), `runc`, `crun`, a path. */
  readonly runtime: string;
}

/** Values as they arrive from flags or the environment, before validation. */
export type ConfigInput = { [K in keyof ResolvedConfig]?: string | undefined };

/** Built-in defaults, the faasd layout (../shared/reference/openfaas-api.md). */
export const DEFAULTS: ResolvedConfig = Object.freeze({
  dataDir: "/var/lib/faasd",
  containerdSocket: "/run/containerd/containerd.sock",
  port: 8080,
  providerPort: 8081,
  logLevel: "info",
  bridge: "openfaas0",
  subnet: "10.62.0.0/16",
  dns: "",
  queue: "file",
  upstreamTimeout: "65s",
  maxBodySize: "20Mi",
  scaleDownWindow: "30s",
  runtime: "auto",
});

/** The environment variable that may set each option, named in `--help`. */
export const ENV_NAMES: Readonly<Record<keyof ResolvedConfig, string>> = Object.freeze({
  dataDir: "FAASD_DATA_DIR",
  containerdSocket: "FAASD_CONTAINERD_SOCKET",
  port: "FAASD_PORT",
  providerPort: "FAASD_PROVIDER_PORT",
  logLevel: "FAASD_LOG_LEVEL",
  bridge: "FAASD_BRIDGE",
  subnet: "FAASD_SUBNET",
  dns: "FAASD_DNS",
  queue: "FAASD_QUEUE",
  upstreamTimeout: "FAASD_UPSTREAM_TIMEOUT",
  maxBodySize: "FAASD_MAX_BODY_SIZE",
  scaleDownWindow: "FAASD_SCALE_DOWN_WINDOW",
  runtime: "FAASD_RUNTIME",
});

/** The command-line flag for each option, used in error messages. */
export const FLAG_NAMES: Readonly<Record<keyof ResolvedConfig, string>> = Object.freeze({
  dataDir: "--data-dir",
  containerdSocket: "--containerd-socket",
  port: "--port",
  providerPort: "--provider-port",
  logLevel: "--log-level",
  bridge: "--bridge",
  subnet: "--subnet",
  dns: "--dns",
  queue: "--queue",
  upstreamTimeout: "--upstream-timeout",
  maxBodySize: "--max-body-size",
  scaleDownWindow: "--scale-down-window",
  runtime: "--runtime",
});

/**
 * Resolves the configuration: a flag wins over the environment, which wins over the default.
 * Throws InvalidArgumentError naming the flag (or variable) whose value is wrong.
 */
export function resolveConfig(
  flags: ConfigInput,
  env: Readonly<Record<string, string | undefined>>,
): Readonly<ResolvedConfig> {
  const pick = (key: keyof ResolvedConfig): { value: string; source: string } | undefined => {
    const flag = flags[key];
    if (flag !== undefined) return { value: flag, source: FLAG_NAMES[key] };
    const fromEnv = env[ENV_NAMES[key]];
    if (fromEnv !== undefined && fromEnv !== "") return { value: fromEnv, source: ENV_NAMES[key] };
    return undefined;
  };

  const path = (key: "dataDir" | "containerdSocket"): string => {
    const v = pick(key);
    if (!v) return DEFAULTS[key];
    if (!v.value.startsWith("/")) {
      throw new InvalidArgumentError(`${v.source} must be an absolute path, got "${v.value}"`);
    }
    return v.value.length > 1 ? v.value.replace(/\/+$/, "") : v.value;
  };

  const port = (key: "port" | "providerPort"): number => {
    const v = pick(key);
    if (!v) return DEFAULTS[key];
    const n = Number(v.value);
    if (!/^\d+$/.test(v.value) || n > 65535) {
      throw new InvalidArgumentError(`${v.source} must be a port number 0-65535, got "${v.value}"`);
    }
    return n;
  };

  const text = (
    key: "bridge" | "subnet" | "dns" | "queue" | "upstreamTimeout" | "maxBodySize" | "runtime",
    re: RegExp,
    what: string,
  ): string => {
    const v = pick(key);
    if (!v) return DEFAULTS[key];
    if (!re.test(v.value)) {
      throw new InvalidArgumentError(`${v.source} must be ${what}, got "${v.value}"`);
    }
    return v.value;
  };

  const level = pick("logLevel");
  if (level && !isLogLevel(level.value)) {
    throw new InvalidArgumentError(
      `${level.source} must be one of debug, info, warn, error, got "${level.value}"`,
    );
  }

  const scaleDownWindow = pick("scaleDownWindow");
  if (scaleDownWindow && !/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(scaleDownWindow.value)) {
    throw new InvalidArgumentError(
      `${scaleDownWindow.source} must be a duration such as 30s or 1m, got "${scaleDownWindow.value}"`,
    );
  }

  return Object.freeze({
    dataDir: path("dataDir"),
    containerdSocket: path("containerdSocket"),
    port: port("port"),
    providerPort: port("providerPort"),
    logLevel: (level?.value as LogLevel | undefined) ?? DEFAULTS.logLevel,
    bridge: text(
      "bridge",
      /^[a-zA-Z0-9_.-]{1,15}$/,
      "a network interface name of at most 15 characters",
    ),
    subnet: text("subnet", /^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/, "an IPv4 CIDR such as 10.62.0.0/16"),
    dns: text(
      "dns",
      /^((\d{1,3}\.){3}\d{1,3})(,(\d{1,3}\.){3}\d{1,3})*$|^$/,
      "comma-separated IPv4 addresses",
    ),
    queue: text("queue", /^file$|^nats:\/\/[^\s/]+\/?$/, "file or a nats://host:port URL"),
    upstreamTimeout: text(
      "upstreamTimeout",
      /^(\d+(\.\d+)?(ms|s|m|h))+$/,
      "a duration such as 65s or 2m",
    ),
    maxBodySize: text(
      "maxBodySize",
      /^\d+(Ki|Mi|Gi|k|M|G)?$/,
      "a size in bytes, optionally with Ki, Mi, Gi, k, M or G",
    ),
    scaleDownWindow: scaleDownWindow?.value ?? DEFAULTS.scaleDownWindow,
    runtime: text("runtime", /^(auto|runc|crun|\/\S+)$/, "auto, runc, crun or an absolute path"),
  });
}
