/** `faasd version`: the build's version and git commit, and containerd's when it answers. */

import { BUILD_INFO } from "../build_info.ts";
import type { Command } from "./command.ts";

/** Creates the `version` command. */
export function versionCommand(): Command {
  return {
    name: "version",
    summary: "print the version and git commit of this build",
    usage: "faasd version [--json]",
    description: "Prints the version and the git commit this binary was built from.",
    flags: { json: { type: "boolean", description: "print JSON instead of text" } },
    run: ({ values, io }) => {
      if (values.json) {
        io.out(JSON.stringify({ version: BUILD_INFO.version, sha: BUILD_INFO.sha }) + "\n");
      } else {
        io.out(`faasd-ts version ${BUILD_INFO.version} (commit ${BUILD_INFO.sha})\n`);
      }
      return Promise.resolve(0);
    },
  };
}
