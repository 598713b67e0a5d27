/**
 * Composition of the gateway inside `faasd up`: the synchronous proxy, and the parts issue #5
 * adds around it (async queue and worker, metrics, autoscaler, cron, UI). Each part is built
 * here and handed to the router; `close()` stops their background work.
 */

import { join } from "node:path";
import type { ResolvedConfig } from "../config/config.ts";
import { InvalidArgumentError, NotFoundError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { startProvider } from "../provider/provider.ts";
import { createIntake } from "../queue/intake.ts";
import { createJournalQueue } from "../queue/journal.ts";
import type { QueueBackend } from "../queue/types.ts";
import { startWorker } from "../queue/worker.ts";
import { createGatewayMetrics } from "../metrics/gateway_metrics.ts";
import { parseDuration } from "../provider/scale_labels.ts";
import { Autoscaler } from "./autoscaler.ts";
import { parseSize } from "./body.ts";
import { refreshOnChange, startCron } from "./cron.ts";
import { type FrontDoorDeps, serveFrontDoor } from "./front_door.ts";
import { createGatewayHandler, type Invoke } from "./router.ts";
import { serve, type ServeOptions, type Server } from "../platform/http.ts";
import { createUiHandler } from "../ui/handler.ts";

/** The provider as `startProvider` returns it. */
export type ProviderHandle = Awaited<ReturnType<typeof startProvider>>;

/** What the gateway is built from. */
export interface GatewayOptions {
  config: Readonly<ResolvedConfig>;
  provider: ProviderHandle;
  checkAuth: (authorization: string | null) => boolean;
  log: Logger;
}

type Closer = () => Promise<void> | void;

/**
 * Builds the gateway; `listen` serves `--port` (under Deno through the front door, which forwards
 * function calls itself and hands everything else to `handler`; under Node.js `handler` alone).
 * When a part fails to start (NATS unreachable, say), the parts already started are stopped
 * before the error is thrown.
 */
export async function startGateway(opts: GatewayOptions) {
  const closers: Closer[] = [];
  const close = async () => {
    for (const stop of closers.splice(0).reverse()) await stop();
  };
  try {
    const { handler, frontDoor } = await compose(opts, closers);
    const listen = (o: ServeOptions): Promise<Server> =>
      "Deno" in globalThis
        ? serveFrontDoor({ ...frontDoor, fallback: handler }, o)
        : serve((req) => handler(req), o);
    return { handler, listen, close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function compose(opts: GatewayOptions, closers: Closer[]) {
  const log = opts.log.child({ component: "gateway" });
  const { config, provider } = opts;
  const maxBodyBytes = parseSize(config.maxBodySize);
  if (maxBodyBytes === undefined) {
    throw new InvalidArgumentError(`--max-body-size: cannot read "${config.maxBodySize}"`);
  }

  // Synchronous invocation: the provider's proxy.
  const proxy: Invoke = (req, target, pathAndQuery) =>
    provider.proxy(req, target.name, target.namespace, pathAndQuery);

  // Metrics and autoscaling.
  // Invocations are counted by wrapping the proxy: everything below (the router, the queue's
  // worker, cron, the UI) calls the wrapped `invoke`. /system/functions reports invocationCount
  // from these metrics, and the autoscaler reads the load from them every second.
  const now = () => performance.now();
  const metrics = createGatewayMetrics({ functions: () => provider.manager.snapshot(), now });
  const invoke = metrics.invocations.instrument(proxy);
  provider.manager.countInvocationsWith((name, ns) =>
    metrics.invocations.invocationCount(name, ns)
  );
  const scaleDownWindowMs = parseDuration(config.scaleDownWindow);
  if (scaleDownWindowMs === undefined) {
    throw new InvalidArgumentError(`--scale-down-window: cannot read "${config.scaleDownWindow}"`);
  }
  const autoscaler = new Autoscaler({
    functions: () => provider.manager.snapshot(),
    load: (name, ns) => metrics.invocations.load(name, ns),
    scale: (name, ns, replicas) => provider.manager.scale(name, ns, replicas),
    now,
    log,
  }, { scaleDownWindowMs });
  autoscaler.start();
  closers.push(() => autoscaler.close());
  // Requests for names that do not exist leave series behind until pruned, scraped or not.
  const pruner = setInterval(() => metrics.prune(), 10_000);
  closers.push(() => clearInterval(pruner));

  // Async queue (journal or JetStream) and its worker.
  let enqueue: Invoke;
  {
    let queue: QueueBackend;
    if (config.queue === "file") {
      queue = await createJournalQueue({ dir: join(config.dataDir, "queue"), log });
    } else {
      // Loaded only when asked for: the NATS client is a large module most appliances never use.
      const { createJetStreamQueue } = await import("../queue/jetstream.ts");
      queue = await createJetStreamQueue({ url: config.queue, log });
    }
    const lookup = async (name: string, namespace: string) => {
      try {
        const status = await provider.manager.get(name, namespace, { usage: false });
        return status.annotations ?? {};
      } catch (err) {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      }
    };
    const worker = startWorker({ queue, invoke, lookup, log });
    enqueue = createIntake({
      queue,
      exists: async (name, namespace) => (await lookup(name, namespace)) !== undefined,
    });
    metrics.watchQueue(() => queue.depth());
    // Closers run in reverse: the worker stops its callback retries, then the queue drains.
    closers.push(() => queue.close(), () => worker.close());
  }

  // Cron.
  // Functions annotated `topic: cron-function` are invoked on their `schedule`; a function
  // deployed, updated or deleted through the API is picked up at once; `async: "true"` ones go
  // through the queue.
  const cron = startCron({
    listFunctions: async () => {
      const namespaces = await provider.namespaces.list();
      return (await Promise.all(namespaces.map((ns) => provider.manager.list(ns)))).flat();
    },
    invoke,
    enqueue,
    log,
  });
  closers.push(() => cron.close());
  const providerHandler = refreshOnChange(provider.handler, cron);

  // Web UI.
  // It calls the gateway's own routes in-process with the user's (already checked) credentials,
  // so validation, errors and counts are exactly what the API gives. `handler` is made below.
  const ui = createUiHandler({ api: (req) => handler(req), log });

  const handler = createGatewayHandler({
    checkAuth: opts.checkAuth,
    provider: providerHandler,
    invoke,
    enqueue,
    metrics: metrics.handler,
    ui,
    maxBodyBytes,
    log,
  });
  // The front door forwards function calls itself: routed by the provider's manager with the
  // proxy's timeouts, counted in the same metrics.
  const frontDoor: Omit<FrontDoorDeps, "fallback"> = {
    router: provider.proxy.router,
    readyTimeoutMs: provider.proxy.options.readyTimeoutMs,
    upstreamTimeoutMs: provider.proxy.options.upstreamTimeoutMs,
    maxBodyBytes,
    begin: (name, ns) => metrics.invocations.begin(name, ns),
    log,
  };
  return { handler, frontDoor };
}
