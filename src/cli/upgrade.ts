/** `faasd upgrade FILE`: swaps in a new faasd binary and restarts the service. */

import { createExec } from "../cni/exec.ts";
import { UsageError } from "../errors.ts";
import { upgrade } from "../install/upgrade.ts";
import type { Command } from "./command.ts";
import { hostSystemd, requireRoot, ROOT_FLAG, rootOf } from "./install.ts";

/** Creates the `upgrade` command. */
export function upgradeCommand(): Command {
  return {
    name: "upgrade",
    summary: "replace the installed faasd with a new binary and restart it",
    usage: "faasd upgrade FILE [--root DIR]",
    description: `
Checks that FILE is a faasd binary that runs here ("FILE version --json"), replaces
/usr/local/bin/faasd with it in one rename, and restarts faasd.service (and
faasd-provider.service) if running. Deployed functions keep running and are re-adopted.`,
    flags: { root: ROOT_FLAG },
    positionals: true,
    run: async (ctx) => {
      const [file, ...rest] = ctx.positionals;
      if (file === undefined) throw new UsageError("missing FILE, the new faasd binary");
      if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
      const root = rootOf(ctx);
      if (root === "/") requireRoot("upgrade");
      const exec = createExec();
      const { systemd, note } = await hostSystemd(root, exec);
      const r = await upgrade({ exec, systemd }, { root, file });
      const from = r.from ? `${r.from.version} (${r.from.sha})` : "an unknown version";
      const lines = [`faasd upgrade: ${r.binary} ${from} → ${r.to.version} (${r.to.sha})`];
      lines.push(...r.restarted.map((u) => `  restarted ${u}`));
      if (note) lines.push(`note: ${note}`);
      ctx.io.out(lines.join("\n") + "\n");
      return 0;
    },
  };
}
