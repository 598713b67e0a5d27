/**
 * `faasd service`: lists the extra services of docker-compose.yaml, prints or follows their logs,
 * and restarts one. It reads containerd and the data dir, so it works from another process
 * while `faasd up` runs (FAASD_SERVICES_NAMESPACE selects another namespace than `openfaas`, as
 * for `up`).
 */

import { stat } from "node:fs/promises";
import { join } from "node:path";
import { Containerd } from "../containerd/client.ts";
import { NotFoundError, UsageError } from "../errors.ts";
import { providerPaths } from "../provider/provider.ts";
import { readServiceLogs } from "../supervisor/logs.ts";
import { restartService } from "../supervisor/restart.ts";
import { loadServices, servicesNamespace } from "../supervisor/services.ts";
import { listServices, renderServiceTable } from "../supervisor/status.ts";
import { type Command, commandConfig, COMMON_FLAGS } from "./command.ts";

/** Creates the `service` command. */
export function serviceCommand(): Command {
  const cmd: Command = {
    name: "service",
    summary: "list, follow the logs of, or restart the extra services",
    usage: "faasd service (ls | logs NAME [-f] | restart NAME) [options]",
    description: `
Manages the services "faasd up" runs from <data-dir>/docker-compose.yaml.
  ls             each service's image, status, pid, IP and restart count
  logs NAME      the service's output (-f: keep following it)
  restart NAME   stop the service's task; the running appliance starts it again at once
The namespace is "openfaas" unless FAASD_SERVICES_NAMESPACE names another.`,
    flags: {
      ...COMMON_FLAGS,
      follow: { type: "boolean", short: "f", description: "follow the logs" },
    },
    positionals: true,
    run: async (ctx) => {
      const { positionals, io } = ctx;
      const [what, ...args] = positionals;
      const want = (n: number) => {
        if (args.length < n) throw new UsageError(`"service ${what}" needs a service name`);
        if (args.length > n) throw new UsageError(`unexpected argument "${args[n]}"`);
      };
      if (what === "ls") want(0);
      else if (what === "logs" || what === "restart") want(1);
      else {
        throw new UsageError(what ? `unknown service subcommand "${what}"` : "missing subcommand");
      }
      if (ctx.values.follow && what !== "logs") throw new UsageError(`-f is only for "logs"`);
      const config = commandConfig(cmd, ctx);
      const namespace = servicesNamespace(ctx.env.FAASD_SERVICES_NAMESPACE);
      const paths = providerPaths(config.dataDir);
      if (what === "logs") {
        const name = args[0];
        const known = (await loadServices(config.dataDir)).some((s) => s.name === name);
        const dir = await stat(join(paths.logDir, namespace, name)).then(
          () => true,
          () => false,
        );
        if (!known && !dir) {
          throw new NotFoundError(
            `service "${name}" is not in docker-compose.yaml and has no logs`,
          );
        }
        await readServiceLogs({
          logDir: paths.logDir,
          namespace,
          name,
          follow: ctx.values.follow === true,
          write: (text) => text && io.out(text),
        });
        return 0;
      }
      const client = await Containerd.connect({ socket: config.containerdSocket });
      try {
        if (what === "ls") {
          const rows = await listServices(client, {
            namespace,
            cacheDir: paths.cniCache,
            configured: await loadServices(config.dataDir),
          });
          io.out(renderServiceTable(rows));
        } else {
          const pid = await restartService(client, { namespace, name: args[0] });
          io.out(`service "${args[0]}" restarted (pid ${pid})\n`);
        }
      } finally {
        await client.close();
      }
      return 0;
    },
  };
  return cmd;
}
