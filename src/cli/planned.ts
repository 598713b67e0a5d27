/**
 * Subcommands whose flags are settled but whose work lands in a later issue. They answer
 * `--help` now and otherwise say plainly that this build cannot do it yet.
 */

import { NotImplementedError } from "../errors.ts";
import { type Command, commandConfig, COMMON_FLAGS, type Flag } from "./command.ts";

function planned(
  c: Omit<Command, "run" | "flags"> & { flags?: Record<string, Flag>; issue: number },
): Command {
  const cmd: Command = {
    ...c,
    flags: { ...COMMON_FLAGS, ...c.flags },
    run: (ctx) => {
      commandConfig(cmd, ctx);
      throw new NotImplementedError(
        `"faasd ${c.name}" is not in this build yet (planned in issue #${c.issue})`,
      );
    },
  };
  return cmd;
}

/** `faasd service` (issue #6). */
export function serviceCommand(): Command {
  return planned({
    name: "service",
    summary: "list, follow the logs of, or restart the extra services",
    usage: "faasd service (ls | logs NAME [-f] | restart NAME) [options]",
    description: "Manages the services started from <data-dir>/docker-compose.yaml.",
    flags: { follow: { type: "boolean", short: "f", description: "follow the logs" } },
    positionals: true,
    issue: 6,
  });
}
