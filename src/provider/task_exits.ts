/**
 * Follows containerd's `/tasks/exit` events for as long as the appliance runs. When the stream
 * breaks (containerd restarted), it reconnects after a second and asks the caller to re-check
 * every replica, since exits in between were not seen.
 */

import type { ContainerdEvent, Events } from "../containerd/events.ts";
import type { Logger } from "../log.ts";

/** Runs until `signal` aborts. */
export async function followTaskExits(
  deps: { events: Pick<Events, "subscribe">; log: Logger },
  opts: { signal: AbortSignal; onExit(e: ContainerdEvent): void; onReconnect(): Promise<void> },
): Promise<void> {
  let first = true;
  while (!opts.signal.aborted) {
    try {
      if (!first) await opts.onReconnect();
      first = false;
      for await (const e of deps.events.subscribe(['topic=="/tasks/exit"'], opts.signal)) {
        opts.onExit(e);
      }
    } catch (err) {
      if (opts.signal.aborted) return;
      deps.log.warn("containerd event stream broke, reconnecting", { err: String(err) });
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
