/**
 * Follows containerd's `/tasks/exit` events for as long as the appliance runs. When the stream
 * breaks (containerd restarted), it reconnects after a second and asks the caller to re-check
 * every replica, since exits in between were not seen: once the new subscription is on its way
 * (a check that waited for it would miss exits while it hangs on a containerd still starting),
 * and once more a few seconds later, for an exit between the check and the subscription taking
 * effect.
 */

import type { ContainerdEvent, Events } from "../containerd/events.ts";
import type { Logger } from "../log.ts";

/** Runs until `signal` aborts. */
export async function followTaskExits(
  deps: { events: Pick<Events, "subscribe">; log: Logger },
  opts: {
    signal: AbortSignal;
    onExit(e: ContainerdEvent): void;
    onReconnect(): Promise<void>;
    /** How long after a reconnect the replicas are checked a second time. */
    recheckMs?: number;
  },
): Promise<void> {
  let first = true;
  let recheck: ReturnType<typeof setTimeout> | undefined;
  const check = () => {
    opts.onReconnect().catch((err) => {
      deps.log.warn("cannot check the replicas after reconnecting", { err: String(err) });
    });
  };
  opts.signal.addEventListener("abort", () => clearTimeout(recheck), { once: true });
  while (!opts.signal.aborted) {
    try {
      const events = deps.events.subscribe(['topic=="/tasks/exit"'], opts.signal)[
        Symbol.asyncIterator
      ]();
      // The first next() starts the subscription's call.
      let next = events.next();
      if (!first) {
        check();
        clearTimeout(recheck);
        recheck = setTimeout(check, opts.recheckMs ?? 3000);
      }
      first = false;
      for (let r = await next; !r.done; r = await next) {
        opts.onExit(r.value);
        next = events.next();
      }
    } catch (err) {
      if (opts.signal.aborted) return;
      deps.log.warn("containerd event stream broke, reconnecting", { err: String(err) });
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
