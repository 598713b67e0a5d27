/**
 * Scenario "queue-jetstream": the NATS JetStream queue backend's accept path against Debian's
 * nats-server (file storage, temp store dir): one enqueue at a time (latency until the publish
 * ack), batches of 2,000 enqueues with 16 in flight (the rate the gateway could answer 202 at),
 * and the worker's side: draining that backlog 16 at a time with begin() and ack() per delivery.
 * Requests carry a 1 KiB body and a few headers, like a small async invocation.
 */

import { silentLogger } from "../../src/log.ts";
import { createJetStreamQueue } from "../../src/queue/jetstream.ts";
import type { QueuedRequest } from "../../src/queue/types.ts";
import { startNatsServer } from "../../tests/fixtures/nats.ts";
import { type Figure, type Scenario, type ScenarioContext } from "../harness.ts";

const BATCH = 2_000;
const IN_FLIGHT = 16;

/** The JetStream queue scenario. */
export function queueJetStreamScenario(): Scenario {
  return {
    name: "queue-jetstream",
    description:
      `JetStream enqueue latency (1 in flight) and ${BATCH} enqueues at ${IN_FLIGHT} in flight`,
    run,
  };
}

async function run(ctx: ScenarioContext): Promise<Figure[]> {
  const nats = await startNatsServer();
  try {
    const version = new Deno.Command("/usr/sbin/nats-server", { args: ["--version"] })
      .outputSync();
    ctx.facts["nats-server"] = new TextDecoder().decode(version.stdout).trim();
    const q = await createJetStreamQueue({ url: nats.url, log: silentLogger, stream: "BENCH" });
    try {
      let n = 0;
      const body = new Uint8Array(1024).fill(120);
      const next = (): QueuedRequest => ({
        id: `bench-${++n}`,
        name: "echo",
        namespace: "openfaas-fn",
        method: "POST",
        pathAndQuery: "/?q=1",
        headers: [["content-type", "text/plain"], ["user-agent", "bench"], ["x-n", String(n)]],
        body,
        callbackUrl: "http://127.0.0.1:9/callback",
        acceptedAt: Date.now(),
      });
      for (let i = 0; i < 200; i++) await q.enqueue(next()); // warm-up

      const single: number[] = [];
      for (let i = 0; i < ctx.iterations(500); i++) {
        const t0 = performance.now();
        await q.enqueue(next());
        single.push(performance.now() - t0);
      }

      const batches: number[] = [];
      for (let b = 0; b < ctx.iterations(5); b++) {
        let left = BATCH;
        const t0 = performance.now();
        await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
          while (left > 0) {
            left--;
            await q.enqueue(next());
          }
        }));
        const ms = performance.now() - t0;
        batches.push(ms);
        ctx.log(`${BATCH} enqueues at ${IN_FLIGHT} in flight: ${(BATCH / ms * 1000).toFixed(0)}/s`);
      }
      ctx.facts["jetstream enqueued"] = String(await q.depth());

      // The worker's side: drain the backlog with begin() + ack() per delivery, as the worker
      // does around an invocation, 16 in flight.
      let settled = 0;
      let wake = () => {};
      q.consume(async (d) => {
        await d.begin();
        await d.ack();
        settled++;
        if (settled % BATCH === 0) wake();
      }, { concurrency: IN_FLIGHT });
      const backlog = await q.depth();
      const drains: number[] = [];
      for (let b = 0; b < Math.floor(backlog / BATCH); b++) {
        const t0 = performance.now();
        await new Promise<void>((resolve) => wake = resolve);
        const ms = performance.now() - t0;
        drains.push(ms);
        ctx.log(
          `${BATCH} deliveries at ${IN_FLIGHT} in flight: ${(BATCH / ms * 1000).toFixed(0)}/s`,
        );
      }
      return [
        { name: "enqueue, 1 in flight", unit: "ms", samples: single },
        { name: `${BATCH} enqueues, ${IN_FLIGHT} in flight`, unit: "ms", samples: batches },
        {
          name: `${BATCH} deliveries (begin + ack), ${IN_FLIGHT} in flight`,
          unit: "ms",
          samples: drains,
        },
      ];
    } finally {
      await q.close();
    }
  } finally {
    await nats.stop();
  }
}
