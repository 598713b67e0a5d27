/**
 * Removes one replica's masquerade rule and chain. The bridge plugin's DEL finds the addresses to
 * un-masquerade inside the network namespace; ours goes away with the replica's process, usually
 * before DEL runs, so the rule and chain are removed here by their known names.
 */

import type { Exec } from "./exec.ts";
import { masqChainName, ruleComment } from "./iptables.ts";

/** Deletes the POSTROUTING rule for `ip` and the container's CNI chain; missing ones are fine. */
export async function removeMasquerade(
  deps: { exec: Exec },
  opts: { networkName: string; containerId: string; ip: string },
): Promise<void> {
  const chain = masqChainName(opts.networkName, opts.containerId);
  const comment = ruleComment(opts.networkName, opts.containerId);
  const iptables = (args: string[]) =>
    deps.exec("iptables", ["-w", "-t", "nat", ...args]).catch(() => undefined);
  await iptables([
    "-D",
    "POSTROUTING",
    "-s",
    `${opts.ip}/32`,
    "-m",
    "comment",
    "--comment",
    comment,
    "-j",
    chain,
  ]);
  await iptables(["-F", chain]);
  await iptables(["-X", chain]);
}
