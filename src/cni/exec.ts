/**
 * Running host programs (CNI plugins, `ip`, `iptables`, `sysctl`) as child processes. Everything
 * in src/cni/ takes an {@link Exec} so unit tests can pass a fake and the real one is built once
 * by the composition root.
 */

import { Buffer } from "node:buffer";
import { spawn } from "node:child_process";
import { constants as osConstants } from "node:os";
import { CancelledError, NotFoundError, PermissionDeniedError, TimeoutError } from "../errors.ts";
import { CommandError } from "./errors.ts";

/** What a finished child process left behind. */
export interface ExecResult {
  /** The exit code; 128 + the signal number when a signal ended the child. */
  code: number;
  /** The signal that ended the child, e.g. `SIGSEGV`. */
  signal?: string;
  stdout: string;
  stderr: string;
}

/** Options for one child process. */
export interface ExecOptions {
  /** The child's whole environment; when absent it inherits the parent's. */
  env?: Record<string, string>;
  /** Written to the child's stdin, which is then closed. */
  stdin?: string;
  /** Kill the child (SIGKILL) after this many milliseconds; defaults to 30 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Runs `file` with `args` and resolves with its exit code and output; never rejects on a non-zero exit. */
export type Exec = (file: string, args: string[], opts?: ExecOptions) => Promise<ExecResult>;

const DEFAULT_TIMEOUT_MS = 30_000;

interface DenoChild {
  stdin: WritableStream<Uint8Array>;
  stdout: ReadableStream<Uint8Array>;
  stderr: ReadableStream<Uint8Array>;
  status: Promise<{ code: number; signal: string | null }>;
  kill(signal?: string): void;
}

interface DenoCommandApi {
  Command: new (
    file: string,
    opts: {
      args: string[];
      env?: Record<string, string>;
      clearEnv?: boolean;
      stdin: "piped";
      stdout: "piped";
      stderr: "piped";
    },
  ) => { spawn(): DenoChild };
  errors: { NotFound: new () => Error; PermissionDenied: new () => Error };
}

/**
 * Builds the real {@link Exec}: Deno.Command under Deno, node:child_process under Node.js (the
 * armhf bundle). Under Deno the native API is used because the node:child_process layer was
 * seen to crash Deno now and then when children ran next to directory reads (a file
 * descriptor closed twice).
 */
export function createExec(): Exec {
  const deno = (globalThis as { Deno?: DenoCommandApi }).Deno;
  return deno?.Command ? denoExec(deno) : nodeExec();
}

function denoExec(deno: DenoCommandApi): Exec {
  return async (file, args, opts = {}) => {
    const what = [file, ...args].join(" ");
    if (opts.signal?.aborted) throw new CancelledError(`Cannot run "${what}": cancelled`);
    let child: DenoChild;
    try {
      child = new deno.Command(file, {
        args,
        ...(opts.env ? { env: opts.env, clearEnv: true } : {}),
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      if (e instanceof deno.errors.NotFound) {
        throw new NotFoundError(`Cannot run "${file}": not found`);
      }
      if (e instanceof deno.errors.PermissionDenied) {
        throw new PermissionDeniedError(`Cannot run "${file}": permission denied`);
      }
      throw new CommandError(`Cannot run "${what}": ${(e as Error).message}`, { cause: e });
    }
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let failure: Error | undefined;
    const kill = (e: Error) => {
      failure ??= e;
      try {
        child.kill("SIGKILL");
      } catch { /* already gone */ }
    };
    const timer = setTimeout(
      () => kill(new TimeoutError(`"${what}" did not finish within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onAbort = () => kill(new CancelledError(`"${what}" was cancelled`));
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const writer = child.stdin.getWriter();
      // A child that exits before reading stdin breaks the pipe; its exit code tells the story.
      await writer.write(new TextEncoder().encode(opts.stdin ?? "")).catch(() => {});
      await writer.close().catch(() => {});
      const [stdout, stderr, status] = await Promise.all([
        new Response(child.stdout).text(),
        new Response(child.stderr).text(),
        child.status,
      ]);
      if (failure) throw failure;
      return {
        code: status.signal
          ? 128 + (osConstants.signals[status.signal as "SIGKILL"] ?? 0)
          : status.code,
        ...(status.signal ? { signal: status.signal } : {}),
        stdout,
        stderr,
      };
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
    }
  };
}

function nodeExec(): Exec {
  return (file, args, opts = {}) =>
    new Promise<ExecResult>((resolve, reject) => {
      const what = [file, ...args].join(" ");
      if (opts.signal?.aborted) {
        reject(new CancelledError(`Cannot run "${what}": cancelled`));
        return;
      }
      const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const child = spawn(file, args, { env: opts.env, stdio: ["pipe", "pipe", "pipe"] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let settled = false;
      const settle = (e: Error | undefined, r?: ExecResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
        if (e) reject(e);
        else resolve(r!);
      };
      // Settle at once: a grandchild holding the pipes open would delay "close" indefinitely.
      const kill = (e: Error) => {
        child.kill("SIGKILL");
        settle(e);
      };
      const timer = setTimeout(
        () => kill(new TimeoutError(`"${what}" did not finish within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = () => kill(new CancelledError(`"${what}" was cancelled`));
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      child.stdout.on("data", (b: Buffer) => out.push(b));
      child.stderr.on("data", (b: Buffer) => err.push(b));
      // A child that exits before reading stdin makes the write fail with EPIPE; its exit code
      // and output tell the real story, so the write error is not the one reported.
      child.stdin.on("error", () => {});
      child.stdin.end(opts.stdin ?? "");
      child.on("error", (e: NodeJS.ErrnoException) => {
        // Spawn failures may never be followed by "close", so they settle here.
        if (e.code === "ENOENT") settle(new NotFoundError(`Cannot run "${file}": not found`));
        else if (e.code === "EACCES") {
          settle(new PermissionDeniedError(`Cannot run "${file}": permission denied`));
        } else settle(new CommandError(`Cannot run "${what}": ${e.message}`, { cause: e }));
      });
      child.on("close", (code, sig) => {
        settle(undefined, {
          code: code ?? 128 + (sig ? osConstants.signals[sig] ?? 0 : 0),
          ...(sig ? { signal: sig } : {}),
          stdout: Buffer.concat(out).toString("utf8"),
          stderr: Buffer.concat(err).toString("utf8"),
        });
      });
    });
}

/** The CommandError for a finished command that failed: `action`, then its stderr (or stdout, or exit code). */
export function commandFailed(action: string, r: ExecResult): CommandError {
  const detail = r.stderr.trim() || r.stdout.trim() ||
    (r.signal ? `killed by ${r.signal}` : `exit code ${r.code}`);
  return new CommandError(`${action}: ${detail}`, { exitCode: r.code, stderr: r.stderr });
}

/** Runs a command and returns its stdout; a non-zero exit throws {@link commandFailed}`(action, …)`. */
export async function run(
  exec: Exec,
  action: string,
  file: string,
  args: string[],
  opts?: ExecOptions,
): Promise<string> {
  const r = await exec(file, args, opts);
  if (r.code !== 0) throw commandFailed(action, r);
  return r.stdout;
}
