/** systemctl, behind a narrow interface so install, uninstall and upgrade can be unit-tested. */

import { stat } from "node:fs/promises";
import { type Exec, run } from "../cni/exec.ts";

/** The systemctl operations install, uninstall and upgrade use. */
export interface Systemd {
  daemonReload(): Promise<void>;
  enable(unit: string): Promise<void>;
  /** `disable --now`: stops the unit and removes its boot links. */
  disableNow(unit: string): Promise<void>;
  start(unit: string): Promise<void>;
  restart(unit: string): Promise<void>;
  isActive(unit: string): Promise<boolean>;
}

/** Whether systemd manages this host (sd_booted(3): /run/systemd/system exists). */
export async function systemdBooted(runDir = "/run/systemd/system"): Promise<boolean> {
  return await stat(runDir).then((s) => s.isDirectory(), () => false);
}

/** The real {@link Systemd}, running `systemctl`. */
export function createSystemctl(exec: Exec): Systemd {
  const ctl = async (action: string, ...args: string[]) => {
    await run(exec, `systemctl ${[action, ...args].join(" ")} failed`, "systemctl", [
      action,
      ...args,
    ], { timeoutMs: 120_000 });
  };
  return {
    daemonReload: () => ctl("daemon-reload"),
    enable: (unit) => ctl("enable", "--quiet", unit),
    disableNow: (unit) => ctl("disable", "--now", "--quiet", unit),
    start: (unit) => ctl("start", unit),
    restart: (unit) => ctl("restart", unit),
    isActive: async (unit) =>
      (await exec("systemctl", ["is-active", "--quiet", unit], { timeoutMs: 30_000 })).code === 0,
  };
}
