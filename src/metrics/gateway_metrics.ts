/**
 * Everything `/metrics` serves for `faasd up`: the OpenFaaS gateway metrics (invocations, their
 * durations, `gateway_service_count` replicas), plus ours — requests in flight per function, the
 * async queue's depth, and this process's resident memory.
 */

import process from "node:process";
import { InvocationMetrics } from "./invocations.ts";
import { CONTENT_TYPE } from "./exposition.ts";
import { Registry } from "./registry.ts";

/** A deployed function as the metrics see it. */
export interface FunctionReplicas {
  name: string;
  namespace: string;
  /** The replica count asked for (what `/system/functions` calls `replicas`). */
  replicas: number;
}

/** Where the scrape-time values come from. */
export interface GatewayMetricsDeps {
  /** Every deployed function, read from memory. */
  functions(): FunctionReplicas[];
  /** Async requests accepted and not yet settled, when there is a queue. */
  queueDepth?: () => Promise<number>;
  /** Monotonic clock in milliseconds (`performance.now` by default). */
  now?: () => number;
}

/** Builds the registry, the invocation metrics and the `/metrics` handler. */
export function createGatewayMetrics(deps: GatewayMetricsDeps) {
  const registry = new Registry();
  const invocations = new InvocationMetrics(registry, { now: deps.now });
  const serviceCount = registry.gauge({
    name: "gateway_service_count",
    help: "Replicas of each function",
    labelNames: ["function_name"],
  });
  const inflight = registry.gauge({
    name: "faasd_function_inflight_requests",
    help: "Requests to each function waiting for their response headers",
    labelNames: ["function_name"],
  });
  const prune = (fns: FunctionReplicas[]) => {
    const live = new Set(fns.map((f) => `${f.name}.${f.namespace}`));
    invocations.retain((name, namespace) => live.has(`${name}.${namespace}`));
  };
  registry.onCollect(() => {
    const fns = deps.functions();
    prune(fns);
    serviceCount.clear();
    inflight.clear();
    for (const f of fns) {
      const functionName = `${f.name}.${f.namespace}`;
      serviceCount.labels(functionName).set(f.replicas);
      inflight.labels(functionName).set(invocations.load(f.name, f.namespace)?.inflight ?? 0);
    }
  });
  let queueDepth = deps.queueDepth;
  const depth = registry.gauge({
    name: "faasd_queue_depth",
    help: "Async requests accepted and not yet settled",
  });
  registry.onCollect(async () => {
    // Without a queue, or when it cannot answer, the gauge is left out of this scrape.
    depth.clear();
    const n = await queueDepth?.().catch(() => undefined);
    if (n !== undefined) depth.labels().set(n);
  });
  const rss = registry.gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory of the faasd process in bytes",
  });
  registry.onCollect(() => rss.labels().set(process.memoryUsage.rss()));

  return {
    registry,
    invocations,
    /**
     * Drops the series of functions no longer deployed (and of names that never were); runs at
     * each scrape, and should also run now and then when nobody scrapes.
     */
    prune: () => prune(deps.functions()),
    /** Reports the async queue's depth as `faasd_queue_depth` (for a queue built later). */
    watchQueue: (getDepth: () => Promise<number>) => {
      queueDepth = getDepth;
    },
    /** `GET /metrics`: the Prometheus text format, no authentication (the OpenFaaS contract). */
    handler: async (_req: Request): Promise<Response> =>
      new Response(await registry.render(), { headers: { "content-type": CONTENT_TYPE } }),
  };
}
