/**
 * The network configuration list (CNI SPEC §1) for function replicas: a bridge with host-local
 * IPAM, masquerading and a default route, followed by the firewall plugin.
 */

import { InvalidArgumentError } from "../errors.ts";

/** One plugin entry of a conflist; `type` names the plugin binary. */
export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

/** A CNI network configuration list. */
export interface Conflist {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  plugins: PluginConf[];
}

/** What {@link renderConflist} needs. */
export interface ConflistOptions {
  /** Network name; host-local keeps its leases under `<ipamDir>/<name>/`. */
  name: string;
  /** Linux bridge the replicas' veths attach to. */
  bridge: string;
  /** IPv4 CIDR the replicas' addresses come from, e.g. `10.62.0.0/16`. */
  subnet: string;
  /** host-local's `dataDir`. */
  ipamDir: string;
  /**
   * Per-replica iptables rules from the plugins (bridge's ipMasq and the firewall plugin), the
   * default. Off, the conflist is bridge + host-local only and the caller installs one
   * masquerade rule and two forward rules for the whole subnet (see subnet_rules.ts): each
   * replica then costs no iptables run, which on nf_tables is ~12 ms per rule change.
   */
  perReplicaRules?: boolean;
}

/** The spec version our conflists declare; the firewall plugin accepts only 0.4.0 and 1.0.0. */
export const CNI_VERSION = "1.0.0";

// IFNAMSIZ is 16 including the terminating NUL.
const IFNAME = /^[a-zA-Z0-9_.-]{1,15}$/;
// Network names become a directory under ipamDir and part of iptables comments.
const NETWORK_NAME = /^[a-zA-Z0-9_.-]{1,64}$/;

/** Renders the conflist for function replicas, validating the subnet and bridge name. */
export function renderConflist(opts: ConflistOptions): Conflist {
  parseSubnet(opts.subnet);
  validateBridgeName(opts.bridge);
  if (!NETWORK_NAME.test(opts.name) || opts.name === "." || opts.name === "..") {
    throw new InvalidArgumentError(
      `Invalid CNI network name "${opts.name}": use 1–64 letters, digits, "_", "." or "-"`,
    );
  }
  if (opts.ipamDir === "") throw new InvalidArgumentError("Invalid CNI ipamDir: empty path");
  const perReplica = opts.perReplicaRules ?? true;
  return {
    cniVersion: CNI_VERSION,
    name: opts.name,
    plugins: [
      {
        type: "bridge",
        bridge: opts.bridge,
        isGateway: true,
        ipMasq: perReplica,
        hairpinMode: true,
        ipam: {
          type: "host-local",
          ranges: [[{ subnet: opts.subnet }]],
          routes: [{ dst: "0.0.0.0/0" }],
          dataDir: opts.ipamDir,
        },
      },
      ...(perReplica ? [{ type: "firewall" }] : []),
    ],
  };
}

/** Throws an InvalidArgumentError naming `--bridge` unless `name` is a usable interface name. */
export function validateBridgeName(name: string): void {
  if (!IFNAME.test(name) || name === "." || name === "..") {
    throw new InvalidArgumentError(
      `Invalid --bridge "${name}": use 1–15 letters, digits, "_", "." or "-"`,
    );
  }
}

/** An IPv4 network as a 32-bit number and a prefix length. */
export interface Ipv4Net {
  network: number;
  prefix: number;
}

/**
 * Parses an IPv4 CIDR whose host bits are zero and whose prefix is 8–30 (a /31 or /32 leaves no
 * room for a gateway and a replica); errors name `--subnet`.
 */
export function parseSubnet(subnet: string): Ipv4Net {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(subnet);
  const ip = m ? parseIpv4(m[1]) : undefined;
  if (!m || ip === undefined) {
    throw new InvalidArgumentError(
      `Invalid --subnet "${subnet}": expected an IPv4 CIDR like 10.62.0.0/16`,
    );
  }
  const prefix = Number(m[2]);
  if (prefix < 8 || prefix > 30) {
    throw new InvalidArgumentError(
      `Invalid --subnet "${subnet}": the prefix length must be between 8 and 30`,
    );
  }
  const mask = (0xffffffff << (32 - prefix)) >>> 0;
  const network = (ip & mask) >>> 0;
  if (network !== ip) {
    throw new InvalidArgumentError(
      `Invalid --subnet "${subnet}": host bits are set (did you mean ${
        formatIpv4(network)
      }/${prefix}?)`,
    );
  }
  return { network, prefix };
}

/** The first host address of `subnet`, which the bridge takes as the replicas' gateway (10.62.0.0/16 → 10.62.0.1). */
export function gatewayIp(subnet: string): string {
  return formatIpv4(parseSubnet(subnet).network + 1);
}

/** Reports whether the IPv4 address `ip` lies inside `subnet`. */
export function subnetContains(subnet: string, ip: string): boolean {
  const net = parseSubnet(subnet);
  const addr = parseIpv4(ip);
  if (addr === undefined) return false;
  const mask = (0xffffffff << (32 - net.prefix)) >>> 0;
  return ((addr & mask) >>> 0) === net.network;
}

/** Parses a dotted-quad IPv4 address into a 32-bit number, or undefined when it is not one. */
export function parseIpv4(s: string): number | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255 || (p.length > 1 && p.startsWith("0"))) {
      return undefined;
    }
    n = n * 256 + Number(p);
  }
  return n;
}

/** Formats a 32-bit number as a dotted-quad IPv4 address. */
export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}
