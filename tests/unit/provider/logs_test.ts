import assert from "node:assert/strict";
import { appendFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LogCollector, type LogRecord } from "../../../src/provider/logs.ts";
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
