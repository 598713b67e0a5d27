/**
 * The function proxy: `/function/NAME[.NS]/path` to a ready replica, streaming both ways, with
 * the OpenFaaS call headers, a timeout (504) and 502 when the replica cannot be reached.
 */

import { randomUUID } from "node:crypto";
import { BadGatewayError, NotFoundError, TimeoutError, UnavailableError } from "../errors.ts";
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

// Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded.
const HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
]);

/** Builds the proxy for one router. */
export function createProxy(router: Router, opts: ProxyOptions) {
  return async (
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
        signal: req.signal,
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
    const headers = new Headers(req.headers);
    // Content-Length goes along: the body passes through unchanged, and without it the body would
    // be sent chunked, which simple servers (CGI behind busybox httpd) do not decode.
    for (const h of HOP) if (h !== "content-length") headers.delete(h);
    headers.set("x-call-id", callId);
    headers.set("x-start-time", startNs);
    const forwarded = req.headers.get("x-forwarded-for");
    if (remoteAddr) {
      headers.set("x-forwarded-for", forwarded ? `${forwarded}, ${remoteAddr}` : remoteAddr);
    }
    headers.set("x-forwarded-host", req.headers.get("host") ?? "");

    // The upstream timeout covers the wait for response headers; the timer is cleared as soon
    // as they arrive (a timer per request left to expire would hold memory under load).
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), opts.upstreamTimeoutMs);
    const signal = controller.signal;
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    let res: Response;
    try {
      res = await fetch(`http://${route.ip}:${route.port}${pathAndQuery}`, {
        method: req.method,
        headers,
        body: hasBody ? req.body : undefined,
        redirect: "manual",
        signal,
        // @ts-ignore: needed to stream a request body (Deno and Node.js fetch)
        duplex: hasBody ? "half" : undefined,
      });
    } catch (err) {
      clearTimeout(timer);
      route.release();
      if (signal.aborted) {
        throw new TimeoutError(
          `function "${name}.${namespace}" did not answer within ${opts.upstreamTimeoutMs / 1000}s`,
        );
      }
      throw new BadGatewayError(
        `cannot reach function "${name}.${namespace}": ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const out = new Headers(res.headers);
    // Content-Length stays: the body passes through unchanged, and a known length spares the
    // client chunked decoding.
    for (const h of HOP) if (h !== "content-length") out.delete(h);
    out.set("x-call-id", callId);
    out.set("x-start-time", startNs);
    out.set("x-duration-seconds", ((performance.now() - started) / 1000).toFixed(6));
    clearTimeout(timer);
    // The replica counts as busy until its response headers arrive; passing the body through
    // natively (no JS stream in between) is what keeps the proxy cheap.
    route.release();
    const body = res.body;
    return new Response(body ?? null, {
      status: res.status,
      statusText: res.statusText,
      headers: out,
    });
  };
}
