/**
 * The one place where CNI error codes (SPEC §2 "Error") become our error classes, and the errors
 * raised when a host command (`ip`, `iptables`, `sysctl`) fails.
 */

import {
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "../errors.ts";

/** A host command exited non-zero or could not be started. */
export class CommandError extends Error {
  override name = "CommandError";
  /** The command's exit code, when it ran. */
  readonly exitCode?: number;
  /** What the command wrote to stderr, when it ran. */
  readonly stderr?: string;
  constructor(message: string, opts: ErrorOptions & { exitCode?: number; stderr?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.exitCode = opts.exitCode;
    this.stderr = opts.stderr;
  }
}

/** The error object a CNI plugin prints on stdout when it fails. */
export interface CniErrorBody {
  cniVersion?: string;
  code: number;
  msg: string;
  details?: string;
}

/** A CNI plugin failed in a way none of our shared classes describes (I/O, plugin-specific codes). */
export class CniError extends Error {
  override name = "CniError";
  /** The CNI error code (1–11 from the spec, ≥ 100 plugin-specific), or undefined without JSON. */
  readonly code?: number;
  readonly details?: string;
  constructor(message: string, opts: ErrorOptions & { code?: number; details?: string } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = opts.code;
    this.details = opts.details;
  }
}

/** Well-known CNI error codes from SPEC.md §2. */
export const CniCode = Object.freeze({
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO: 5,
  DECODE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN: 11,
});

/**
 * Turns a plugin's failure into an error whose message starts with `action` (e.g.
 * `CNI bridge ADD for "fn-abc"`); the spec's codes pick the class, the plugin's body stays the cause.
 */
export function fromCniFailure(
  action: string,
  body: CniErrorBody | undefined,
  output: string,
): Error {
  const detail = body
    ? body.msg + (body.details ? ` (${body.details})` : "")
    : output.trim() || "no output";
  const message = `${action}: ${detail}`;
  const cause = new CniError(message, { code: body?.code, details: body?.details });
  switch (body?.code) {
    case CniCode.INCOMPATIBLE_VERSION:
      return new FailedPreconditionError(message, { cause });
    case CniCode.UNSUPPORTED_FIELD:
    case CniCode.INVALID_ENV:
    case CniCode.DECODE:
    case CniCode.INVALID_CONFIG:
      return new InvalidArgumentError(message, { cause });
    case CniCode.UNKNOWN_CONTAINER:
      return new NotFoundError(message, { cause });
    case CniCode.TRY_AGAIN:
      return new UnavailableError(message, { cause });
    default:
      return cause;
  }
}

/** Parses a plugin's error JSON, or returns undefined when stdout is not one. */
export function parseCniError(stdout: string): CniErrorBody | undefined {
  try {
    const v = JSON.parse(stdout);
    if (v && typeof v === "object" && typeof v.code === "number" && typeof v.msg === "string") {
      return v as CniErrorBody;
    }
  } catch {
    // Not JSON: the caller reports the raw output.
  }
  return undefined;
}
