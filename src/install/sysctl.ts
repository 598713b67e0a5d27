/**
 * IPv4 forwarding, which function replicas need to reach beyond the bridge: a drop-in under
 * /etc/sysctl.d keeps it across reboots, and writing /proc/sys applies it now.
 */

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** The sysctl.d drop-in install writes. */
export const SYSCTL_CONF =
  `# Written by \`faasd install\`: function replicas reach other hosts through this one.
net.ipv4.ip_forward = 1
`;

/** Sets net.ipv4.ip_forward to 1 under `procSys` (normally /proc/sys); true when it was off. */
export async function applyIpForward(procSys = "/proc/sys"): Promise<boolean> {
  const path = join(procSys, "net/ipv4/ip_forward");
  if ((await readFile(path, "utf8")).trim() === "1") return false;
  await writeFile(path, "1\n");
  return true;
}
