/**
 * Error classes shared by every part of the appliance. Each protocol maps them in exactly one
 * place: gRPC status codes in containerd/errors.ts, HTTP status codes in the gateway, exit codes
 * in the CLI.
 */

/** Something that was asked for does not exist. */
export class NotFoundError extends Error {
  override name = "NotFoundError";
}

/** The caller sent a value that can never be right. */
export class InvalidArgumentError extends Error {
  override name = "InvalidArgumentError";
}

/** The request is well-formed but a value in it cannot be used (HTTP 422). */
export class UnprocessableError extends Error {
  override name = "UnprocessableError";
}

/** Something with the same name already exists. */
export class AlreadyExistsError extends Error {
  override name = "AlreadyExistsError";
}

/** The request conflicts with the current state (for example a concurrent change). */
export class ConflictError extends Error {
  override name = "ConflictError";
}

/** The system is not in the state the operation needs (for example a namespace is not empty). */
export class FailedPreconditionError extends Error {
  override name = "FailedPreconditionError";
}

/** A dependency (containerd, a registry, a function) cannot be reached right now. */
export class UnavailableError extends Error {
  override name = "UnavailableError";
}

/** Credentials are missing or wrong. */
export class UnauthenticatedError extends Error {
  override name = "UnauthenticatedError";
}

/** The caller is known but not allowed to do this (for example not running as root). */
export class PermissionDeniedError extends Error {
  override name = "PermissionDeniedError";
}

/** An upstream (a function replica) could not be reached or broke the connection. */
export class BadGatewayError extends Error {
  override name = "BadGatewayError";
}

/** An operation took longer than it was allowed to. */
export class TimeoutError extends Error {
  override name = "TimeoutError";
}

/** The operation was cancelled by the caller (an AbortSignal fired). */
export class CancelledError extends Error {
  override name = "CancelledError";
}

/** The operation is not supported by this build or by the remote side. */
export class NotImplementedError extends Error {
  override name = "NotImplementedError";
}

/** The command line was wrong; the CLI prints a usage line and exits with code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A request body was larger than the configured limit (HTTP 413). */
export class PayloadTooLargeError extends Error {
  override name = "PayloadTooLargeError";
}

/** The route exists but not for this HTTP method (HTTP 405). */
export class MethodNotAllowedError extends Error {
  override name = "MethodNotAllowedError";
}
