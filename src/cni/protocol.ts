/**
 * The CNI execution protocol as data (SPEC §2–§3): the environment and stdin a plugin gets, and
 * what we read back from a result. Pure functions, so the rules are unit-tested without plugins.
 */

import type { CniResult } from "./cache.ts";
import type { Conflist, PluginConf } from "./conflist.ts";
import { CniError } from "./errors.ts";

/** A CNI operation. */
export type CniCommand = "ADD" | "DEL" | "CHECK";

/** A replica's place on the network, from the final ADD result. */
export interface Attachment {
  /** The replica's address without prefix length, e.g. `10.62.0.2`. */
  ip: string;
  /** The same address in CIDR form, e.g. `10.62.0.2/16`. */
  address: string;
  gateway: string;
  raw: CniResult;
}

/** The environment of one plugin invocation (SPEC §2 "Parameters"). */
export interface PluginEnvOptions {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifName: string;
  pluginDirs: readonly string[];
  path: string;
}

/** Builds the environment a plugin runs with; nothing is inherited from ours. */
export function pluginEnv(o: PluginEnvOptions): Record<string, string> {
  return {
    CNI_COMMAND: o.command,
    CNI_CONTAINERID: o.containerId,
    CNI_NETNS: o.netns,
    CNI_IFNAME: o.ifName,
    // Plugins exec their IPAM plugin (host-local) from CNI_PATH; even loopback insists on it.
    CNI_PATH: o.pluginDirs.join(":"),
    PATH: o.path,
  };
}

/**
 * Derives the object a plugin reads on stdin (SPEC §3 "Deriving execution configuration"): the
 * list's `cniVersion` and `name`, `capabilities` replaced by the `runtimeConfig` entries the plugin
 * declared, and `prevResult` when there is one.
 */
export function pluginStdin(
  conflist: Conflist,
  plugin: PluginConf,
  opts: { prevResult?: CniResult; runtimeConfig?: Record<string, unknown> } = {},
): Record<string, unknown> {
  const { capabilities, ...rest } = plugin;
  const out: Record<string, unknown> = {
    ...rest,
    cniVersion: conflist.cniVersion,
    name: conflist.name,
  };
  const runtimeConfig: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(capabilities ?? {})) {
    if (on && opts.runtimeConfig && Object.hasOwn(opts.runtimeConfig, cap)) {
      runtimeConfig[cap] = opts.runtimeConfig[cap];
    }
  }
  if (Object.keys(runtimeConfig).length > 0) out.runtimeConfig = runtimeConfig;
  if (opts.prevResult !== undefined) out.prevResult = opts.prevResult;
  return out;
}

/** Picks the replica's address and gateway out of a final ADD result. */
export function attachmentOf(result: CniResult, ifName: string): Omit<Attachment, "raw"> {
  const ips = (result.ips ?? []).filter((ip) => !ip.address.includes(":"));
  const ours = ips.find((ip) => {
    const iface = ip.interface === undefined ? undefined : result.interfaces?.[ip.interface];
    return iface?.name === ifName && iface.sandbox !== undefined;
  }) ?? ips[0];
  if (!ours?.gateway) {
    throw new CniError(`CNI result has no IPv4 address with a gateway: ${JSON.stringify(result)}`);
  }
  return { ip: ours.address.split("/")[0], address: ours.address, gateway: ours.gateway };
}
