/**
 * Structured logging: one JSON object per line on stderr, so journald and `jq` can read it.
 * Loggers are passed down as dependencies; there is no global logger.
 */

/** Severity of a log event, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Extra fields attached to one event or to every event of a child logger. */
export type LogFields = Record<string, unknown>;

/** The logging surface every component receives. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose events all carry `fields` (typically `{ component: "provider" }`). */
  child(fields: LogFields): Logger;
}

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  level?: LogLevel;
  /** Receives each finished line without its newline. Defaults to stderr. */
  write?: (line: string) => void;
  now?: () => Date;
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

// Keys whose values must never reach a log line, whatever component logs them.
const SECRET_KEY = /pass(word)?|secret|token|authorization|auth|credential|cookie/i;

/** Reports whether `s` names a log level. */
export function isLogLevel(s: string): s is LogLevel {
  return Object.hasOwn(LEVELS, s);
}

/** Creates the root logger; components get theirs with `child({ component })`. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const min = LEVELS[opts.level ?? "info"];
  const write = opts.write ?? ((line: string) => {
    try {
      process.stderr.write(line + "\n");
    } catch {
      // stderr closed: nothing better to do with a log line.
    }
  });
  const now = opts.now ?? (() => new Date());

  const make = (base: LogFields): Logger => {
    const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
      if (LEVELS[level] < min) return;
      const event: LogFields = { time: now().toISOString(), level, msg };
      for (const [k, v] of Object.entries({ ...base, ...fields })) {
        event[k] = SECRET_KEY.test(k) ? "[redacted]" : toJsonValue(v);
      }
      write(JSON.stringify(event));
    };
    return {
      debug: (msg, f) => emit("debug", msg, f),
      info: (msg, f) => emit("info", msg, f),
      warn: (msg, f) => emit("warn", msg, f),
      error: (msg, f) => emit("error", msg, f),
      child: (fields) => make({ ...base, ...fields }),
    };
  };
  return make({});
}

/** A logger that drops everything, for unit tests and library callers that want silence. */
export const silentLogger: Logger = createLogger({ write: () => {} });

function toJsonValue(v: unknown): unknown {
  if (v instanceof Error) {
    const out: LogFields = { name: v.name, message: v.message };
    if (v.stack) out.stack = v.stack;
    if (v.cause !== undefined) out.cause = toJsonValue(v.cause);
    return out;
  }
  if (typeof v === "bigint") return v.toString();
  return v;
}
