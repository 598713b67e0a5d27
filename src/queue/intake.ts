/**
 * `POST /async-function/NAME[.NS][/path]`: checks the function exists (404, never 202, for a
 * missing one), reads the whole request, stores it in the queue and answers 202 with `X-Call-Id`
 * once it is durable.
 */

import { randomUUID } from "node:crypto";
import { InvalidArgumentError, NotFoundError } from "../errors.ts";
import type { FunctionTarget } from "../provider/function_path.ts";
import type { QueueBackend, QueuedRequest } from "./types.ts";

/** What the intake needs. */
export interface IntakeDeps {
  queue: Pick<QueueBackend, "enqueue">;
  /** Whether the function is deployed (the provider's in-memory table). */
  exists(name: string, namespace: string): Promise<boolean>;
  now?: () => number;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) and those that describe this connection only.
const DROPPED = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
]);

/** Builds the `/async-function/` handler (the router's `enqueue`). */
export function createIntake(deps: IntakeDeps) {
  const now = deps.now ?? Date.now;
  return async (req: Request, target: FunctionTarget, pathAndQuery: string): Promise<Response> => {
    if (!(await deps.exists(target.name, target.namespace))) {
      throw new NotFoundError(`function "${target.name}.${target.namespace}" not found`);
    }
    const callbackUrl = req.headers.get("x-callback-url") ?? undefined;
    if (callbackUrl !== undefined) checkCallbackUrl(callbackUrl);
    const request: QueuedRequest = {
      id: req.headers.get("x-call-id") || randomUUID(),
      name: target.name,
      namespace: target.namespace,
      method: req.method,
      pathAndQuery,
      headers: [...req.headers].filter(([k]) => !DROPPED.has(k.toLowerCase())),
      // The router has limited the body's size already.
      body: new Uint8Array(await req.arrayBuffer()),
      callbackUrl,
      acceptedAt: now(),
    };
    await deps.queue.enqueue(request);
    return new Response(null, { status: 202, headers: { "x-call-id": request.id } });
  };
}

function checkCallbackUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError(`X-Callback-Url "${url}" is not a URL`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new InvalidArgumentError(`X-Callback-Url "${url}" must be an http or https URL`);
  }
}
