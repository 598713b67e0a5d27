/**
 * `faasd up`: the appliance in one process. This build serves the gateway port with health,
 * system info and namespaces behind basic auth; the provider, proxy, queue and UI fill it in
 * with later issues.
 */

import { machine } from "node:os";
import process from "node:process";
import { BUILD_INFO } from "../build_info.ts";
import { Containerd } from "../containerd/client.ts";
import { PermissionDeniedError } from "../errors.ts";
import { basicAuthChecker } from "../gateway/auth.ts";
import { createGatewayHandler } from "../gateway/router.ts";
import { credentialPaths, ensureCredentials } from "../install/credentials.ts";
import { createLogger } from "../log.ts";
import { serve } from "../platform/http.ts";
import { DEFAULT_NAMESPACE } from "../provider/types.ts";
import { type Command, commandConfig, COMMON_FLAGS, type Flag } from "./command.ts";

const port = (config: "port" | "providerPort", description: string): Flag => ({
  type: "string",
  valueName: "PORT",
  config,
  description,
});

/** Creates the `up` command. */
export function upCommand(): Command {
  const cmd: Command = {
    name: "up",
    summary: "run the appliance: gateway, provider, queue, UI",
    usage: "faasd up [options]",
    description: `
Runs the appliance in the foreground until SIGINT or SIGTERM. On first start it creates the
admin credentials under <data-dir>/secrets and prints how to log in with faas-cli.
This build serves /healthz, /system/info and /system/namespaces; functions arrive with the
provider (issue #4) and the rest of the gateway (issue #5).`,
    flags: {
      ...COMMON_FLAGS,
      port: port("port", "gateway port"),
      "provider-port": port("providerPort", "provider API port (used from issue #4)"),
    },
    run: async (ctx) => {
      const config = commandConfig(cmd, ctx);
      if (process.getuid?.() !== 0) {
        throw new PermissionDeniedError(
          "faasd up must run as root: containerd's socket, runc and CNI networking need it",
        );
      }
      const log = createLogger({ level: config.logLevel }).child({ component: "up" });
      const client = await Containerd.connect({ socket: config.containerdSocket });
      const creds = await ensureCredentials(config.dataDir);
      const stop = new AbortController();
      const onSignal = (signal: string) => {
        log.info("stopping", { signal });
        stop.abort();
      };
      process.once("SIGINT", () => onSignal("SIGINT"));
      process.once("SIGTERM", () => onSignal("SIGTERM"));
      try {
        const handler = createGatewayHandler({
          checkAuth: basicAuthChecker(creds),
          info: { release: BUILD_INFO.version, sha: BUILD_INFO.sha, arch: machine() },
          listNamespaces: async () => {
            const all = await client.namespaces.list();
            const labelled = all.filter((n) => ["1", "true"].includes(n.labels.openfaas ?? ""));
            return [...new Set([DEFAULT_NAMESPACE, ...labelled.map((n) => n.name)])];
          },
          log: log.child({ component: "gateway" }),
        });
        const server = await serve(handler, { port: config.port, signal: stop.signal });
        log.info("gateway listening", {
          port: server.port,
          containerd: client.serverVersion.version,
          dataDir: config.dataDir,
        });
        const passwordFile = credentialPaths(config.dataDir).password;
        ctx.io.err(
          `\nfaasd-ts is up on port ${server.port}. Log in with:\n` +
            `  cat ${passwordFile} | faas-cli login --username ${creds.user} --password-stdin ` +
            `--gateway http://127.0.0.1:${server.port}\n\n`,
        );
        await server.finished;
        return 0;
      } finally {
        client.close();
      }
    },
  };
  return cmd;
}
