/**
 * The journal queue on a real temp dir: durable enqueue, replay after a restart, interrupted
 * attempts, torn tails, retry times kept, compaction, group commit, and a full disk (injected).
 */

import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnavailableError } from "../../../src/errors.ts";
import { silentLogger } from "../../../src/log.ts";
import { createJournalQueue } from "../../../src/queue/journal.ts";
import { type JournalFs, nodeJournalFs } from "../../../src/queue/journal_fs.ts";
import type { Delivery, QueueBackend, QueuedRequest } from "../../../src/queue/types.ts";

function request(id: string, body = `body of ${id}`, name = "fn"): QueuedRequest {
  return {
    id,
    name,
    namespace: "openfaas-fn",
    method: "POST",
    pathAndQuery: `/path?q=${id}`,
    headers: [["content-type", "text/plain"], ["x-custom", id]],
    body: new TextEncoder().encode(body),
    callbackUrl: `http://127.0.0.1:1/cb/${id}`,
    acceptedAt: 1_700_000_000_000,
  };
}

/** Collects deliveries; `act` decides what to do with each. */
function collect(
  q: QueueBackend,
  act: (d: Delivery) => Promise<void>,
  concurrency = 4,
): Delivery[] {
  const seen: Delivery[] = [];
  q.consume(async (d) => {
    seen.push(d);
    await act(d);
  }, { concurrency });
  return seen;
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "faasd-journal-"));
  try {
    await fn(join(dir, "queue"));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function segments(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.startsWith("journal-")).sort();
}

Deno.test("journal: an enqueued request is delivered whole, and leaves once acked", async () => {
  await withDir(async (dir) => {
    const q = await createJournalQueue({ dir, log: silentLogger });
    await q.enqueue(request("a"));
    assert.equal(await q.depth(), 1);
    const seen = collect(q, (d) => d.ack());
    await until("the delivery", async () => (await q.depth()) === 0);
    assert.equal(seen.length, 1);
    assert.deepEqual(seen[0].request, request("a"));
    assert.equal(seen[0].attempt, 1);
    assert.equal(seen[0].interrupted, false);
    await q.close();
  });
});

Deno.test("journal: pending requests are replayed in order after a restart", async () => {
  await withDir(async (dir) => {
    const q = await createJournalQueue({ dir, log: silentLogger });
    for (const id of ["a", "b", "c"]) await q.enqueue(request(id));
    await q.close();
    const q2 = await createJournalQueue({ dir, log: silentLogger });
    assert.equal(await q2.depth(), 3);
    const seen = collect(q2, (d) => d.ack(), 1);
    await until("three deliveries", async () => (await q2.depth()) === 0);
    assert.deepEqual(seen.map((d) => d.request.id), ["a", "b", "c"]);
    assert.deepEqual(seen[2].request.body, request("c").body);
    await q2.close();
    const q3 = await createJournalQueue({ dir, log: silentLogger });
    assert.equal(await q3.depth(), 0, "acks survive the restart too");
    await q3.close();
  });
});

Deno.test("journal: an attempt begun and never settled comes back interrupted", async () => {
  await withDir(async (dir) => {
    const q = await createJournalQueue({ dir, log: silentLogger, unsettledDelayMs: 60_000 });
    await q.enqueue(request("begun"));
    await q.enqueue(request("untouched"));
    // The handler records the begin and dies before settling: what kill -9 leaves on disk.
    const seen = collect(q, async (d) => {
      if (d.request.id === "begun") {
        await d.begin();
        throw new Error("crash");
      }
    });
    await until("both deliveries", () => seen.length === 2);
    await q.close();
    const q2 = await createJournalQueue({ dir, log: silentLogger });
    const again = collect(q2, (d) => d.ack());
    await until("both again", async () => (await q2.depth()) === 0);
    const byId = Object.fromEntries(again.map((d) => [d.request.id, d]));
    assert.equal(byId.begun.interrupted, true);
    assert.equal(byId.untouched.interrupted, false);
    await q2.close();
  });
});

