/**
 * The gateway's routes. This build answers health, system info and namespaces; the function
 * routes arrive with the provider (issue #4) and the rest of the gateway (issue #5).
 */

import { NotFoundError, NotImplementedError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { unauthorized } from "./auth.ts";
import { errorResponse } from "./errors.ts";

/** What the routes need, passed in so tests can use small fakes. */
export interface GatewayDeps {
  checkAuth: (authorization: string | null) => boolean;
  info: { release: string; sha: string; arch: string };
  /** Namespaces functions may be deployed to. */
  listNamespaces: () => Promise<string[]>;
  log: Logger;
}

/** The provider name clients see; not "faasd", which tells them "one replica, no scaling". */
export const PROVIDER_NAME = "faasd-ts";

/** Builds the fetch-style handler for the gateway port. */
export function createGatewayHandler(deps: GatewayDeps): (req: Request) => Promise<Response> {
  return async (req) => {
    const path = new URL(req.url).pathname;
    try {
      if (path === "/healthz") return new Response("OK\n");
      if (path.startsWith("/system/") || path === "/ui" || path.startsWith("/ui/")) {
        if (!deps.checkAuth(req.headers.get("authorization"))) return unauthorized();
      }
      if (req.method === "GET" && path === "/system/info") return json(systemInfo(deps.info));
      if (req.method === "GET" && path === "/system/namespaces") {
        return json(await deps.listNamespaces());
      }
      if (
        path.startsWith("/system/") || path.startsWith("/function/") ||
        path.startsWith("/async-function/") || path.startsWith("/ui")
      ) {
        throw new NotImplementedError(
          `${req.method} ${path} is not in this build yet (functions arrive with issues #4 and #5)`,
        );
      }
      throw new NotFoundError(`no route for ${req.method} ${path}`);
    } catch (err) {
      return errorResponse(err, deps.log);
    }
  };
}

/** The `/system/info` document of the OpenFaaS contract. */
export function systemInfo(info: GatewayDeps["info"]) {
  const version = { release: info.release, sha: info.sha };
  return {
    provider: { provider: PROVIDER_NAME, orchestration: "containerd", version },
    version,
    arch: info.arch,
  };
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}
