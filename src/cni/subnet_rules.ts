/**
 * Network-wide iptables rules for the replicas' subnet, installed once at start instead of per
 * replica: masquerade for traffic leaving the subnet, and forward accepts so a host whose FORWARD
 * policy is DROP (Docker sets that) still passes the replicas' traffic.
 */

import { commandFailed, type Exec } from "./exec.ts";

function rules(
  subnet: string,
  bridge: string,
): Array<{ table: string; chain: string; args: string[] }> {
  const comment = ["-m", "comment", "--comment", `faasd-ts ${bridge}`];
  return [
    {
      table: "nat",
      chain: "POSTROUTING",
      args: ["-s", subnet, "!", "-d", subnet, ...comment, "-j", "MASQUERADE"],
    },
    { table: "filter", chain: "FORWARD", args: ["-s", subnet, ...comment, "-j", "ACCEPT"] },
    {
      table: "filter",
      chain: "FORWARD",
      args: [
        "-d",
        subnet,
        "-m",
        "conntrack",
        "--ctstate",
        "RELATED,ESTABLISHED",
        ...comment,
        "-j",
        "ACCEPT",
      ],
    },
  ];
}

/** Adds the rules that are missing (idempotent). */
export async function ensureSubnetRules(
  deps: { exec: Exec },
  opts: { subnet: string; bridge: string },
): Promise<void> {
  for (const r of rules(opts.subnet, opts.bridge)) {
    const check = await deps.exec("iptables", ["-w", "-t", r.table, "-C", r.chain, ...r.args]);
    if (check.code === 0) continue;
    // Masquerade goes last in POSTROUTING; forward accepts first in FORWARD, ahead of any DROP.
    const add = r.chain === "FORWARD" ? ["-I", r.chain, "1"] : ["-A", r.chain];
    const res = await deps.exec("iptables", ["-w", "-t", r.table, ...add, ...r.args]);
    if (res.code !== 0) {
      throw commandFailed(`Cannot add the ${r.table} ${r.chain} rule for ${opts.subnet}`, res);
    }
  }
}

/** Removes the rules (for uninstall and tests); missing ones are fine. */
export async function removeSubnetRules(
  deps: { exec: Exec },
  opts: { subnet: string; bridge: string },
): Promise<void> {
  for (const r of rules(opts.subnet, opts.bridge)) {
    while (
      (await deps.exec("iptables", ["-w", "-t", r.table, "-D", r.chain, ...r.args])).code === 0
    ) {
      // A rule added twice (by hand or by two starts racing) is removed twice.
    }
  }
}
