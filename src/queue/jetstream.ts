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
 *   delivery count. `ack()` is confirmed by the server (ackAck) and removes the message;
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
 * Failures: when the server cannot be reached at start, while the client is disconnected, or
 * when a publish is not acknowledged within `timeoutMs`, `enqueue()` throws UnavailableError
 * naming the URL (the gateway answers 503). The client reconnects forever in the background and
 * the consumer loops resume by themselves.
 *
 * Durability is the server's: nats-server 2.9 writes every stored message to its files before
 * the ack (it survives kill -9 of the server) but fsyncs only every two minutes; for power-loss
 * safety run a JetStream cluster and pass `replicas: 3`.
 */

import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { deadline, nanos } from "@nats-io/nats-core";
import {
  AckPolicy,
  type Consumer,
  DeliverPolicy,
  jetstream,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  type JsMsg,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { FailedPreconditionError, InvalidArgumentError, UnavailableError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { decodeRequest, encodeRequest } from "./jetstream_codec.ts";
import { parseNatsUrl } from "./nats_url.ts";
import type { Delivery, QueueBackend, QueuedRequest } from "./types.ts";

/** Options for {@link createJetStreamQueue}. */
export interface JetStreamQueueOptions {
  /** `nats://[user[:password]@]host[:port]`. */
  url: string;
  log: Logger;
  /** Stream name (letters, digits, `_`, `-`); the markers stream is `<stream>_BEGUN`. */
  stream?: string;
  /** How long a delivery may go without a heartbeat before JetStream redelivers it. */
  ackWaitMs?: number;
  /** Bound on connecting, on a publish ack and on every JetStream API call. */
  timeoutMs?: number;
  /** Stream replicas, for a JetStream cluster (default 1). */
  replicas?: number;
}

/** The default stream name. */
export const DEFAULT_STREAM = "FAASD_QUEUE";
/** The durable consumer every appliance pulls from. */
export const CONSUMER_NAME = "faasd-worker";

const PULL_EXPIRES_MS = 5_000;
const ERROR_BACKOFF_MS = 1_000;
const TE = new TextEncoder();
const TD = new TextDecoder();

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
    nc = await connect({
      servers: [addr.server],
      user: addr.user,
      pass: addr.pass,
      token: addr.token,
      name: `faasd-queue ${stream}`,
      timeout: timeoutMs,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      // Notices a silently dead server (no RST) within about 30 s.
      pingInterval: 10_000,
      maxPingOut: 3,
    });
  } catch (err) {
    throw unreachable(err);
  }
  try {
    const jsm = await jetstreamManager(nc, { timeout: timeoutMs });
    await ensureSetup(jsm, stream, ackWaitMs, opts.replicas ?? 1, addr.display);
    return new JetStreamQueue(nc, jsm, jetstream(nc, { timeout: timeoutMs }), {
      stream,
      display: addr.display,
      timeoutMs,
      ackWaitMs,
      log: opts.log.child({ component: "queue", backend: "nats", stream }),
    });
  } catch (err) {
    await nc.close().catch(() => {});
    if (err instanceof FailedPreconditionError) throw err;
    throw unreachable(err);
  }
}