Deno.test("journal: a torn tail is ignored and what came before is kept", async (t) => {
  for (const cut of [1, 5, 9, 30]) {
    await t.step(`the last record cut by ${cut} bytes`, async () => {
      await withDir(async (dir) => {
        const q = await createJournalQueue({ dir, log: silentLogger });
        await q.enqueue(request("kept"));
        await q.enqueue(request("torn", "x".repeat(100)));
        await q.close();
        const [seg] = await segments(dir);
        const size = (await stat(join(dir, seg))).size;
        await truncate(join(dir, seg), size - cut);
        const q2 = await createJournalQueue({ dir, log: silentLogger });
        assert.equal(await q2.depth(), 1);
        const seen = collect(q2, (d) => d.ack());
        await until("the kept request", () => seen.length === 1);
        assert.equal(seen[0].request.id, "kept");
        await q2.close();
      });
    });
  }
  await t.step("garbage after the last record", async () => {
    await withDir(async (dir) => {
      const q = await createJournalQueue({ dir, log: silentLogger });
      await q.enqueue(request("kept"));
      await q.close();
      const [seg] = await segments(dir);
      const data = await readFile(join(dir, seg));
      await writeFile(join(dir, seg), new Uint8Array([...data, 40, 0, 0, 0, 1, 2, 3, 4, 5, 6]));
      const q2 = await createJournalQueue({ dir, log: silentLogger });
      assert.equal(await q2.depth(), 1);
      await q2.enqueue(request("after"));
      await q2.close();
      const q3 = await createJournalQueue({ dir, log: silentLogger });
      assert.equal(await q3.depth(), 2, "a record written after the torn segment is read");
      await q3.close();
    });
  });
});

Deno.test("journal: a retry keeps its attempt and not-before time across a restart", async () => {
  await withDir(async (dir) => {
    const q = await createJournalQueue({ dir, log: silentLogger });
    await q.enqueue(request("later"));
    let retriedAt = 0;
    collect(q, async (d) => {
      await d.begin();
      retriedAt = Date.now();
      await d.retry(400);
    });
    await until("the retry", () => retriedAt > 0);
    await q.close();
    const q2 = await createJournalQueue({ dir, log: silentLogger });
    let deliveredAt = 0;
    const seen = collect(q2, async (d) => {
      deliveredAt = Date.now();
      await d.ack();
    });
    await until("the second attempt", () => seen.length === 1);
    assert.equal(seen[0].attempt, 2);
    assert.equal(seen[0].interrupted, false, "a retry settles the begun attempt");
    assert.ok(deliveredAt - retriedAt >= 390, `delivered after ${deliveredAt - retriedAt} ms`);
    await q2.close();
  });
});

Deno.test("journal: settled requests' segments are removed", async () => {
  await withDir(async (dir) => {
    const q = await createJournalQueue({ dir, log: silentLogger, segmentBytes: 2048 });
    collect(q, (d) => d.ack());
    for (let i = 0; i < 200; i++) await q.enqueue(request(`r${i}`, "y".repeat(200)));
    await until("all settled", async () => (await q.depth()) === 0);
    await q.enqueue(request("last")); // a write after the settles triggers the rotation
    await until("settled", async () => (await q.depth()) === 0);
    const files = await segments(dir);
    assert.ok(files.length <= 2, `segments left: ${files.join(" ")}`);
    await q.close();
  });
});

Deno.test("journal: a long-pending request is carried forward so old segments go", async () => {
  await withDir(async (dir) => {
    const q = await createJournalQueue({ dir, log: silentLogger, segmentBytes: 4096 });
    await q.enqueue(request("slow", "s".repeat(100)));
    let slow: Delivery | undefined;
    collect(q, async (d) => {
      if (d.request.id === "slow") {
        await d.begin();
        await d.retry(60_000); // pending for a minute, with attempt 2
        slow = d;
      } else await d.ack();
    });
    await until("the slow one retried", () => slow !== undefined);
    for (let i = 0; i < 300; i++) await q.enqueue(request(`r${i}`, "y".repeat(200)));
    await until("the rest settled", async () => (await q.depth()) === 1);
    await q.enqueue(request("last"));
    await until("settled", async () => (await q.depth()) === 1);
    const files = await segments(dir);
    assert.ok(files.length <= 3, `segments left: ${files.join(" ")}`);
    await q.close();
    const q2 = await createJournalQueue({ dir, log: silentLogger });
    assert.equal(await q2.depth(), 1);
    const t0 = Date.now();
    const seen = collect(q2, (d) => d.ack());
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(seen.length, 0, "its not-before time was carried forward too");
    await q2.close();
    assert.ok(Date.now() - t0 < 5000);
  });
});

Deno.test("journal: appends during a sync share the next one (group commit)", async () => {
  await withDir(async (dir) => {
    let syncs = 0;
    const fs: JournalFs = {
      ...nodeJournalFs,
      open: async (path, mode) => {
        const f = await nodeJournalFs.open(path, mode);
        return { ...f, datasync: () => (syncs++, f.datasync()) };
      },
    };
    const q = await createJournalQueue({ dir, log: silentLogger, fs });
    const before = syncs;
    await Promise.all(Array.from({ length: 500 }, (_, i) => q.enqueue(request(`g${i}`))));
    assert.equal(await q.depth(), 500);
    assert.ok(syncs - before < 50, `${syncs - before} syncs for 500 requests`);
    await q.close();
  });
});

