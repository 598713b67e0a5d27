/**
 * `faasd containerd`: checks that containerd answers through our own client and shows what it
 * holds — the first thing to run when something does not work.
 */

import { Containerd } from "../containerd/client.ts";
import { UsageError } from "../errors.ts";
import { type Command, commandConfig, COMMON_FLAGS } from "./command.ts";

/** Creates the `containerd` diagnostics command. */
export function containerdCommand(): Command {
  const cmd: Command = {
    name: "containerd",
    summary: "check containerd: its version, or its namespaces",
    usage: "faasd containerd (version | namespaces) [options]",
    description: `
Talks to containerd over its gRPC socket with faasd's own client.
  version      containerd's version and revision
  namespaces   every containerd namespace with its labels`,
    flags: {
      "containerd-socket": COMMON_FLAGS["containerd-socket"],
      json: { type: "boolean", description: "print JSON instead of text" },
    },
    positionals: true,
    run: async (ctx) => {
      const { values, positionals, io } = ctx;
      const [what, ...rest] = positionals;
      if (what !== "version" && what !== "namespaces") {
        throw new UsageError(
          what ? `unknown containerd subcommand "${what}"` : "missing subcommand",
        );
      }
      if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
      const config = commandConfig(cmd, ctx);
      const client = await Containerd.connect({ socket: config.containerdSocket });
      try {
        if (what === "version") {
          const v = client.serverVersion;
          io.out(
            values.json ? JSON.stringify(v) + "\n" : `containerd ${v.version} (${v.revision})\n`,
          );
        } else {
          const list = await client.namespaces.list();
          if (values.json) io.out(JSON.stringify(list) + "\n");
          for (const ns of values.json ? [] : list) {
            const labels = Object.entries(ns.labels).map(([k, v]) => `${k}=${v}`).join(",");
            io.out(labels ? `${ns.name}\t${labels}\n` : `${ns.name}\n`);
          }
        }
      } finally {
        await client.close();
      }
      return 0;
    },
  };
  return cmd;
}