async function ensureSetup(
  jsm: JetStreamManager,
  stream: string,
  ackWaitMs: number,
  replicas: number,
  display: string,
): Promise<void> {
  const work = await ensureStream(jsm, {
    name: stream,
    subjects: [`${stream}.fn.>`],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: replicas,
  });
  if (work.retention !== RetentionPolicy.Workqueue) {
    throw new FailedPreconditionError(
      `JetStream stream "${stream}" on ${display} exists with ${work.retention} retention; ` +
        `the queue needs a work-queue stream (use another --queue stream name or delete it)`,
    );
  }
  await ensureStream(jsm, {
    name: `${stream}_BEGUN`,
    subjects: [`${stream}.begun.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: replicas,
    max_msgs_per_subject: 1,
  });
  const consumer = {
    durable_name: CONSUMER_NAME,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(ackWaitMs),
    max_deliver: -1,
    max_ack_pending: 10_000,
  };
  try {
    const info = await jsm.consumers.info(stream, CONSUMER_NAME);
    if (info.config.ack_wait !== consumer.ack_wait) {
      await jsm.consumers.update(stream, CONSUMER_NAME, { ack_wait: consumer.ack_wait });
    }
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
    await jsm.consumers.add(stream, consumer);
  }
}

type StreamSetup = {
  name: string;
  subjects: string[];
  retention: RetentionPolicy;
  storage: StorageType;
  num_replicas: number;
  max_msgs_per_subject?: number;
};

async function ensureStream(jsm: JetStreamManager, cfg: StreamSetup) {
  try {
    return (await jsm.streams.info(cfg.name)).config;
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.StreamNotFound)) throw err;
  }
  try {
    return (await jsm.streams.add(cfg)).config;
  } catch (err) {
    // Another appliance created it in between: use theirs.
    try {
      return (await jsm.streams.info(cfg.name)).config;
    } catch {
      throw err;
    }
  }
}

interface QueueSettings {
  stream: string;
  display: string;
  timeoutMs: number;
  ackWaitMs: number;
  log: Logger;
}

class JetStreamQueue implements QueueBackend {
  #connected = true;
  #closing = false;
  #loops: Promise<void>[] = [];
  #inFlight = new Set<Promise<void>>();
  #wake = new Set<() => void>();

  constructor(
    private nc: NatsConnection,
    private jsm: JetStreamManager,
    private js: JetStreamClient,
    private s: QueueSettings,
  ) {
    this.#watchStatus();
  }

  async #watchStatus(): Promise<void> {
    for await (const st of this.nc.status()) {
      if (st.type === "disconnect") {
        this.#connected = false;
        this.s.log.warn("disconnected from NATS", { url: this.s.display });
      } else if (st.type === "reconnect") {
        this.#connected = true;
        this.s.log.info("reconnected to NATS", { url: this.s.display });
      }
    }
  }

  async enqueue(req: QueuedRequest): Promise<void> {
    const subject = `${this.s.stream}.fn.${token("namespace", req.namespace)}.` +
      token("name", req.name);
    const { headers, data } = encodeRequest(req);
    if (this.#closing || this.nc.isClosed()) {
      throw new UnavailableError(`cannot reach NATS at ${this.s.display}: the queue is closed`);
    }
    // The client would buffer the publish until it reconnects; fail now instead, so the
    // gateway answers 503 rather than holding the caller and storing the request later.
    if (!this.#connected) {
      throw new UnavailableError(
        `cannot reach NATS at ${this.s.display}: disconnected, reconnecting`,
      );
    }
    try {
      await this.js.publish(subject, data, { headers, msgID: req.id, timeout: this.s.timeoutMs });
    } catch (err) {
      if (err instanceof JetStreamApiError) {
        throw new UnavailableError(
          `NATS at ${this.s.display} did not store request "${req.id}": ${err.message}`,
          { cause: err },
        );
      }
      throw new UnavailableError(`cannot reach NATS at ${this.s.display}: ${message(err)}`, {
        cause: err,
      });
    }
  }

  consume(handler: (delivery: Delivery) => Promise<void>, opts: { concurrency: number }): void {
    if (this.#loops.length > 0) throw new FailedPreconditionError("consume() was already called");
    const n = Math.max(1, Math.floor(opts.concurrency));
    for (let i = 0; i < n; i++) this.#loops.push(this.#loop(handler));
  }

  async #loop(handler: (delivery: Delivery) => Promise<void>): Promise<void> {
    let consumer: Consumer | undefined;
    while (!this.#closing) {
      let msg: JsMsg | null;
      try {
        consumer ??= await this.js.consumers.get(this.s.stream, CONSUMER_NAME);
        msg = await consumer.next({ expires: PULL_EXPIRES_MS });
      } catch (err) {
        if (this.#closing) break;
        this.s.log.warn("cannot pull from NATS, trying again", {
          url: this.s.display,
          error: message(err),
        });
        await this.#pause(ERROR_BACKOFF_MS);
        continue;
      }
      if (!msg) continue;
      if (this.#closing) {
        msg.nak();
        break;
      }
      const done = this.#deliver(msg, handler);
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

  async #deliver(msg: JsMsg, handler: (delivery: Delivery) => Promise<void>): Promise<void> {
    const log = this.s.log;
    let request: QueuedRequest;
    try {
      request = decodeRequest(msg.headers, msg.data);
    } catch (err) {
      // Not written by us: keeping it would block nothing but would never succeed either.
      log.error("dropping a message that is not a queued request", {
        subject: msg.subject,
        seq: msg.seq,
        error: message(err),
      });
      msg.term("not a faasd queued request");
      return;
    }
    const marker = `${this.s.stream}.begun.${msg.seq}`;
    let interrupted: boolean;
    try {
      const found = await this.jsm.streams.getMessage(`${this.s.stream}_BEGUN`, {
        last_by_subj: marker,
      });
      interrupted = found !== null && TD.decode(found.data) === request.id;
    } catch (err) {
      log.warn("cannot read begin marker from NATS, delivering later", {
        id: request.id,
        error: message(err),
      });
      msg.nak(ERROR_BACKOFF_MS);
      return;
    }

    let settled = false;
    let hasMarker = interrupted;
    const heartbeat = setInterval(() => {
      try {
        msg.working();
      } catch {
        // Closed connection: nothing to keep alive any more.
      }
    }, Math.max(100, this.s.ackWaitMs / 3));
    const settle = (what: string) => {
      if (settled) {
        throw new FailedPreconditionError(
          `Cannot ${what} queued request "${request.id}": already settled`,
        );
      }
      settled = true;
      clearInterval(heartbeat);
    };
    const dropMarker = async () => {
      if (!hasMarker) return;
      await this.jsm.streams.purge(`${this.s.stream}_BEGUN`, { filter: marker });
      hasMarker = false;
    };
    const delivery: Delivery = {
      request,
      attempt: msg.info.deliveryCount,
      interrupted,
      begin: async () => {
        if (settled) throw new FailedPreconditionError(`Cannot begin "${request.id}": settled`);
        // As in enqueue(): a marker buffered until reconnect would outlive the worker's answer.
        if (!this.#connected) {
          throw new UnavailableError(
            `cannot record begin of "${request.id}" in NATS at ${this.s.display}: disconnected`,
          );
        }
        try {
          await this.js.publish(marker, TE.encode(request.id), { timeout: this.s.timeoutMs });
        } catch (err) {
          throw new UnavailableError(
            `cannot record begin of "${request.id}" in NATS at ${this.s.display}: ${message(err)}`,
            { cause: err },
          );
        }
        hasMarker = true;
      },
      ack: async () => {
        settle("ack");
        await this.#ackConfirmed(msg, request.id);
        try {
          await dropMarker();
        } catch (err) {
          log.warn("cannot remove begin marker; it stays as an orphan", {
            id: request.id,
            error: message(err),
          });
        }
      },
      retry: async (delayMs: number) => {
        settle("retry");
        try {
          // Before the nak, or the redelivery would look interrupted.
          await dropMarker();
        } catch (err) {
          // The redelivery will say interrupted and be reported failed: never invoked twice.
          log.warn("cannot remove begin marker before retry", {
            id: request.id,
            error: message(err),
          });
        }
        msg.nak(Math.max(0, Math.round(delayMs)));
      },
    };

    try {
      await handler(delivery);
    } catch (err) {
      log.error("queue handler failed", { id: request.id, error: err });
    } finally {
      if (!settled) {
        // The worker must settle every delivery; if it did not, hand the request back. Its
        // marker (if it began) makes the redelivery interrupted, so it is not invoked twice.
        settled = true;
        clearInterval(heartbeat);
        log.error("queue handler returned without settling; redelivering", { id: request.id });
        msg.nak(ERROR_BACKOFF_MS);
      }
    }
  }

  // A lost ack would bring the request back as interrupted after ack_wait and report a second,
  // wrong result to its callback; ask for the server's confirmation, a few times if needed.
  async #ackConfirmed(msg: JsMsg, id: string): Promise<void> {
    let last: unknown;
    for (let i = 0; i < 3; i++) {
      try {
        if (await msg.ackAck({ timeout: this.s.timeoutMs })) return;
      } catch (err) {
        last = err;
      }
    }
    throw new UnavailableError(
      `cannot acknowledge "${id}" to NATS at ${this.s.display}: ${message(last ?? "no reply")}`,
      { cause: last },
    );
  }

  async depth(): Promise<number> {
    if (!this.#connected) {
      throw new UnavailableError(`cannot reach NATS at ${this.s.display}: disconnected`);
    }
    try {
      return (await this.jsm.streams.info(this.s.stream)).state.messages;
    } catch (err) {
      throw new UnavailableError(`cannot reach NATS at ${this.s.display}: ${message(err)}`, {
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
      if (this.#connected) await deadline(this.nc.flush(), this.s.timeoutMs);
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

function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
