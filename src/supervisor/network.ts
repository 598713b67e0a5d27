/**
 * Services join the functions' CNI network (same bridge, same host-local range, same result
 * cache), through a conflist that also lets the supervisor ask host-local for a given address:
 * a restarted service gets its previous IP back when it is still free, so the hosts entry
 * functions resolve stays right.
 */

import type { Conflist } from "../cni/conflist.ts";
import { createExec } from "../cni/exec.ts";
import { Cni } from "../cni/plugins.ts";
import type { Logger } from "../log.ts";
import type { Network } from "../provider/replica.ts";

/** The functions' conflist with the `ips` capability on its IPAM-carrying plugins. */
export function serviceConflist(conflist: Conflist): Conflist {
  return {
    ...conflist,
    plugins: conflist.plugins.map((p) =>
      p.ipam ? { ...p, capabilities: { ...p.capabilities, ips: true } } : p
    ),
  };
}

/** A Network for one service that prefers `preferredIp()` and falls back to any free address. */
export function serviceNetwork(
  cni: Pick<Cni, "add" | "del">,
  prefixLength: number,
  preferredIp: () => string | undefined,
  log: Logger,
): Network {
  return {
    add: async (id, netns) => {
      const ip = preferredIp();
      if (ip) {
        try {
          return await cni.add(id, netns, { runtimeConfig: { ips: [`${ip}/${prefixLength}`] } });
        } catch (err) {
          log.info("previous service IP is taken, using another", { id, ip, err: String(err) });
        }
      }
      return await cni.add(id, netns);
    },
    del: (id, netns) => cni.del(id, netns),
  };
}

/** The CNI runner for services over the functions' network and cache. */
export function createServiceCni(
  opts: { conflist: Conflist; cacheDir: string; log: Logger },
): Cni {
  return new Cni({
    conflist: serviceConflist(opts.conflist),
    cacheDir: opts.cacheDir,
    exec: createExec(),
    log: opts.log,
    // runc creates the network namespace with lo up (as for replicas).
    loopback: false,
  });
}