Deno.test("journal: a full disk refuses with UnavailableError and accepts nothing half", async () => {
  await withDir(async (dir) => {
    let full = false;
    const fs: JournalFs = {
      ...nodeJournalFs,
      open: async (path, mode) => {
        const f = await nodeJournalFs.open(path, mode);
        let partial = false;
        return {
          ...f,
          write: async (data, position) => {
            if (!full) return await f.write(data, position);
            // Like the kernel: part of the data fits, the next write gets ENOSPC.
            if (!partial && data.length > 4) {
              partial = true;
              return await f.write(data.subarray(0, data.length >> 1), position);
            }
            partial = false;
            throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
          },
        };
      },
    };
    const q = await createJournalQueue({ dir, log: silentLogger, fs });
    await q.enqueue(request("before"));
    full = true;
    await assert.rejects(q.enqueue(request("refused")), (err: Error) => {
      assert.ok(err instanceof UnavailableError);
      assert.match(err.message, /^async queue cannot store the request: disk full under /);
      assert.ok(err.message.includes(dir), err.message);
      return true;
    });
    assert.equal(await q.depth(), 1);
    full = false;
    await q.enqueue(request("after"));
    await q.close();
    const q2 = await createJournalQueue({ dir, log: silentLogger });
    const seen = collect(q2, (d) => d.ack(), 1);
    await until("two deliveries", async () => (await q2.depth()) === 0);
    assert.deepEqual(seen.map((d) => d.request.id), ["before", "after"]);
    await q2.close();
  });
});

Deno.test("journal: an ack that cannot be written is written once space is back", async () => {
  await withDir(async (dir) => {
    let full = false;
    const fs: JournalFs = {
      ...nodeJournalFs,
      open: async (path, mode) => {
        const f = await nodeJournalFs.open(path, mode);
        return {
          ...f,
          write: (data, position) =>
            full
              ? Promise.reject(Object.assign(new Error("full"), { code: "ENOSPC" }))
              : f.write(data, position),
        };
      },
    };
    const q = await createJournalQueue({ dir, log: silentLogger, fs, rewriteDelayMs: 20 });
    await q.enqueue(request("x"));
    let acked = false;
    collect(q, async (d) => {
      full = true;
      await d.ack(); // does not throw: written later
      acked = true;
    });
    await until("the ack", () => acked);
    assert.equal(await q.depth(), 1, "not settled until written");
    full = false;
    await until("the ack written", async () => (await q.depth()) === 0);
    await q.close();
    const q2 = await createJournalQueue({ dir, log: silentLogger });
    assert.equal(await q2.depth(), 0);
    await q2.close();
  });
});

Deno.test("journal: functions take turns, so one backlog does not starve another", async () => {
  await withDir(async (dir) => {
    const q = await createJournalQueue({ dir, log: silentLogger });
    for (let i = 0; i < 6; i++) await q.enqueue(request(`a${i}`, "", "a"));
    for (let i = 0; i < 2; i++) await q.enqueue(request(`b${i}`, "", "b"));
    const seen = collect(q, (d) => d.ack(), 1);
    await until("all", async () => (await q.depth()) === 0);
    assert.deepEqual(seen.map((d) => d.request.id), [
      "a0",
      "b0",
      "a1",
      "b1",
      "a2",
      "a3",
      "a4",
      "a5",
    ]);
    await q.close();
  });
});

Deno.test("journal: opens on a full disk, delivers what it holds, refuses until space is back", async () => {
  await withDir(async (dir) => {
    const q = await createJournalQueue({ dir, log: silentLogger });
    await q.enqueue(request("held"));
    await q.close();
    let full = true;
    const enospc = () => Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
    const fs: JournalFs = {
      ...nodeJournalFs,
      open: (path, mode) => {
        if (full && mode === "create") return Promise.reject(enospc());
        return nodeJournalFs.open(path, mode);
      },
    };
    const q2 = await createJournalQueue({ dir, log: silentLogger, fs });
    assert.equal(await q2.depth(), 1);
    await assert.rejects(q2.enqueue(request("refused")), /disk full under/);
    full = false;
    await q2.enqueue(request("accepted"));
    const seen = collect(q2, (d) => d.ack(), 1);
    await until("both delivered", async () => (await q2.depth()) === 0);
    assert.deepEqual(seen.map((d) => d.request.id), ["held", "accepted"]);
    await q2.close();
  });
});
