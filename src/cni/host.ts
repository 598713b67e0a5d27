/**
 * Host prerequisites and teardown for the replicas' network: IP forwarding, the bridge, and the
 * iptables chains the plugins leave once the last replica is gone.
 */

import { commandFailed, type Exec, run } from "./exec.ts";
import { validateBridgeName } from "./conflist.ts";
import { pruneMasquerade, removeFirewallChains } from "./iptables.ts";

/** Turns on IPv4 forwarding (`sysctl -w net.ipv4.ip_forward=1`); reports whether it was off. */
export async function enableIpForward(deps: { exec: Exec }): Promise<{ changed: boolean }> {
  const current = await run(deps.exec, "Cannot read net.ipv4.ip_forward", "sysctl", [
    "-n",
    "net.ipv4.ip_forward",
  ]);
  if (current.trim() === "1") return { changed: false };
  await run(deps.exec, "Cannot enable IPv4 forwarding", "sysctl", ["-w", "net.ipv4.ip_forward=1"]);
  return { changed: true };
}

/** Reports whether a network interface called `name` exists (`ip link show`). */
export async function linkExists(deps: { exec: Exec }, name: string): Promise<boolean> {
  validateBridgeName(name);
  const r = await deps.exec("ip", ["link", "show", "dev", name]);
  if (r.code === 0) return true;
  if (/does not exist|Cannot find device/i.test(r.stderr)) return false;
  throw commandFailed(`Cannot look up interface "${name}"`, r);
}

/** Deletes the bridge (`ip link delete`), which takes its address and route along; false when it did not exist. */
export async function removeBridge(deps: { exec: Exec }, name: string): Promise<boolean> {
  validateBridgeName(name);
  const r = await deps.exec("ip", ["link", "delete", "dev", name, "type", "bridge"]);
  if (r.code === 0) return true;
  if (/does not exist|Cannot find device/i.test(r.stderr)) return false;
  throw commandFailed(`Cannot delete bridge "${name}"`, r);
}

/** What {@link teardownNetwork} removed. */
export interface Teardown {
  bridge: boolean;
  /** Containers whose leftover masquerade rules were removed. */
  masquerade: string[];
  firewallChains: boolean;
}

/**
 * Removes what the network leaves on the host once no replica uses it (uninstall, tests): the
 * bridge, leftover masquerade chains, and the firewall plugin's shared chains when nothing else
 * uses them. Left in place: the `ip_forward` setting, the (empty) nat and filter tables, and
 * lease files (see releaseStaleLeases).
 */
export async function teardownNetwork(
  deps: { exec: Exec },
  opts: { bridge: string; networkName: string },
): Promise<Teardown> {
  const masquerade = await pruneMasquerade(deps, {
    networkName: opts.networkName,
    live: new Set(),
  });
  const bridge = await removeBridge(deps, opts.bridge);
  const firewallChains = await removeFirewallChains(deps);
  return { bridge, masquerade, firewallChains };
}
