import assert from "node:assert/strict";
import { appendFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type FsEvent,
  type FsWatcher,
  LogCollector,
  type LogRecord,
  type WatchFs,
} from "../../../src/provider/logs.ts";
import { createLogger } from "../../../src/log.ts";

async function withCollector(run: (c: LogCollector, raw: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "faasd-logs-"));
  const base = join(dir, "ns1", "fn1");
  await mkdir(base, { recursive: true });
  const collector = new LogCollector(dir, createLogger({ write: () => {} }));
  try {
    await run(collector, join(base, "replica-1.log"));
  } finally {
    collector.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Reads a follow query until `want` lines arrived or `ms` passed. */
async function follow(c: LogCollector, want: number, ms: number): Promise<LogRecord[]> {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), ms);
  const seen: LogRecord[] = [];
  try {
    for await (
      const r of await c.query({ name: "fn1", namespace: "ns1", follow: true, signal: stop.signal })
    ) {
      seen.push(r);
      if (seen.length >= want) break;
      // A consumer as slow as an HTTP client: the generator stays suspended for a while.
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    clearTimeout(timer);
  }
  return seen;
}

Deno.test("a follow query started while a round collects sees every line exactly once", () =>
  withCollector(async (c, raw) => {
    for (let i = 0; i < 25; i++) {
      await appendFile(raw, `line ${i}\n`);
      // A collection round running while the query starts: its line lands either in the
      // history the query reads or in what it follows, never in neither or both.
      const round = c.collect();
      const seen = await follow(c, i + 1, 1000);
      await round;
      assert.deepEqual(
        seen.map((r) => r.text),
        Array.from({ length: i + 1 }, (_, n) => `line ${n}`),
      );
    }
  }));

Deno.test("lines written after a follow query started are streamed with instance and time", () =>
  withCollector(async (c, raw) => {
    await appendFile(raw, "before\n");
    const reading = follow(c, 3, 5000);
    await appendFile(raw, "after 1\nafter 2\n");
    await c.collect();
    const seen = await reading;
    assert.deepEqual(seen.map((r) => r.text), ["before", "after 1", "after 2"]);
    assert.ok(seen.every((r) => r.instance === "replica-1" && !isNaN(Date.parse(r.timestamp))));
  }));

Deno.test("tail=0 without follow ends at once with nothing", () =>
  withCollector(async (c, raw) => {
    await appendFile(raw, "old\n");
    const out: LogRecord[] = [];
    for await (
      const r of await c.query({ name: "fn1", namespace: "ns1", tail: 0, follow: false })
    ) {
      out.push(r);
    }
    assert.deepEqual(out, []);
  }));

Deno.test("with tail=0, a line collected once the follow query has resolved is streamed", () =>
  withCollector(async (c, raw) => {
    await appendFile(raw, "history\n");
    const stop = new AbortController();
    // Not read yet: as an HTTP response whose headers are out but whose body is not pulled.
    const records = await c.query({
      name: "fn1",
      namespace: "ns1",
      tail: 0,
      follow: true,
      signal: stop.signal,
    });
    await appendFile(raw, "after\n");
    await c.collect();
    const first = await records.next();
    assert.equal((first.value as LogRecord).text, "after");
    stop.abort();
    assert.equal((await records.next()).done, true);
  }));

/** Polls until `path` holds `want` JSON lines (at most `ms`); their texts. */
async function jsonlTexts(path: string, want: number, ms: number): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = await readFile(path, "utf8").catch(() => "");
    const lines = text.split("\n").filter(Boolean).map((l) => (JSON.parse(l) as LogRecord).text);
    if (lines.length >= want || Date.now() > deadline) return lines;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A file watcher whose events the test sends; `fail` ends it with an error. */
function fakeWatcher() {
  const queue: FsEvent[] = [];
  let wake: (() => void) | undefined;
  let error: Error | undefined;
  let closed = false;
  const watcher: FsWatcher = {
    close: () => {
      closed = true;
      wake?.();
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (queue.length > 0) yield queue.shift()!;
        if (error) throw error;
        if (closed) return;
        await new Promise<void>((r) => wake = r);
      }
    },
  };
  return {
    watchFs: (() => watcher) as WatchFs,
    send(e: FsEvent) {
      queue.push(e);
      wake?.();
    },
    fail(err: Error) {
      error = err;
      wake?.();
    },
  };
}

Deno.test("watching: lines of a function deployed after the start are collected without a query", async () => {
  const dir = await mkdtemp(join(tmpdir(), "faasd-logs-"));
  const collector = new LogCollector(dir, createLogger({ write: () => {} }));
  collector.start();
  try {
    await new Promise((r) => setTimeout(r, 400)); // the scan at start is over
    // As the manager and the shim do: the function's directory, then the raw file, at once.
    const base = join(dir, "ns1", "fn2");
    await mkdir(base, { recursive: true });
    await appendFile(join(base, "fn2-1-0.log"), "first\n");
    assert.deepEqual(await jsonlTexts(join(base, "fn2-1-0.jsonl"), 1, 3000), ["first"]);
    // A later write to a file already known.
    await appendFile(join(base, "fn2-1-0.log"), "second\nthird\n");
    assert.deepEqual(await jsonlTexts(join(base, "fn2-1-0.jsonl"), 3, 3000), [
      "first",
      "second",
      "third",
    ]);
  } finally {
    collector.close();
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("watching: a round reads only the files written to", async () => {
  const dir = await mkdtemp(join(tmpdir(), "faasd-logs-"));
  const fake = fakeWatcher();
  const collector = new LogCollector(dir, createLogger({ write: () => {} }), {
    watchFs: fake.watchFs,
  });
  const raw = (fn: string) => join(dir, "ns1", fn, `${fn}-1-0.log`);
  try {
    for (const fn of ["a", "b"]) await mkdir(join(dir, "ns1", fn), { recursive: true });
    collector.start();
    await new Promise((r) => setTimeout(r, 400)); // the scan at start is over
    await appendFile(raw("a"), "from a\n");
    await appendFile(raw("b"), "from b\n");
    fake.send({ kind: "modify", paths: [raw("a")] });
    fake.send({ kind: "access", paths: [raw("b")] }); // not a write
    assert.deepEqual(await jsonlTexts(join(dir, "ns1", "a", "a-1-0.jsonl"), 1, 3000), ["from a"]);
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(await jsonlTexts(join(dir, "ns1", "b", "b-1-0.jsonl"), 0, 0), []);
    // An event the collector cannot place (a rescan) reads everything.
    fake.send({ kind: "other", paths: [], flag: "rescan" });
    assert.deepEqual(await jsonlTexts(join(dir, "ns1", "b", "b-1-0.jsonl"), 1, 3000), ["from b"]);
  } finally {
    collector.close();
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("watching: when the watcher fails, the collector polls", async () => {
  const dir = await mkdtemp(join(tmpdir(), "faasd-logs-"));
  const fake = fakeWatcher();
  const collector = new LogCollector(dir, createLogger({ write: () => {} }), {
    watchFs: fake.watchFs,
  });
  try {
    await mkdir(join(dir, "ns1", "fn1"), { recursive: true });
    collector.start();
    fake.fail(new Error("inotify gone"));
    await appendFile(join(dir, "ns1", "fn1", "r.log"), "polled\n");
    assert.deepEqual(await jsonlTexts(join(dir, "ns1", "fn1", "r.jsonl"), 1, 3000), ["polled"]);
  } finally {
    collector.close();
    await rm(dir, { recursive: true, force: true });
  }
});
