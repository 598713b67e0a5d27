/** containerd's Version service: the cheapest call that proves the daemon answers. */

import type { CallOptions, Rpc } from "./rpc.ts";

const SVC = "containerd.services.version.v1.Version";

/** The daemon's version and revision as it reports them. */
export interface ContainerdVersion {
  version: string;
  revision: string;
}

/** Asks containerd for its version. */
export function getVersion(
  rpc: Rpc,
  opts: Pick<CallOptions, "signal" | "timeoutMs"> = {},
): Promise<ContainerdVersion> {
  return rpc.unary<ContainerdVersion>(SVC, "Version", {}, opts);
}
