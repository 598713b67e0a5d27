/**
 * Following task exits across a broken event stream: the replicas are checked while the new
 * subscription is set up (not before it: a check that hangs must not hold up the events), and
 * once more a little later; events keep coming through.
 */

import assert from "node:assert/strict";
import type { ContainerdEvent } from "../../../src/containerd/events.ts";
import { silentLogger } from "../../../src/log.ts";
import { followTaskExits } from "../../../src/provider/task_exits.ts";

function exit(id: string): ContainerdEvent {
  return {
    timestamp: new Date(),
    namespace: "ns",
    topic: "/tasks/exit",
    type: "",
    payload: { id },
  };
}

Deno.test("task exits: after a broken stream, a hanging check holds up no event", async () => {
  const ac = new AbortController();
  const seen: string[] = [];
  const checks: number[] = [];
  let subscriptions = 0;
  let push!: (e: ContainerdEvent) => void;
  const events = {
    // The first stream breaks at once; the second delivers what is pushed.
    async *subscribe(_filters: string[], signal?: AbortSignal): AsyncGenerator<ContainerdEvent> {
      subscriptions++;
      if (subscriptions === 1) throw new Error("stream broke");
      while (!signal?.aborted) {
        // Ends when the follower stops, as the real stream does.
        const e = await new Promise<ContainerdEvent | undefined>((r) => {
          push = r;
          signal?.addEventListener("abort", () => r(undefined), { once: true });
        });
        if (!e) return;
        yield e;
      }
    },
  };
  const t0 = performance.now();
  let release!: () => void;
  const hanging = new Promise<void>((r) => release = r);
  const following = followTaskExits({ events, log: silentLogger }, {
    signal: ac.signal,
    onExit: (e) => seen.push(String(e.payload.id)),
    // The first check hangs (containerd still starting); the second returns at once.
    onReconnect: () => {
      checks.push(performance.now() - t0);
      return checks.length === 1 ? hanging : Promise.resolve();
    },
    recheckMs: 50,
  });
  try {
    const deadline = Date.now() + 5000;
    while (!push && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.ok(push, "the stream was subscribed again");
    assert.equal(checks.length, 1, "checked once the new subscription was under way");
    push(exit("a"));
    await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seen, ["a"], "the event came through while the check hangs");
    while (checks.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assert.equal(checks.length, 2, "checked again a little later");
    assert.ok(checks[1] - checks[0] >= 45, `the second check ${checks[1] - checks[0]} ms later`);
  } finally {
    release();
    ac.abort();
    await following;
  }
});
