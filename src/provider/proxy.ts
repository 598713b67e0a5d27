/**
 * The function proxy: `/function/NAME[.NS]/path` to a ready replica, streaming both ways, with
 * the OpenFaaS call headers, a timeout (504) and 502 when the replica cannot be reached.
 */

import { randomUUID } from "node:crypto";
import { BadGatewayError, NotFoundError, TimeoutError, UnavailableError } from "../errors.ts";
import { Http1Client, type Http1Response } from "../http1/client.ts";
import { connectionOptions } from "../http1/wire.ts";
import type { Route } from "./manager.ts";

/** Picks a replica (and may scale from zero); the function manager in production. */
export interface Router {
  route(
    name: string,
    namespace: string,
    opts: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<Route>;
}

/** Timeouts of the proxy. */
export interface ProxyOptions {
  /** How long a request waits for a ready replica (scale from zero included). */
  readyTimeoutMs: number;
  /** How long the function may take to send its response headers. */
  upstreamTimeoutMs: number;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1): never forwarded, by this proxy or the front door. */
export const HOP_BY_HOP = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
] as const;

const HOP = new Set<string>([...HOP_BY_HOP, "host", "content-length"]);

/** The names a message's Connection header lists: hop-by-hop too (RFC 9110 §7.6.1). */
function connectionListed(headers: Iterable<[string, string]>): Set<string> | undefined {
  let value = "";
  for (const [k, v] of headers) if (k === "connection") value = value ? `${value}, ${v}` : v;
  return value ? connectionOptions([{ name: "connection", value }]) : undefined;
}

/**
 * Upstream deadlines of the requests in flight, with one timer for all of them: a timer armed
 * and cleared per request costs more than the rest of the proxy's own work. The timer is armed
 * for the earliest deadline; when it fires, what is due is aborted and it is armed again for the
 * earliest left. Most requests share the gateway's timeout, so adding one rarely re-arms it.
 * The gateway's front door keeps its own.
 */
export class Deadlines {
  readonly #pending = new Set<{ deadline: number; abort(): void }>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #armedFor = Infinity;

  add(entry: { deadline: number; abort(): void }): void {
    this.#pending.add(entry);
    if (entry.deadline < this.#armedFor) this.#arm(entry.deadline);
  }

  delete(entry: { deadline: number; abort(): void }): void {
    this.#pending.delete(entry);
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#armedFor = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - performance.now()));
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const e of this.#pending) {
      if (e.deadline <= now) {
        this.#pending.delete(e);
        e.abort();
      } else if (e.deadline < next) {
        next = e.deadline;
      }
    }
    if (next !== Infinity) this.#arm(next);
  }
}

