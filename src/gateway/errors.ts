/** The one place where our error classes become HTTP status codes. */

import {
  AlreadyExistsError,
  BadGatewayError,
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
  MethodNotAllowedError,
  NotFoundError,
  NotImplementedError,
  PayloadTooLargeError,
  TimeoutError,
  UnauthenticatedError,
  UnavailableError,
  UnprocessableError,
} from "../errors.ts";
import type { Logger } from "../log.ts";

/** The HTTP status for an error. */
export function statusFor(err: unknown): number {
  if (err instanceof InvalidArgumentError) return 400;
  if (err instanceof UnauthenticatedError) return 401;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof MethodNotAllowedError) return 405;
  if (err instanceof AlreadyExistsError || err instanceof ConflictError) return 409;
  if (err instanceof FailedPreconditionError) return 412;
  if (err instanceof PayloadTooLargeError) return 413;
  if (err instanceof UnprocessableError) return 422;
  if (err instanceof NotImplementedError) return 501;
  if (err instanceof BadGatewayError) return 502;
  if (err instanceof UnavailableError) return 503;
  if (err instanceof TimeoutError) return 504;
  return 500;
}

/**
 * Turns an error into a plain-text response. Known errors keep their message; anything else is
 * logged with its stack and the client sees only a generic message.
 */
export function errorResponse(err: unknown, log: Logger): Response {
  const status = statusFor(err);
  if (status === 500) {
    log.error("request failed", { err });
    return text(500, "internal error, see the faasd log");
  }
  return text(status, err instanceof Error ? err.message : String(err));
}

function text(status: number, body: string): Response {
  return new Response(body + "\n", { status, headers: { "content-type": "text/plain" } });
}
