/**
 * Connecting to NATS and creating what the JetStream queue needs when it is missing: the
 * work-queue stream, the begin-markers stream and the durable consumer (see jetstream.ts for the
 * layout). Safe to run from several appliances at once.
 */

import { connect } from "@nats-io/transport-node";
import { nanos, type NatsConnection } from "@nats-io/nats-core";
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { FailedPreconditionError } from "../errors.ts";
import type { NatsAddress } from "./nats_url.ts";

/** The durable consumer every appliance pulls from. */
export const CONSUMER_NAME = "faasd-worker";

/** Subject and stream names derived from the queue's stream name. */
export const names = {
  /** Subjects of the requests, one per function. */
  requests: (stream: string) => `${stream}.fn.>`,
  request: (stream: string, namespace: string, name: string) => `${stream}.fn.${namespace}.${name}`,
  markerStream: (stream: string) => `${stream}_BEGUN`,
  markers: (stream: string) => `${stream}.begun.>`,
  /** The begin marker of the request stored at `seq` in the queue's stream. */
  marker: (stream: string, seq: number) => `${stream}.begun.${seq}`,
};

/** Connects with endless background reconnection; throws what the client throws. */
export function connectNats(
  addr: NatsAddress,
  opts: { name: string; timeoutMs: number },
): Promise<NatsConnection> {
  return connect({
    servers: [addr.server],
    user: addr.user,
    pass: addr.pass,
    token: addr.token,
    name: opts.name,
    timeout: opts.timeoutMs,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // Notices a silently dead server (no RST) within about 30 s.
    pingInterval: 10_000,
    maxPingOut: 3,
  });
}

/** Creates the streams and the consumer if missing; sets the consumer's ack_wait to `ackWaitMs`. */
export async function ensureQueueSetup(
  jsm: JetStreamManager,
  opts: { stream: string; ackWaitMs: number; replicas: number; display: string },
): Promise<void> {
  const { stream } = opts;
  const work = await ensureStream(jsm, {
    name: stream,
    subjects: [names.requests(stream)],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    num_replicas: opts.replicas,
  });
  if (work.retention !== RetentionPolicy.Workqueue) {
    throw new FailedPreconditionError(
      `JetStream stream "${stream}" on ${opts.display} exists with ${work.retention} retention; ` +
        `the queue needs a work-queue stream (choose another stream name or delete it)`,
    );
  }
  await ensureStream(jsm, {
    name: names.markerStream(stream),
    subjects: [names.markers(stream)],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    num_replicas: opts.replicas,
    max_msgs_per_subject: 1,
  });
  const ackWait = nanos(opts.ackWaitMs);
  try {
    const info = await jsm.consumers.info(stream, CONSUMER_NAME);
    if (info.config.ack_wait !== ackWait) {
      await jsm.consumers.update(stream, CONSUMER_NAME, { ack_wait: ackWait });
    }
  } catch (err) {
    if (!isApiError(err, JetStreamApiCodes.ConsumerNotFound)) throw err;
    await jsm.consumers.add(stream, {
      durable_name: CONSUMER_NAME,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: ackWait,
      max_deliver: -1,
      max_ack_pending: 10_000,
    });
  }
}

async function ensureStream(
  jsm: JetStreamManager,
  cfg: Partial<StreamConfig> & { name: string },
): Promise<StreamConfig> {
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

function isApiError(err: unknown, code: number): boolean {
  return err instanceof JetStreamApiError && err.code === code;
}