/** Builds the proxy for one router. */
export function createProxy(router: Router, opts: ProxyOptions) {
  const deadlines = new Deadlines();
  // Requests without a body go through our own HTTP/1.1 client under Deno (Node.js: fetch).
  const http1 = "Deno" in globalThis ? new Http1Client() : undefined;
  const proxy = async (
    req: Request,
    name: string,
    namespace: string,
    pathAndQuery: string,
    remoteAddr = "",
  ): Promise<Response> => {
    const started = performance.now();
    const callId = req.headers.get("x-call-id") || randomUUID();
    const startNs = `${BigInt(Date.now()) * 1_000_000n}`;
    let route: Route;
    try {
      route = await router.route(name, namespace, {
        timeoutMs: opts.readyTimeoutMs,
        // Read only when the request must wait for a replica: creating a request's signal has
        // a cost on every request.
        get signal() {
          return req.signal;
        },
      });
    } catch (err) {
      if (err instanceof NotFoundError) throw err;
      throw new UnavailableError(
        `function "${name}.${namespace}" is not available: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    // Header lists as arrays: copying a Headers object and deleting from it costs several
    // times more. Content-Length goes along: the body passes through unchanged, and without it
    // the body would be sent chunked, which simple servers (CGI behind busybox httpd) do not
    // decode.
    const headers: [string, string][] = [];
    let forwarded: string | undefined;
    let host = "";
    const listed = connectionListed(req.headers);
    for (const [k, v] of req.headers) {
      if (k === "x-forwarded-for") forwarded = v;
      else if (k === "host") host = v;
      if (
        (k === "content-length" || !HOP.has(k)) && k !== "x-call-id" && k !== "x-start-time" &&
        k !== "x-forwarded-host" && !listed?.has(k)
      ) {
        if (k !== "x-forwarded-for" || !remoteAddr) headers.push([k, v]);
      }
    }
    headers.push(["x-call-id", callId], ["x-start-time", startNs], ["x-forwarded-host", host]);
    if (remoteAddr) {
      headers.push(["x-forwarded-for", forwarded ? `${forwarded}, ${remoteAddr}` : remoteAddr]);
    }

    // The upstream timeout covers the wait for response headers; the deadline is dropped as
    // soon as they arrive.
    const controller = new AbortController();
    const signal = controller.signal;
    const timeoutMs = route.timeoutMs ?? opts.upstreamTimeoutMs;
    const deadline = {
      deadline: started + timeoutMs,
      abort: () => controller.abort(),
    };
    deadlines.add(deadline);
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    let res: Response | Http1Response;
    try {
      res = !hasBody && http1
        ? await http1.request(route.ip, route.port, req.method, pathAndQuery, headers, signal)
        : await fetch(`http://${route.ip}:${route.port}${pathAndQuery}`, {
          method: req.method,
          headers,
          body: hasBody ? req.body : undefined,
          redirect: "manual",
          signal,
          // @ts-ignore: needed to stream a request body (Deno and Node.js fetch)
          duplex: hasBody ? "half" : undefined,
        });
    } catch (err) {
      deadlines.delete(deadline);
      route.release();
      if (signal.aborted) {
        throw new TimeoutError(
          `function "${name}.${namespace}" did not answer within ${timeoutMs / 1000}s`,
        );
      }
      // fetch's own message is only "fetch failed"; the reason is in its cause.
      const cause = (err as Error).cause as Error | undefined;
      throw new BadGatewayError(
        `cannot reach function "${name}.${namespace}": ${(err as Error).message}${
          cause?.message ? ` (${cause.message})` : ""
        }`,
        {
          cause: err,
        },
      );
    }
    deadlines.delete(deadline);
    // Content-Length stays: the body passes through unchanged, and a known length spares the
    // client chunked decoding.
    const out: [string, string][] = [];
    const listedOut = connectionListed(res.headers as Iterable<[string, string]>);
    for (const [k, v] of res.headers as Iterable<[string, string]>) {
      if (
        (k === "content-length" || !HOP.has(k)) && k !== "x-call-id" && k !== "x-start-time" &&
        !listedOut?.has(k)
      ) {
        if (k !== "x-duration-seconds") out.push([k, v]);
      }
    }
    out.push(
      ["x-call-id", callId],
      ["x-start-time", startNs],
      ["x-duration-seconds", ((performance.now() - started) / 1000).toFixed(6)],
    );
    // The replica counts as busy until its response headers arrive; passing the body through
    // natively (no JS stream in between) is what keeps the proxy cheap.
    route.release();
    try {
      return new Response(res.body ?? null, {
        status: res.status,
        statusText: res.statusText,
        headers: out,
      });
    } catch (err) {
      // A status or header the function sent that a response cannot carry.
      if (res.body instanceof ReadableStream) await res.body.cancel().catch(() => {});
      throw new BadGatewayError(
        `function "${name}.${namespace}" sent an invalid response: ${(err as Error).message}`,
        { cause: err },
      );
    }
  };
  // The router and timeouts go along: the gateway's front door routes with them too.
  return Object.assign(proxy, { router, options: opts });
}
