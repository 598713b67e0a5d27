/**
 * Composition of the gateway inside `faasd up`: the synchronous proxy, and the parts issue #5
 * adds around it (async queue and worker, metrics, autoscaler, cron, UI). Each part is built
 * here and handed to the router; `close()` stops their background work.
 */

import type { ResolvedConfig } from "../config/config.ts";
import { InvalidArgumentError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { startProvider } from "../provider/provider.ts";
import { parseSize } from "./body.ts";
import { refreshOnChange, startCron } from "./cron.ts";
import { createGatewayHandler, type Invoke } from "./router.ts";
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
  const invoke: Invoke = (req, target, pathAndQuery) =>
    provider.proxy(req, target.name, target.namespace, pathAndQuery);

  // Cron.
  // Functions annotated `topic: cron-function` are invoked on their `schedule`; a function
  // deployed, updated or deleted through the API is picked up at once. `enqueue` belongs here
  // too once the async queue is composed above (async: "true" functions then go through it).
  const cron = startCron({
    listFunctions: async () => {
      const namespaces = await provider.namespaces.list();
      return (await Promise.all(namespaces.map((ns) => provider.manager.list(ns)))).flat();
    },
    invoke,
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
    ui,
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
