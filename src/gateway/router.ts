/**
 * The gateway's routes: health, basic auth on `/system/*` and `/ui/`, the synchronous
 * (`/function/`) and asynchronous (`/async-function/`) invocation paths, `/metrics`, the UI, and
 * everything else handed to the provider (functions, secrets, namespaces, info, logs).
 */

import { MethodNotAllowedError, NotImplementedError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { type FunctionTarget, parseFunctionPath } from "../provider/function_path.ts";
import { unauthorized } from "./auth.ts";
import { withBodyLimit } from "./body.ts";
import { errorResponse } from "./errors.ts";

/** Invokes a function: the request, the function it names, the path and query it goes to. */
export type Invoke = (
  req: Request,
  target: FunctionTarget,
  pathAndQuery: string,
) => Promise<Response>;

/** What the routes need, passed in so tests can use small fakes. */
export interface GatewayDeps {
  checkAuth: (authorization: string | null) => boolean;
  /** The provider's handler (functions, secrets, namespaces, info, logs). */
  provider: (req: Request) => Promise<Response>;
  /** Synchronous invocation through the proxy (metrics included). */
  invoke: Invoke;
  /** `/async-function/…`: answers 202 once the request is stored durably. */
  enqueue?: Invoke;
  /** `/metrics` in the Prometheus text format. */
  metrics?: (req: Request) => Promise<Response>;
  /** `/ui/…` (auth already checked). */
  ui?: (req: Request) => Promise<Response>;
  /** Largest request body accepted, in bytes. */
  maxBodyBytes: number;
  log: Logger;
}

/** Builds the fetch-style handler for the gateway port. */
export function createGatewayHandler(deps: GatewayDeps): (req: Request) => Promise<Response> {
  return async (req) => {
    const url = new URL(req.url);
    const path = url.pathname;
    try {
      if (path.startsWith("/function/")) {
        const target = parseFunctionPath("function", path);
        if (target) {
          return await withBodyLimit(
            req,
            deps.maxBodyBytes,
            (r) => deps.invoke(r, target, target.path + url.search),
          );
        }
      }
      if (path === "/healthz") return new Response("OK\n");
      if (path === "/") return Response.redirect(new URL("/ui/", url), 302);
      if (path.startsWith("/system/") || path === "/ui" || path.startsWith("/ui/")) {
        if (!deps.checkAuth(req.headers.get("authorization"))) return unauthorized();
      }
      if (path.startsWith("/async-function/")) {
        const target = parseFunctionPath("async-function", path);
        if (target && deps.enqueue) {
          if (req.method !== "POST") {
            throw new MethodNotAllowedError(
              `async invocations are POST requests, got ${req.method}`,
            );
          }
          const enqueue = deps.enqueue;
          return await withBodyLimit(
            req,
            deps.maxBodyBytes,
            (r) => enqueue(r, target, target.path + url.search),
          );
        }
      }
      if (path === "/metrics" && deps.metrics) return await deps.metrics(req);
      if (path === "/ui" || path.startsWith("/ui/")) {
        if (deps.ui) return await deps.ui(req);
        throw new NotImplementedError("the web UI is not in this build");
      }
      return await withBodyLimit(req, deps.maxBodyBytes, deps.provider);
    } catch (err) {
      return errorResponse(err, deps.log);
    }
  };
}
