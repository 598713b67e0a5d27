/**
 * Readiness of a replica: TCP accept on its port, or an HTTP 2xx on the function's
 * `com.openfaas.ready.http.path` when it sets one. Polled with a short interval so a replica is
 * used as soon as it can answer.
 */

import { connect } from "node:net";
import { CancelledError, TimeoutError } from "../errors.ts";

/** How to probe one replica. */
export interface Probe {
  ip: string;
  port: number;
  /** HTTP path that must answer 2xx; TCP accept when absent. */
  httpPath?: string;
}

/** Resolves once the replica is ready; TimeoutError after `timeoutMs`. */
export async function waitReady(
  probe: Probe,
  { timeoutMs, signal, intervalMs = 1 }: {
    timeoutMs: number;
    signal?: AbortSignal;
    intervalMs?: number;
  },
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0;; attempt++) {
    if (signal?.aborted) throw new CancelledError(`stopped waiting for ${probe.ip}:${probe.port}`);
    if (await probeOnce(probe)) return;
    if (Date.now() >= deadline) {
      throw new TimeoutError(
        `replica at ${probe.ip}:${probe.port} was not ready within ${timeoutMs / 1000}s${
          probe.httpPath
            ? ` (GET ${probe.httpPath} never answered 2xx)`
            : " (nothing accepted connections)"
        }`,
      );
    }
    // Every millisecond for the first 20 tries (most functions listen within a few milliseconds
    // of their start, and a refused connect costs about 0.1 ms), then backing off to 50 ms.
    const wait = attempt < 20 ? intervalMs : intervalMs * (attempt - 18);
    await new Promise((r) => setTimeout(r, Math.min(50, wait)));
  }
}

/** One probe; true when ready. */
export async function probeOnce(probe: Probe): Promise<boolean> {
  if (!probe.httpPath) return await tcpAccepts(probe.ip, probe.port);
  try {
    const res = await fetch(`http://${probe.ip}:${probe.port}${probe.httpPath}`, {
      signal: AbortSignal.timeout(1000),
    });
    await res.body?.cancel();
    return res.status >= 200 && res.status < 300;
  } catch {
    return false;
  }
}

function tcpAccepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}
