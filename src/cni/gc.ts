/**
 * Network garbage collection for replicas that are gone without a DEL (a crash of the appliance,
 * a reboot, a failed cleanup): cached attachments are deleted through the plugins, then leftover
 * leases, cache entries, masquerade rules, forward rules and netns are removed.
 */

import type { Logger } from "../log.ts";
import type { Exec } from "./exec.ts";
import { pruneForwardRules, pruneMasquerade } from "./iptables.ts";
import { type Lease, listLeases, releaseStaleLeases } from "./leases.ts";
import { pruneNetns } from "./netns.ts";
import type { Cni } from "./plugins.ts";

/** What {@link collectNetworkGarbage} needs to know about the network. */
export interface NetworkGcOptions {
  ipamDir: string;
  cacheDir: string;
  networkName: string;
  subnet: string;
  /** Replica netns are named `<netnsPrefix><containerId>`. */
  netnsPrefix: string;
  /** Container IDs whose networking stays. */
  live: ReadonlySet<string>;
  /** Only leases written before this time are released; defaults to the time of the call. */
  before?: Date;
}

/** What {@link collectNetworkGarbage} removed. */
export interface NetworkGcReport {
  /** Cached attachments detached through the plugins. */
  detached: string[];
  leases: Lease[];
  cache: string[];
  masquerade: string[];
  forwardRules: string[];
  netns: string[];
}

/**
 * Releases everything of containers not in `live`; failures of a single DEL are logged and the
 * remaining steps still run, so one broken entry cannot keep the rest from being collected.
 */
export async function collectNetworkGarbage(
  deps: { cni: Cni; exec: Exec; log: Logger },
  opts: NetworkGcOptions,
): Promise<NetworkGcReport> {
  const before = opts.before ?? new Date();
  const log = deps.log.child({ component: "cni-gc" });
  const detached: string[] = [];
  // DEL first, while the netns still exists: bridge reads the addresses to unmasquerade from it.
  for (const id of await deps.cni.cachedIds()) {
    if (opts.live.has(id)) continue;
    try {
      await deps.cni.del(id);
      detached.push(id);
    } catch (err) {
      log.warn("cannot detach a stale CNI attachment", { containerId: id, err });
    }
  }
  const released = await releaseStaleLeases({ ...opts, before });
  const masquerade = await pruneMasquerade(deps, opts);
  const keep = new Set((await listLeases(opts.ipamDir, opts.networkName)).map((l) => l.ip));
  const forwardRules = await pruneForwardRules(deps, { subnet: opts.subnet, keep });
  const netns = await pruneNetns(deps, opts.netnsPrefix, opts.live);
  const report = { detached, ...released, masquerade, forwardRules, netns };
  if (Object.values(report).some((v) => v.length > 0)) {
    log.info("released stale networking", report);
  }
  return report;
}
