/**
 * The async queue on NATS JetStream (`--queue nats://host:4222`), for users who outgrow one
 * machine: several appliances can share one stream and its consumer.
 *
 * Layout, for a stream named S (default `FAASD_QUEUE`):
 * - Stream `S`: work-queue retention, file storage, subjects `S.fn.<namespace>.<name>` (one
 *   subject per function, so `nats stream subjects S` shows the backlog per function). A message
 *   is one request (see jetstream_codec.ts: metadata in NATS headers, the body as the payload).
 *   `enqueue()` resolves after JetStream's publish ack, i.e. once the server has written the
 *   message to its store; `Nats-Msg-Id` is the call ID, so a repeated publish is dropped.
 * - Durable pull consumer `faasd-worker` on `S`, explicit ack, no delivery limit. `consume()` runs
 *   `concurrency` loops that each pull one message and wait for it to settle, so at most
 *   `concurrency` deliveries are in flight per appliance. While one is in flight it sends
 *   `working()` every third of `ack_wait`, so a long function does not get redelivered, and a
 *   crashed appliance's deliveries come back after at most `ack_wait`. `attempt` is JetStream's
 *   delivery count (so it also counts a redelivery after a crash). `ack()` is confirmed by the server (ackAck) and removes the message;
 *   `retry(ms)` is a nak with that delay.
 * - Stream `S_BEGUN` for begin markers: subjects `S.begun.<sequence of the request in S>`, at
 *   most one message per subject, its payload the call ID. `begin()` publishes the marker and
 *   waits for its ack; `ack()` and `retry()` purge it (ack first, so a crash in between leaves a
 *   harmless orphan marker for a message that no longer exists, never a request that is invoked
 *   again). Each delivery looks its marker up: a marker with the same call ID means an earlier
 *   delivery began and never settled (the appliance died mid-invocation), so the delivery says
 *   `interrupted` and the worker reports it failed instead of invoking it again. A redelivery
 *   caused by `retry()` finds no marker. The ID check guards against a marker left over from an
 *   earlier stream of the same name, whose sequences restart at 1.
 *
 * Code: jetstream_setup.ts (connection, streams, consumer), jetstream_delivery.ts (a message as a
 * Delivery), jetstream_codec.ts (the message layout), this file (enqueue, pull loops, close).
 *
 * Failures: when the server cannot be reached at start, while the client is disconnected, or
 * when a publish is not acknowledged within `timeoutMs`, `enqueue()` throws UnavailableError
 * naming the URL (the gateway answers 503). The client reconnects forever in the background and
 * the consumer loops resume by themselves. One window remains: a publish that times out while the
 * client still counts as connected may be stored later, when the client resends its buffer, so a
 * request answered 503 can still run — the safe side of "nothing accepted is lost".
 *
 * Durability is the server's: nats-server 2.9 writes every stored message to its files before
 * the ack (it survives kill -9 of the server) but fsyncs only every two minutes; for power-loss
 * safety run a JetStream cluster and pass `replicas: 3`.
 */

