/** `faasd uninstall`: removes what `faasd install` put on the host; keeps data unless --purge. */

import { createExec } from "../cni/exec.ts";
import { uninstall } from "../install/uninstall.ts";
import { type Command, commandConfig, COMMON_FLAGS } from "./command.ts";
import { hostSystemd, requireRoot, ROOT_FLAG, rootOf } from "./install.ts";

/** Creates the `uninstall` command. */
export function uninstallCommand(): Command {
  const cmd: Command = {
    name: "uninstall",
    summary: "stop and remove the faasd service from this host",
    usage: "faasd uninstall [--root DIR] [--purge] [options]",
    description: `
Stops and disables faasd.service and faasd-provider.service and removes them, the program at
/usr/local/bin/faasd (and /usr/local/lib/faasd) and /etc/sysctl.d/90-faasd.conf. The data dir
(credentials, secrets, state) is kept unless --purge. Function containers in containerd are
left alone: remove functions first (faas-cli remove) if you want them gone.`,
    flags: {
      "data-dir": COMMON_FLAGS["data-dir"],
      root: ROOT_FLAG,
      purge: { type: "boolean", description: "also delete the data dir" },
    },
    run: async (ctx) => {
      const config = commandConfig(cmd, ctx);
      const root = rootOf(ctx);
      if (root === "/") requireRoot("uninstall");
      const { systemd, note } = await hostSystemd(root, createExec());
      const report = await uninstall({ systemd }, {
        root,
        dataDir: config.dataDir,
        purge: ctx.values.purge === true,
      });
      const lines = [
        ...report.stopped.map((u) => `  stopped   ${u}`),
        ...report.removed.map((p) => `  removed   ${p}`),
        ...report.kept.map((p) => `  kept      ${p} (delete it with --purge)`),
      ];
      if (note) lines.push(`note: ${note}`);
      ctx.io.out(`faasd uninstall:\n${lines.join("\n") || "  nothing was installed"}\n`);
      return 0;
    },
  };
  return cmd;
}
