/**
 * What `faasd up` and `faasd provider` share: connect to containerd, create the credentials,
 * start the provider, serve HTTP until SIGINT or SIGTERM.
 */

import { machine } from "node:os";
import process from "node:process";
import { BUILD_INFO } from "../build_info.ts";
import type { ResolvedConfig } from "../config/config.ts";
import { Containerd } from "../containerd/client.ts";
import { PermissionDeniedError } from "../errors.ts";
import { basicAuthChecker, unauthorized } from "../gateway/auth.ts";
import { startGateway } from "../gateway/gateway.ts";
import { createImageService } from "../images/service.ts";
import { credentialPaths, ensureCredentials } from "../install/credentials.ts";
import { checkPrerequisites } from "../install/prerequisites.ts";
import { createLogger } from "../log.ts";
import { serve } from "../platform/http.ts";
import { startProvider } from "../provider/provider.ts";
import { resolveOciRuntime } from "../provider/oci_runtime.ts";
import { parseDuration } from "../provider/scale_labels.ts";
import { loadServices, servicesNamespace, startServices } from "../supervisor/services.ts";
import type { Io } from "./command.ts";

/** Runs the appliance in the foreground; resolves with the exit code after a signal. */
export async function runAppliance(
  config: Readonly<ResolvedConfig>,
  io: Io,
  mode: "up" | "provider",
): Promise<number> {
  if (process.getuid?.() !== 0) {
    throw new PermissionDeniedError(
      `faasd ${mode} must run as root: containerd's socket, runc and CNI networking need it`,
    );
  }
  const log = createLogger({ level: config.logLevel }).child({ component: mode });
  // A bad docker-compose.yaml stops `up` before anything starts.
  const services = mode === "up" ? await loadServices(config.dataDir) : [];
  const servicesNs = servicesNamespace(process.env.FAASD_SERVICES_NAMESPACE);
  const runtime = resolveOciRuntime(config.runtime, { path: process.env.PATH });
  if (runtime.note) log.info(runtime.note);
  const containerd = await Containerd.connect({ socket: config.containerdSocket }).catch(
    async (err) => {
      // A host without containerd, runc or the CNI plugins is told what to install; otherwise
      // the connection error (not running, wrong socket) stands.
      await checkPrerequisites({ path: (process.env.PATH ?? "/usr/sbin:/usr/bin").split(":") });
      throw err;
    },
  );
  const stop = new AbortController();
  const onSignal = (signal: string) => {
    log.info("stopping", { signal });
    stop.abort();
  };
  process.once("SIGINT", () => onSignal("SIGINT"));
  process.once("SIGTERM", () => onSignal("SIGTERM"));
  try {
    const creds = await ensureCredentials(config.dataDir);
    const checkAuth = basicAuthChecker(creds);
    const images = createImageService({ containerd, dataDir: config.dataDir, log });
    const provider = await startProvider({
      runtime: runtime.options,
      containerd,
      images,
      dataDir: config.dataDir,
      bridge: config.bridge,
      subnet: config.subnet,
      dns: config.dns ? config.dns.split(",") : [],
      upstreamTimeoutMs: parseDuration(config.upstreamTimeout),
      info: { release: BUILD_INFO.version, sha: BUILD_INFO.sha, arch: machine() },
      log,
    });
    const supervisor = mode === "up"
      ? await startServices({
        containerd,
        images,
        conflist: provider.cni.conflist,
        log,
        runtime: runtime.options,
        owner: provider.owner,
      }, {
        dataDir: config.dataDir,
        subnet: config.subnet,
        namespace: servicesNs,
        services,
        signal: stop.signal,
      }).catch((err) => {
        provider.close();
        throw err;
      })
      : undefined;
    try {
      // The provider port speaks the faas-provider API with the same credentials.
      const providerHandler = (req: Request) => {
        const path = new URL(req.url).pathname;
        if (path.startsWith("/system/") && !checkAuth(req.headers.get("authorization"))) {
          return Promise.resolve(unauthorized());
        }
        return provider.handler(req);
      };
      const servers = [
        await serve(providerHandler, { port: config.providerPort, signal: stop.signal }),
      ];
      let gateway: Awaited<ReturnType<typeof startGateway>> | undefined;
      if (mode === "up") {
        gateway = await startGateway({ config, provider, checkAuth, log });
        servers.unshift(await gateway.listen({ port: config.port, signal: stop.signal }));
      }
      const [main] = servers;
      log.info(mode === "up" ? "gateway listening" : "provider listening", {
        port: main.port,
        providerPort: servers.at(-1)!.port,
        containerd: containerd.serverVersion.version,
        runtime: runtime.name,
        dataDir: config.dataDir,
      });
      io.err(
        `\nfaasd-ts is up on port ${main.port}. Log in with:\n` +
          `  cat ${
            credentialPaths(config.dataDir).password
          } | faas-cli login --username ${creds.user} ` +
          `--password-stdin --gateway http://127.0.0.1:${main.port}\n\n`,
      );
      await Promise.all(servers.map((s) => s.finished));
      await gateway?.close();
      log.info("servers stopped");
    } finally {
      await supervisor?.stop();
      provider.close();
    }
  } finally {
    await containerd.close();
  }
  // Exit now rather than when the event loop drains: a library's timer (the NATS client's, or
  // grpc-js's before our own gRPC client) once held the process for another 30 s.
  process.exit(0);
}