import type { NatsConnection } from "@nats-io/nats-core";
import { deadline } from "@nats-io/nats-core";
import {
  type Consumer,
  jetstream,
  JetStreamApiError,
  type JetStreamManager,
  jetstreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { FailedPreconditionError, InvalidArgumentError, UnavailableError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { encodeRequest } from "./jetstream_codec.ts";
import { deliver, type DeliveryDeps, message, REDELIVER_SOON_MS } from "./jetstream_delivery.ts";
import { connectNats, CONSUMER_NAME, ensureQueueSetup, names } from "./jetstream_setup.ts";
import { parseNatsUrl } from "./nats_url.ts";
import type { Delivery, QueueBackend, QueuedRequest } from "./types.ts";

/** Options for {@link createJetStreamQueue}. */
export interface JetStreamQueueOptions {
  /** `nats://[user[:password]@]host[:port]`. */
  url: string;
  log: Logger;
  /** Stream name (letters, digits, `_`, `-`); the markers stream is `<stream>_BEGUN`. */
  stream?: string;
  /**
   * How long a delivery may go without a heartbeat before JetStream redelivers it (default 30 s).
   * It is a setting of the shared consumer: the last appliance to start sets it for all.
   */
  ackWaitMs?: number;
  /** Bound on connecting, on a publish ack and on every JetStream API call (default 5 s). */
  timeoutMs?: number;
  /** Stream replicas, for a JetStream cluster (default 1). */
  replicas?: number;
}

/** The default stream name. */
export const DEFAULT_STREAM = "FAASD_QUEUE";

const PULL_EXPIRES_MS = 5_000;

/** Connects to NATS, creates the streams and the consumer if missing, and returns the backend. */
export async function createJetStreamQueue(opts: JetStreamQueueOptions): Promise<QueueBackend> {
  const addr = parseNatsUrl(opts.url);
  const stream = opts.stream ?? DEFAULT_STREAM;
  if (!/^[A-Za-z0-9_-]+$/.test(stream)) {
    throw new InvalidArgumentError(
      `Invalid JetStream stream name ${JSON.stringify(stream)}: use letters, digits, _ and -`,
    );
  }
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const ackWaitMs = opts.ackWaitMs ?? 30_000;
  const unreachable = (err: unknown) =>
    new UnavailableError(`cannot reach NATS at ${addr.display}: ${message(err)}`, { cause: err });

  let nc: NatsConnection;
  try {
    nc = await connectNats(addr, { name: `faasd-queue ${stream}`, timeoutMs });
  } catch (err) {
    throw unreachable(err);
  }
  try {
    const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
    await ensureQueueSetup(jsm, {
      stream,
      ackWaitMs,
      replicas: opts.replicas ?? 1,
      display: addr.display,
    });
    const log = opts.log.child({ component: "queue", backend: "nats", stream });
    return new JetStreamQueue(nc, jsm, {
      js: jetstream(nc, { timeout: timeoutMs }),
      jsm,
      stream,
      display: addr.display,
      timeoutMs,
      ackWaitMs,
      log,
    });
  } catch (err) {
    await nc.close().catch(() => {});
    if (err instanceof FailedPreconditionError) throw err;
    throw unreachable(err);
  }
}

class JetStreamQueue implements QueueBackend {
  #connected = true;
  #closing = false;
  #loops: Promise<void>[] = [];
  #inFlight = new Set<Promise<void>>();
  #wake = new Set<() => void>();
  #deps: DeliveryDeps;

  constructor(
    private nc: NatsConnection,
    private jsm: JetStreamManager,
    deps: Omit<DeliveryDeps, "connected">,
  ) {
    this.#deps = { ...deps, connected: () => this.#connected };
    this.#watchStatus();
  }

  async #watchStatus(): Promise<void> {
    for await (const st of this.nc.status()) {
      if (st.type === "disconnect") {
        this.#connected = false;
        this.#deps.log.warn("disconnected from NATS", { url: this.#deps.display });
      } else if (st.type === "reconnect") {
        this.#connected = true;
        this.#deps.log.info("reconnected to NATS", { url: this.#deps.display });
      }
    }
  }

  async enqueue(req: QueuedRequest): Promise<void> {
    const { stream, display, timeoutMs } = this.#deps;
    const subject = names.request(
      stream,
      token("namespace", req.namespace),
      token("name", req.name),
    );
    const { headers, data } = encodeRequest(req);
    if (this.#closing || this.nc.isClosed()) {
      throw new UnavailableError(`cannot reach NATS at ${display}: the queue is closed`);
    }
    // The client would buffer the publish until it reconnects; fail now instead, so the
    // gateway answers 503 rather than holding the caller and storing the request later.
    if (!this.#connected) {
      throw new UnavailableError(`cannot reach NATS at ${display}: disconnected, reconnecting`);
    }
    try {
      await this.#deps.js.publish(subject, data, { headers, msgID: req.id, timeout: timeoutMs });
    } catch (err) {
      if (err instanceof JetStreamApiError) {
        throw new UnavailableError(
          `NATS at ${display} did not store request "${req.id}": ${err.message}`,
          { cause: err },
        );
      }
      throw new UnavailableError(`cannot reach NATS at ${display}: ${message(err)}`, {
        cause: err,
      });
    }
  }

  consume(handler: (delivery: Delivery) => Promise<void>, opts: { concurrency: number }): void {
    if (this.#loops.length > 0) throw new FailedPreconditionError("consume() was already called");
    const n = Math.max(1, Math.floor(opts.concurrency));
    for (let i = 0; i < n; i++) this.#loops.push(this.#loop(handler));
  }

  // One of `concurrency` loops: pull one message, wait until it is settled, repeat.
  async #loop(handler: (delivery: Delivery) => Promise<void>): Promise<void> {
    let consumer: Consumer | undefined;
    while (!this.#closing) {
      let msg: JsMsg | null;
      try {
        consumer ??= await this.#deps.js.consumers.get(this.#deps.stream, CONSUMER_NAME);
        msg = await consumer.next({ expires: PULL_EXPIRES_MS });
      } catch (err) {
        if (this.#closing) break;
        this.#deps.log.warn("cannot pull from NATS, trying again", {
          url: this.#deps.display,
          error: message(err),
        });
        await this.#pause(REDELIVER_SOON_MS);
        continue;
      }
      if (!msg) continue;
      if (this.#closing) {
        msg.nak();
        break;
      }
      const done = deliver(this.#deps, msg, handler);
      this.#inFlight.add(done);
      await done;
      this.#inFlight.delete(done);
    }
  }

  // Waits for `ms` or until close() starts, whichever comes first.
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#wake.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#wake.add(wake);
    });
  }

  async depth(): Promise<number> {
    const { display, stream } = this.#deps;
    if (!this.#connected) {
      throw new UnavailableError(`cannot reach NATS at ${display}: disconnected`);
    }
    try {
      return (await this.jsm.streams.info(stream)).state.messages;
    } catch (err) {
      throw new UnavailableError(`cannot reach NATS at ${display}: ${message(err)}`, {
        cause: err,
      });
    }
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    for (const wake of this.#wake) wake();
    await Promise.allSettled([...this.#inFlight]);
    // Pending pulls end with the connection; anything pulled meanwhile was nak'ed above.
    try {
      if (this.#connected) await deadline(this.nc.flush(), this.#deps.timeoutMs);
    } catch {
      // Disconnected: the server redelivers what we held after ack_wait.
    }
    await this.nc.close();
    await Promise.allSettled(this.#loops);
  }
}

// Subject tokens cannot contain dots, wildcards or blanks.
function token(field: string, value: string): string {
  if (!/^[^\s.*>]+$/.test(value)) {
    throw new InvalidArgumentError(
      `Cannot queue request: ${field} ${JSON.stringify(value)} cannot be a NATS subject token`,
    );
  }
  return value;
}
