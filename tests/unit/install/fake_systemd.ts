/** An in-memory stand-in for systemctl that records every call. */

import type { Systemd } from "../../../src/install/systemd.ts";

export function fakeSystemd(active: Set<string> = new Set()): Systemd & { calls: string[] } {
  const calls: string[] = [];
  const record = (call: string) => {
    calls.push(call);
    return Promise.resolve();
  };
  return {
    calls,
    daemonReload: () => record("daemon-reload"),
    enable: (u) => record(`enable ${u}`),
    disableNow: (u) => {
      active.delete(u);
      return record(`disable --now ${u}`);
    },
    start: (u) => {
      active.add(u);
      return record(`start ${u}`);
    },
    restart: (u) => record(`restart ${u}`),
    isActive: (u) => Promise.resolve(active.has(u)),
  };
}
