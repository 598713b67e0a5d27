/** `faasd provider`: the faas-provider API alone, for an OpenFaaS gateway in front of it. */

import { runAppliance } from "./appliance.ts";
import { type Command, commandConfig, COMMON_FLAGS, NETWORK_FLAGS, portFlag } from "./command.ts";

/** Creates the `provider` command. */
export function providerCommand(): Command {
  const cmd: Command = {
    name: "provider",
    summary: "serve the faas-provider API alone (functions on containerd)",
    usage: "faasd provider [options]",
    description: `
Serves the faas-provider HTTP API for functions on containerd on --provider-port, with basic
auth from <data-dir>/secrets/basic-auth-*, until SIGINT or SIGTERM.`,
    flags: {
      ...COMMON_FLAGS,
      ...NETWORK_FLAGS,
      "provider-port": portFlag("providerPort", "provider API port"),
    },
    run: (ctx) => runAppliance(commandConfig(cmd, ctx), ctx.io, "provider"),
  };
  return cmd;
}
