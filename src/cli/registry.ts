/**
 * `faasd registry`: stores or removes registry credentials in `<data-dir>/.docker/config.json`,
 * where image pulls look for them.
 */

import { FailedPreconditionError, InvalidArgumentError, UsageError } from "../errors.ts";
import {
  dockerConfigPath,
  normalizeRegistryHost,
  removeLogin,
  saveLogin,
} from "../images/docker_config.ts";
import { type Command, commandConfig, type CommandContext, COMMON_FLAGS } from "./command.ts";

/** Creates the `registry` command (login and logout). */
export function registryCommand(): Command {
  const cmd: Command = {
    name: "registry",
    summary: "log in to or out of a container registry",
    usage: "faasd registry (login HOST -u USER --password-stdin | logout HOST) [options]",
    description: `
Stores registry credentials in <data-dir>/.docker/config.json (mode 0600), where image pulls
look for them. HOST is a registry such as ghcr.io or 10.0.0.5:5000; docker.io, index.docker.io
and https://index.docker.io/v1/ all mean Docker Hub.
  login HOST    save USER and the password read from stdin, e.g.
                  echo "$TOKEN" | faasd registry login ghcr.io -u me --password-stdin
                The credentials are not checked against the registry here; a pull that
                uses them says so if the registry refuses them.
  logout HOST   remove the saved credentials for HOST`,
    flags: {
      "data-dir": COMMON_FLAGS["data-dir"],
      username: { type: "string", short: "u", valueName: "USER", description: "user name" },
      "password-stdin": {
        type: "boolean",
        description: "read the password from stdin (it is never taken as a flag)",
      },
    },
    positionals: true,
    run: async (ctx) => {
      const [what, host, ...rest] = ctx.positionals;
      if (what !== "login" && what !== "logout") {
        throw new UsageError(what ? `unknown registry subcommand "${what}"` : "missing subcommand");
      }
      if (host === undefined) throw new UsageError(`${what} needs a registry HOST`);
      if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
      const registry = usageHost(host);
      const { dataDir } = commandConfig(cmd, ctx);
      const path = dockerConfigPath(dataDir);
      if (what === "logout") {
        if (ctx.values.username !== undefined || ctx.values["password-stdin"]) {
          throw new UsageError("logout takes neither -u nor --password-stdin");
        }
        const removed = await removeLogin(dataDir, registry);
        ctx.io.out(
          removed
            ? `Removed credentials for ${registry} from ${path}\n`
            : `No credentials for ${registry} in ${path}; nothing to remove\n`,
        );
        return 0;
      }
      const username = ctx.values.username as string | undefined;
      if (!username) throw new UsageError("login needs a user name: -u USER");
      if (!ctx.values["password-stdin"]) {
        throw new UsageError(
          "login reads the password from stdin: add --password-stdin (passwords are never taken as flags)",
        );
      }
      const password = await readPassword(ctx);
      if (password === "") {
        throw new InvalidArgumentError(
          `cannot log in to ${registry}: the password read from stdin is empty`,
        );
      }
      await saveLogin(dataDir, registry, username, password);
      ctx.io.out(`Login Succeeded: credentials for ${registry} saved in ${path}\n`);
      return 0;
    },
  };
  return cmd;
}

function usageHost(host: string): string {
  try {
    return normalizeRegistryHost(host);
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw new UsageError(err.message, { cause: err });
    throw err;
  }
}

// Reads stdin to its end and drops one trailing newline (the one `echo` adds).
async function readPassword(ctx: CommandContext): Promise<string> {
  if (!ctx.io.readStdin) {
    throw new FailedPreconditionError("cannot read the password: this process has no stdin");
  }
  const text = new TextDecoder().decode(await ctx.io.readStdin());
  return text.replace(/\r?\n$/, "");
}
