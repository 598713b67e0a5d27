/**
 * The default queue backend: an append-only journal under `<data-dir>/queue/`. Every change is a
 * record (accepted with the whole request, attempt begun, retry at, settled) appended to the
 * active segment and made durable with fdatasync before the caller's promise resolves; records
 * appended while one sync runs share the next (group commit, `journal_writer.ts`). On open the
 * segments are replayed: requests begun and never settled come back `interrupted`, retries keep
 * their not-before time.
 *
 * Compaction: segments are removed oldest first once no live request has its accept record in
 * them (a live request's later records are always in the same or newer segments, so nothing it
 * needs goes). When the active segment fills up a new one starts, and the live requests of the
 * oldest segment, if they are a minority of it, are carried forward (re-written with their
 * current state) so a few slow requests do not pin old segments forever.
 */

import { join } from "node:path";
import { UnavailableError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { Fifo, MinHeap } from "./collections.ts";
import { decodeFrameAt, decodeSegment, encodeFrame, type JournalRecord } from "./journal_codec.ts";
import { type JournalFs, nodeJournalFs } from "./journal_fs.ts";
import { JournalWriter, type PendingRecord, type Segment } from "./journal_writer.ts";
import type { Delivery, QueueBackend, QueuedRequest } from "./types.ts";

/** Options of the journal. */
export interface JournalOptions {
  /** The queue directory, `<data-dir>/queue`. */
  dir: string;
  log: Logger;
  /** Size at which the active segment is closed and a new one started (default 16 MiB). */
  segmentBytes?: number;
  /** How long a record that could not be written waits before the next try (default 1 s). */
  rewriteDelayMs?: number;
  /** Delay before a delivery whose handler returned without settling is offered again. */
  unsettledDelayMs?: number;
  fs?: JournalFs;
  now?: () => number;
}

type EntryState = "ready" | "delayed" | "delivering" | "settling";

/** What the journal keeps in memory per live request; the request itself stays on disk. */
interface Entry {
  seq: number;
  key: string;
  segment: number;
  offset: number;
  length: number;
  attempt: number;
  notBefore: number;
  begun: boolean;
  interrupted: boolean;
  state: EntryState;
}

const SEGMENT_NAME = /^journal-(\d{10})\.log$/;

/** Opens (replaying what is there) the journal queue in `opts.dir`. */
export async function createJournalQueue(opts: JournalOptions): Promise<QueueBackend> {
  const journal = new Journal(opts);
  await journal.open();
  return journal;
}

class Journal implements QueueBackend {
  readonly #dir: string;
  readonly #log: Logger;
  readonly #fs: JournalFs;
  readonly #now: () => number;
  readonly #unsettledDelayMs: number;
  readonly #writer: JournalWriter;

  readonly #entries = new Map<number, Entry>();
  readonly #segments = new Map<number, Segment>();
  #nextSeq = 1;

  // Ready entries per function (round robin between functions), and delayed ones.
  readonly #ready = new Map<string, Fifo<Entry>>();
  readonly #delayed = new MinHeap<{ at: number; e: Entry }>((d) => d.at);
  #delayTimer: ReturnType<typeof setTimeout> | undefined;
  #delayAt = Infinity;

  #handler: ((d: Delivery) => Promise<void>) | undefined;
  #concurrency = 1;
  #inflight = 0;
  #idle: (() => void) | undefined;
  #closed = false;
  #lastUnavailableLog = -Infinity;

  constructor(opts: JournalOptions) {
    this.#dir = opts.dir;
    this.#log = opts.log.child({ component: "queue" });
    this.#fs = opts.fs ?? nodeJournalFs;
    this.#now = opts.now ?? Date.now;
    this.#unsettledDelayMs = opts.unsettledDelayMs ?? 1000;
    this.#writer = new JournalWriter({
      dir: this.#dir,
      fs: this.#fs,
      log: this.#log,
      segmentBytes: opts.segmentBytes ?? 16 * 1024 * 1024,
      rewriteDelayMs: opts.rewriteDelayMs ?? 1000,
      path: (num) => this.#path(num),
      onSegment: (segment, first) => {
        this.#segments.set(segment.num, segment);
        return first ? Promise.resolve([]) : this.#carryForward();
      },
      afterBatch: () => this.#collect(),
    });
  }

  /** Replays the segments, removes dead ones and starts a new active segment. */
  async open(): Promise<void> {
    await this.#fs.mkdir(this.#dir);
    const nums = (await this.#fs.readdir(this.#dir))
      .map((f) => f.match(SEGMENT_NAME)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    for (const num of nums) {
      const data = await this.#fs.readFile(this.#path(num));
      const decoded = decodeSegment(data);
      if (decoded.torn) {
        // Expected after kill -9 or a power cut: the tail was never acknowledged.
        this.#log.warn("journal segment ends with an incomplete record; ignoring the rest", {
          segment: this.#path(num),
          reason: decoded.torn,
        });
      }
      this.#segments.set(num, { num, size: data.length, live: 0, liveBytes: 0 });
      for (const f of decoded.frames) this.#replay(f.record, num, f.offset, f.length);
    }
    const interrupted = [...this.#entries.values()].filter((e) => e.interrupted).length;
    for (const e of [...this.#entries.values()].sort((a, b) => a.seq - b.seq)) {
      const seg = this.#segments.get(e.segment)!;
      seg.live++;
      seg.liveBytes += e.length;
      this.#schedule(e);
    }
    await this.#writer.start((nums.at(-1) ?? 0) + 1);
    await this.#collect();
    this.#log.info("async queue opened", {
      dir: this.#dir,
      pending: this.#entries.size,
      interrupted,
      segments: this.#segments.size,
    });
  }

  #replay(rec: JournalRecord, segment: number, offset: number, length: number): void {
    this.#nextSeq = Math.max(this.#nextSeq, rec.seq + 1);
    const e = this.#entries.get(rec.seq);
    switch (rec.type) {
      case "accept":
        this.#entries.set(rec.seq, {
          seq: rec.seq,
          key: `${rec.request.name}.${rec.request.namespace}`,
          segment,
          offset,
          length,
          attempt: rec.attempt,
          notBefore: rec.notBefore,
          begun: rec.begun,
          interrupted: rec.begun,
          state: "ready",
        });
        return;
      case "begin":
        if (e) e.begun = e.interrupted = true;
        return;
      case "retry":
        if (e) {
          e.begun = e.interrupted = false;
          e.attempt = rec.attempt;
          e.notBefore = rec.notBefore;
        }
        return;
      case "settle":
        this.#entries.delete(rec.seq);
        return;
    }
  }

  async enqueue(request: QueuedRequest): Promise<void> {
    if (this.#closed) throw new UnavailableError("async queue is shutting down");
    const rec = { type: "accept", seq: this.#nextSeq++, attempt: 1, notBefore: 0, begun: false };
    const frame = encodeFrame({ ...rec, request } as JournalRecord);
    await this.#writer.append(frame, "fail", (segment, offset) => {
      const e: Entry = {
        seq: rec.seq,
        key: `${request.name}.${request.namespace}`,
        segment,
        offset,
        length: frame.length,
        attempt: 1,
        notBefore: 0,
        begun: false,
        interrupted: false,
        state: "ready",
      };
      this.#entries.set(e.seq, e);
      const seg = this.#segments.get(segment)!;
      seg.live++;
      seg.liveBytes += frame.length;
      this.#schedule(e);
    });
  }

  consume(handler: (delivery: Delivery) => Promise<void>, opts: { concurrency: number }): void {
    this.#handler = handler;
    this.#concurrency = Math.max(1, opts.concurrency);
    this.#pump();
  }

  depth(): Promise<number> {
    return Promise.resolve(this.#entries.size);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#delayTimer);
    if (this.#inflight > 0) await new Promise<void>((r) => (this.#idle = r));
    await this.#writer.close();
  }

  // ---- delivery ----

  #schedule(e: Entry): void {
    if (e.notBefore > this.#now()) {
      e.state = "delayed";
      this.#delayed.push({ at: e.notBefore, e });
      this.#armDelay(e.notBefore);
      return;
    }
    e.state = "ready";
    let list = this.#ready.get(e.key);
    if (!list) this.#ready.set(e.key, list = new Fifo());
    list.push(e);
    this.#pump();
  }

  #armDelay(at: number): void {
    if (this.#closed || at >= this.#delayAt) return;
    clearTimeout(this.#delayTimer);
    this.#delayAt = at;
    this.#delayTimer = setTimeout(() => {
      this.#delayAt = Infinity;
      const now = this.#now();
      while ((this.#delayed.peek()?.at ?? Infinity) <= now) {
        const { at, e } = this.#delayed.pop()!;
        // Skip stale heap items: the entry was rescheduled or settled since.
        if (e.state === "delayed" && e.notBefore === at && this.#entries.has(e.seq)) {
          this.#schedule(e);
        }
      }
      const next = this.#delayed.peek()?.at;
      if (next !== undefined) this.#armDelay(next);
    }, Math.min(3_600_000, Math.max(0, at - this.#now())));
  }

  /** The next ready entry, taking functions in turn so one backlog does not starve the rest. */
  #takeReady(): Entry | undefined {
    for (const [key, list] of this.#ready) {
      this.#ready.delete(key);
      const e = list.shift();
      if (list.length > 0) this.#ready.set(key, list); // to the back of the rotation
      if (e && e.state === "ready" && this.#entries.has(e.seq)) return e;
    }
    return undefined;
  }

  #pump(): void {
    while (this.#handler && !this.#closed && this.#inflight < this.#concurrency) {
      const e = this.#takeReady();
      if (!e) return;
      this.#inflight++;
      void this.#deliver(e, this.#handler);
    }
  }

  async #deliver(e: Entry, handler: (d: Delivery) => Promise<void>): Promise<void> {
    e.state = "delivering";
    let settled = false;
    try {
      const request = await this.#readRequest(e);
      const attempt = e.attempt;
      const delivery: Delivery = {
        request,
        attempt,
        interrupted: e.interrupted,
        begin: () => {
          if (settled) return Promise.reject(new Error("delivery already settled"));
          const frame = encodeFrame({ type: "begin", seq: e.seq, attempt });
          return this.#writer.append(frame, "fail", () => {
            e.begun = true;
          });
        },
        ack: () => {
          if (settled) return Promise.resolve();
          settled = true;
          e.state = "settling";
          return this.#writer.append(encodeFrame({ type: "settle", seq: e.seq }), "later", () => {
            this.#remove(e);
          });
        },
        retry: (delayMs: number) => {
          if (settled) return Promise.resolve();
          settled = true;
          const next = { attempt: attempt + 1, notBefore: this.#now() + Math.max(0, delayMs) };
          let applied = false;
          const apply = () => {
            if (applied) return;
            applied = true;
            e.begun = e.interrupted = false;
            e.attempt = next.attempt;
            e.notBefore = next.notBefore;
            if (!this.#closed) this.#schedule(e);
          };
          return this.#writer.append(
            encodeFrame({ type: "retry", seq: e.seq, ...next }),
            "later",
            apply,
            apply,
          );
        },
      };
      await handler(delivery);
    } catch (err) {
      if (!(err instanceof UnavailableError)) {
        this.#log.error("async delivery failed", { seq: e.seq, err });
      } else if (this.#now() - this.#lastUnavailableLog > 10_000) {
        // A full disk fails every begin until space is back: say so now and then, not each time.
        this.#lastUnavailableLog = this.#now();
        this.#log.warn("async deliveries wait: the queue cannot record them", {
          err: err.message,
        });
      }
    } finally {
      this.#inflight--;
      if (!settled && this.#entries.has(e.seq)) {
        // The handler gave up without settling: offer it again later; if it had begun, its
        // result is unknown and the next delivery reports it failed.
        if (e.begun) e.interrupted = true;
        e.notBefore = this.#now() + this.#unsettledDelayMs;
        if (!this.#closed) this.#schedule(e);
      }
      if (this.#inflight === 0) this.#idle?.();
      this.#pump();
    }
  }

  async #readRequest(e: Entry): Promise<QueuedRequest> {
    const rec = await this.#readFrame(e.segment, e.offset, e.length);
    if (rec.type !== "accept") {
      throw new Error(`journal record of request ${e.seq} is not an accept record`);
    }
    return rec.request;
  }

  async #readFrame(segment: number, offset: number, length: number): Promise<JournalRecord> {
    const file = await this.#fs.open(this.#path(segment), "read");
    try {
      const buf = new Uint8Array(length);
      let got = 0;
      while (got < length) {
        const n = await file.read(buf.subarray(got), offset + got);
        if (n === 0) break;
        got += n;
      }
      const result = decodeFrameAt(buf.subarray(0, got), 0);
      if (typeof result === "string") {
        throw new Error(`cannot read journal record in ${this.#path(segment)}: ${result}`);
      }
      return result.record;
    } finally {
      await file.close();
    }
  }

  #remove(e: Entry): void {
    if (!this.#entries.delete(e.seq)) return;
    const seg = this.#segments.get(e.segment);
    if (seg) {
      seg.live--;
      seg.liveBytes -= e.length;
    }
  }

  // ---- compaction ----

  /**
   * Re-writes the live requests of the oldest closed segment into the new active one when they
   * are at most half of it, so the segment can go.
   */
  async #carryForward(): Promise<PendingRecord[]> {
    const oldest = [...this.#segments.values()].filter((s) => s.num !== this.#writer.active?.num)
      .sort((a, b) => a.num - b.num)[0];
    if (!oldest || oldest.live === 0 || oldest.liveBytes * 2 > oldest.size) return [];
    const out: PendingRecord[] = [];
    for (const e of this.#entries.values()) {
      if (e.segment !== oldest.num) continue;
      const rec = await this.#readFrame(e.segment, e.offset, e.length).catch((err) => {
        this.#log.warn("cannot carry a request forward", { seq: e.seq, err });
        return undefined;
      });
      if (rec?.type !== "accept") continue;
      const frame = encodeFrame({
        ...rec,
        attempt: e.attempt,
        notBefore: e.notBefore,
        // Begun, or settling without its settle record written: unknown result after a crash.
        begun: e.begun || e.state === "settling",
      });
      out.push({
        frame,
        kind: "later",
        onDurable: (segment, offset) => {
          if (!this.#entries.has(e.seq)) return;
          const from = this.#segments.get(e.segment);
          if (from) {
            from.live--;
            from.liveBytes -= e.length;
          }
          e.segment = segment;
          e.offset = offset;
          e.length = frame.length;
          const to = this.#segments.get(segment)!;
          to.live++;
          to.liveBytes += frame.length;
        },
        resolve: () => {},
        reject: () => {},
      });
    }
    if (out.length > 0) {
      this.#log.debug("carrying live requests forward", { segment: oldest.num, n: out.length });
    }
    return out;
  }

  /** Removes the oldest closed segments while no live request has its accept record there. */
  async #collect(): Promise<void> {
    const closed = [...this.#segments.values()].filter((s) => s.num !== this.#writer.active?.num)
      .sort((a, b) => a.num - b.num);
    let removed = false;
    for (const seg of closed) {
      if (seg.live > 0) break;
      try {
        await this.#fs.unlink(this.#path(seg.num));
      } catch (err) {
        if ((err as { code?: string }).code !== "ENOENT") {
          this.#log.warn("cannot remove a journal segment", { segment: seg.num, err });
          break;
        }
      }
      this.#segments.delete(seg.num);
      removed = true;
    }
    if (removed) await this.#fs.syncDir(this.#dir).catch(() => {});
  }

  #path(num: number): string {
    return join(this.#dir, `journal-${String(num).padStart(10, "0")}.log`);
  }
}
