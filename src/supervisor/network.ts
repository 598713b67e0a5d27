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

/** The functions' conflist with the `ips` and `mac` capabilities on its IPAM-carrying plugins. */
export function serviceConflist(conflist: Conflist): Conflist {
  return {
    ...conflist,
    plugins: conflist.plugins.map((p) =>
      p.ipam ? { ...p, capabilities: { ...p.capabilities, ips: true, mac: true } } : p
    ),
  };
}

/**
 * A Network for one service that asks for the address and MAC of its previous attachment and
 * falls back to any free address. The MAC matters as much as the IP: neighbours (the host, the
 * replicas) cache the old IP-to-MAC mapping, and a restarted service with a new MAC would be
 * unreachable until that ARP entry goes stale (some 20 s, measured here).
 */
export function serviceNetwork(
  cni: Pick<Cni, "add" | "del">,
  prefixLength: number,
  log: Logger,
): Network & { last?: { ip: string; mac?: string } } {
  const net: Network & { last?: { ip: string; mac?: string } } = {
    add: async (id, netns) => {
      let attachment;
      if (net.last) {
        const { ip, mac } = net.last;
        try {
          attachment = await cni.add(id, netns, {
            runtimeConfig: { ips: [`${ip}/${prefixLength}`], ...(mac ? { mac } : {}) },
          });
        } catch (err) {
          log.info("previous service address is taken, using another", {
            id,
            ip,
            err: String(err),
          });
        }
      }
      attachment ??= await cni.add(id, netns);
      const iface = attachment.raw.interfaces?.find((i) => i.sandbox !== undefined && i.mac);
      net.last = { ip: attachment.ip, mac: iface?.mac };
      return attachment;
    },
    del: (id, netns) => cni.del(id, netns),
  };
  return net;
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
