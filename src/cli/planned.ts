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

/** `faasd install` (issue #6). */
export function installCommand(): Command {
  return planned({
    name: "install",
    summary: "install faasd as a systemd service on this host",
    usage: "faasd install [options]",
    description:
      "Creates the data dir, credentials, CNI config and systemd units, then starts them.",
    issue: 6,
  });
}
