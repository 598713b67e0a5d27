/**
 * Parses the `--queue nats://[user[:password]@]host[:port]` URL into what the NATS client needs,
 * and a form without the password that is safe to show in errors and logs.
 */

import { InvalidArgumentError } from "../errors.ts";

/** Default NATS client port. */
export const NATS_DEFAULT_PORT = 4222;

/** A NATS server address with its credentials split off. */
export interface NatsAddress {
  /** `host:port` for the client's `servers` option. */
  server: string;
  /** The URL without the password, for messages: `nats://user@host:port`. */
  display: string;
  user?: string;
  pass?: string;
  /** A lone userinfo without a colon is a token (`nats://TOKEN@host`), as in the NATS tools. */
  token?: string;
}

/** Parses a `nats://` URL; throws InvalidArgumentError naming what is wrong. */
export function parseNatsUrl(raw: string): NatsAddress {
  const bad = (why: string) =>
    new InvalidArgumentError(`Invalid NATS URL ${JSON.stringify(redact(raw))}: ${why}`);
  if (!/^nats:\/\//i.test(raw)) throw bad("it must start with nats://");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad("not a URL");
  }
  if (!url.hostname) throw bad("no host");
  if (url.pathname !== "" && url.pathname !== "/") throw bad("a path is not allowed");
  if (url.search || url.hash) throw bad("a query or fragment is not allowed");
  const port = url.port === "" ? NATS_DEFAULT_PORT : Number(url.port);
  const server = `${url.hostname}:${port}`;
  const out: NatsAddress = { server, display: `nats://${server}` };
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  // WHATWG URL drops an empty password, so look at the raw text for "user:@".
  const hasColon = /^nats:\/\/[^@/]*:[^@/]*@/i.test(raw);
  if (user && !hasColon) {
    out.token = user;
    out.display = `nats://***@${server}`;
  } else if (user || pass) {
    out.user = user;
    out.pass = pass;
    out.display = `nats://${url.username}@${server}`;
  }
  return out;
}

// Hides the password (or token) of a URL we could not parse, for the error message.
function redact(raw: string): string {
  return raw.replace(/^(nats:\/\/)([^@/]*)@/i, (_m, scheme: string, info: string) => {
    const colon = info.indexOf(":");
    return colon < 0 ? `${scheme}***@` : `${scheme}${info.slice(0, colon)}:***@`;
  });
}
