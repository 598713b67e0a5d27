/**
 * How a queued request is laid out in a NATS message: the body is the payload, byte for byte,
 * and everything else travels in NATS headers, readable with `nats stream view`:
 *
 *   Faasd-Queue: 1                     format version
 *   Faasd-Id, Faasd-Function (name.namespace), Faasd-Method, Faasd-Path, Faasd-Accepted-At (ms),
 *   Faasd-Callback-Url                 only when given
 *   Faasd-Headers                      the HTTP headers as a JSON array of [name, value] pairs
 *
 * The HTTP headers go in one JSON value because NATS headers are a map: repeated names would lose
 * their order relative to other names, and NATS trims values. `Nats-Msg-Id` carries the call ID
 * so JetStream drops a duplicate publish of the same request within its duplicate window.
 */

import { headers as natsHeaders, type MsgHdrs } from "@nats-io/nats-core";
import { InvalidArgumentError } from "../errors.ts";
import type { QueuedRequest } from "./types.ts";

/** The format version written in `Faasd-Queue`; decoding refuses others. */
export const CODEC_VERSION = "1";

const H = {
  version: "Faasd-Queue",
  id: "Faasd-Id",
  fn: "Faasd-Function",
  method: "Faasd-Method",
  path: "Faasd-Path",
  acceptedAt: "Faasd-Accepted-At",
  callback: "Faasd-Callback-Url",
  headers: "Faasd-Headers",
} as const;

/** A request as a NATS message: headers and payload. */
export interface EncodedRequest {
  headers: MsgHdrs;
  data: Uint8Array;
}

/** Encodes a request; throws InvalidArgumentError for a value a NATS header cannot carry. */
export function encodeRequest(req: QueuedRequest): EncodedRequest {
  const h = natsHeaders();
  h.set(H.version, CODEC_VERSION);
  h.set(H.id, scalar("id", req.id));
  h.set(H.fn, `${scalar("name", req.name)}.${scalar("namespace", req.namespace)}`);
  h.set(H.method, scalar("method", req.method));
  h.set(H.path, scalar("pathAndQuery", req.pathAndQuery));
  h.set(H.acceptedAt, String(req.acceptedAt));
  if (req.callbackUrl !== undefined) h.set(H.callback, scalar("callbackUrl", req.callbackUrl));
  // JSON.stringify escapes control characters, so the value never holds CR or LF.
  h.set(H.headers, JSON.stringify(req.headers));
  return { headers: h, data: req.body };
}

/** Decodes a message written by {@link encodeRequest}; throws InvalidArgumentError otherwise. */
export function decodeRequest(headers: MsgHdrs | undefined, data: Uint8Array): QueuedRequest {
  const get = (key: string, required = true): string | undefined => {
    const v = headers?.get(key);
    if (!v && required) throw new InvalidArgumentError(`Cannot decode queued request: no ${key}`);
    return v || undefined;
  };
  const version = get(H.version);
  if (version !== CODEC_VERSION) {
    throw new InvalidArgumentError(`Cannot decode queued request: format "${version}" unknown`);
  }
  const fn = get(H.fn)!;
  const dot = fn.indexOf(".");
  if (dot <= 0 || dot === fn.length - 1) {
    throw new InvalidArgumentError(`Cannot decode queued request: function "${fn}" malformed`);
  }
  const acceptedAt = Number(get(H.acceptedAt));
  if (!Number.isFinite(acceptedAt)) {
    throw new InvalidArgumentError(`Cannot decode queued request: ${H.acceptedAt} not a number`);
  }
  let pairs: unknown;
  try {
    pairs = JSON.parse(get(H.headers)!);
  } catch (err) {
    throw new InvalidArgumentError(`Cannot decode queued request: ${H.headers} not JSON`, {
      cause: err,
    });
  }
  if (
    !Array.isArray(pairs) ||
    !pairs.every((p) =>
      Array.isArray(p) && p.length === 2 && typeof p[0] === "string" && typeof p[1] === "string"
    )
  ) {
    throw new InvalidArgumentError(
      `Cannot decode queued request: ${H.headers} not a list of pairs`,
    );
  }
  const req: QueuedRequest = {
    id: get(H.id)!,
    name: fn.slice(0, dot),
    namespace: fn.slice(dot + 1),
    method: get(H.method)!,
    pathAndQuery: get(H.path)!,
    headers: pairs as [string, string][],
    body: data,
    acceptedAt,
  };
  const callbackUrl = get(H.callback, false);
  if (callbackUrl !== undefined) req.callbackUrl = callbackUrl;
  return req;
}

// NATS header values cannot hold CR or LF and lose surrounding blanks; a function name or
// namespace with a dot would be split at the wrong place. The gateway never produces these.
function scalar(field: string, value: string): string {
  const bad = value === "" || /[\r\n]/.test(value) || value.trim() !== value ||
    ((field === "name" || field === "namespace") && value.includes("."));
  if (bad) {
    throw new InvalidArgumentError(
      `Cannot queue request: ${field} ${JSON.stringify(value)} cannot be stored in NATS`,
    );
  }
  return value;
}
