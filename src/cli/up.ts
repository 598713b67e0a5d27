/** `faasd up`: the appliance in one process — the gateway, and the provider API next to it. */

import { runAppliance } from "./appliance.ts";
import {
  type Command,
  commandConfig,
  COMMON_FLAGS,
  GATEWAY_FLAGS,
  NETWORK_FLAGS,
  portFlag,
} from "./command.ts";

/** Creates the `up` command. */
export function upCommand(): Command {
  const cmd: Command = {
    name: "up",
    summary: "run the appliance: gateway, provider, queue, UI",
    usage: "faasd up [options]",
    description: `
Runs the appliance in the foreground until SIGINT or SIGTERM: the gateway on --port and the
provider API on --provider-port. On first start it creates the admin credentials under
<data-dir>/secrets and prints how to log in with faas-cli. Functions deployed before are
re-adopted, running ones kept as they are.`,
    flags: {
      ...COMMON_FLAGS,
      ...NETWORK_FLAGS,
      ...GATEWAY_FLAGS,
      port: portFlag("port", "gateway port"),
      "provider-port": portFlag("providerPort", "provider API port"),
    },
    run: (ctx) => runAppliance(commandConfig(cmd, ctx), ctx.io, "up"),
  };
  return cmd;
}
