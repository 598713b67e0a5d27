/**
 * The gateway's routes: health, basic auth on `/system/*` and `/ui/`, and everything else handed
 * to the provider (functions, secrets, namespaces, info, the function proxy). Async invocations,
 * metrics and the UI arrive with issue #5.
 */

import { NotImplementedError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { unauthorized } from "./auth.ts";
import { errorResponse } from "./errors.ts";

/** What the routes need, passed in so tests can use small fakes. */
export interface GatewayDeps {
  checkAuth: (authorization: string | null) => boolean;
  /** The provider's handler (functions, secrets, namespaces, info, `/function/` proxy). */
  provider: (req: Request) => Promise<Response>;
  log: Logger;
}

/** Builds the fetch-style handler for the gateway port. */
export function createGatewayHandler(deps: GatewayDeps): (req: Request) => Promise<Response> {
  return async (req) => {
    const path = new URL(req.url).pathname;
    try {
      if (path === "/healthz") return new Response("OK\n");
      if (path.startsWith("/system/") || path === "/ui" || path.startsWith("/ui/")) {
        if (!deps.checkAuth(req.headers.get("authorization"))) return unauthorized();
      }
      if (path.startsWith("/async-function/") || path.startsWith("/ui") || path === "/metrics") {
        throw new NotImplementedError(`${req.method} ${path} is not in this build yet (issue #5)`);
      }
      return await deps.provider(req);
    } catch (err) {
      return errorResponse(err, deps.log);
    }
  };
}
