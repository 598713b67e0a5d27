/**
 * The one place where gRPC status codes from containerd become our error classes (containerd's
 * own errdefs.FromGRPC plays this role in Go).
 */

import {
  AlreadyExistsError,
  CancelledError,
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  NotImplementedError,
  PermissionDeniedError,
  TimeoutError,
  UnauthenticatedError,
  UnavailableError,
} from "../errors.ts";

/** gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export const GrpcCode = Object.freeze({
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
});

/** An error containerd reported that has no more specific class (runtime or shim failures). */
export class ContainerdError extends Error {
  override name = "ContainerdError";
}

/** What was being done when the error happened, for the message. */
export interface CallContext {
  /** `Service.Method`, e.g. `Tasks.Start`. */
  action: string;
  socket: string;
  namespace?: string;
}

/** The message a user sees when containerd's socket does not answer. */
export function unreachableMessage(socket: string): string {
  return `cannot reach containerd at ${socket} — is it running? systemctl start containerd`;
}

/**
 * Converts an error carrying a gRPC status code (from rpc.ts) into one of our error classes.
 * Anything without a code is returned unchanged.
 */
export function fromGrpc(err: unknown, ctx: CallContext): Error {
  if (!isGrpcError(err)) return err instanceof Error ? err : new Error(String(err));
  const where = ctx.namespace ? ` in namespace "${ctx.namespace}"` : "";
  const detail = err.details || err.message;
  const msg = `containerd ${ctx.action}${where}: ${detail}`;
  const opts = { cause: err };
  switch (err.code) {
    case GrpcCode.NOT_FOUND:
      return new NotFoundError(msg, opts);
    case GrpcCode.ALREADY_EXISTS:
      return new AlreadyExistsError(msg, opts);
    case GrpcCode.INVALID_ARGUMENT:
    case GrpcCode.OUT_OF_RANGE:
      return new InvalidArgumentError(msg, opts);
    case GrpcCode.FAILED_PRECONDITION:
      return new FailedPreconditionError(msg, opts);
    case GrpcCode.ABORTED:
      return new ConflictError(msg, opts);
    case GrpcCode.CANCELLED:
      return new CancelledError(msg, opts);
    case GrpcCode.DEADLINE_EXCEEDED:
      return new TimeoutError(msg, opts);
    case GrpcCode.UNIMPLEMENTED:
      return new NotImplementedError(msg, opts);
    case GrpcCode.PERMISSION_DENIED:
      return new PermissionDeniedError(msg, opts);
    case GrpcCode.UNAUTHENTICATED:
      return new UnauthenticatedError(msg, opts);
    case GrpcCode.UNAVAILABLE:
      return new UnavailableError(`${unreachableMessage(ctx.socket)} (${detail})`, opts);
    default:
      return new ContainerdError(msg, opts);
  }
}

interface GrpcErrorShape {
  code: number;
  details?: string;
  message: string;
}

function isGrpcError(err: unknown): err is GrpcErrorShape {
  return err instanceof Error && typeof (err as Partial<GrpcErrorShape>).code === "number";
}
