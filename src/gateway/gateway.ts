/**
 * Composition of the gateway inside `faasd up`: the synchronous proxy, and the parts issue #5
 * adds around it (async queue and worker, metrics, autoscaler, cron, UI). Each part is built
 * here and handed to the router; `close()` stops their background work.
 */

import type { ResolvedConfig } from "../config/config.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { startProvider } from "../provider/provider.ts";
import { createGatewayMetrics } from "../metrics/gateway_metrics.ts";
import { parseDuration } from "../provider/scale_labels.ts";
import { Autoscaler } from "./autoscaler.ts";
import { parseSize } from "./body.ts";
import { createGatewayHandler, type Invoke } from "./router.ts";

/** The provider as `startProvider` returns it. */
export type ProviderHandle = Awaited<ReturnType<typeof startProvider>>;

/** What the gateway is built from. */
export interface GatewayOptions {
  config: Readonly<ResolvedConfig>;
  provider: ProviderHandle;
  checkAuth: (authorization: string | null) => boolean;
  log: Logger;
}

/** Builds the gateway; the handler serves `--port`. */
export async function startGateway(opts: GatewayOptions) {
  const log = opts.log.child({ component: "gateway" });
  const { config, provider } = opts;
  const maxBodyBytes = parseSize(config.maxBodySize);
  if (maxBodyBytes === undefined) {
    throw new InvalidArgumentError(`--max-body-size: cannot read "${config.maxBodySize}"`);
  }
  const closers: Array<() => Promise<void> | void> = [];

  // Synchronous invocation: the provider's proxy.
  let invoke: Invoke = (req, target, pathAndQuery) =>
    provider.proxy(req, target.name, target.namespace, pathAndQuery);

  // Metrics and autoscaling.
  // Invocations are counted by wrapping `invoke` (whatever is built below calls the wrapped one);
  // /system/functions reports invocationCount from these metrics, and the autoscaler reads the
  // load from them every second.
  const now = () => performance.now();
  const metrics = createGatewayMetrics({ functions: () => provider.manager.snapshot(), now });
  invoke = metrics.invocations.instrument(invoke);
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

  const handler = createGatewayHandler({
    checkAuth: opts.checkAuth,
    provider: provider.handler,
    invoke,
    metrics: metrics.handler,
    maxBodyBytes,
    log,
  });
  await Promise.resolve();
  return {
    handler,
    close: async () => {
      for (const close of closers.reverse()) await close();
    },
  };
}
