/**
 * The journal's writer: appends frames to the active segment with group commit (everything
 * appended while one write + fdatasync runs goes out together in the next), starts a new segment
 * when the active one is full, and on a failed write cuts the segment back so nothing
 * half-written precedes later records. Accept and begin records fail to their caller with
 * UnavailableError; retry and settle records are kept and written again later.
 */

import { UnavailableError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { SEGMENT_MAGIC } from "./journal_codec.ts";
import type { JournalFile, JournalFs } from "./journal_fs.ts";

/** A segment file and what the journal counts in it. */
export interface Segment {
  num: number;
  size: number;
  /** Live requests whose accept record is in this segment, and their bytes. */
  live: number;
  liveBytes: number;
}

/** A frame waiting to be written. */
export interface PendingRecord {
  frame: Uint8Array;
  /** `fail`: the caller learns of a failed write; `later`: written again until it succeeds. */
  kind: "fail" | "later";
  /** Runs in write order, right after the sync, before the next batch is built. */
  onDurable?: (segment: number, offset: number) => void;
  /** For `later` records whose write failed: what can be applied in memory now. */
  onDeferred?: () => void;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** What the writer is given. */
export interface WriterOptions {
  dir: string;
  fs: JournalFs;
  log: Logger;
  segmentBytes: number;
  rewriteDelayMs: number;
  path(num: number): string;
  /** A new segment is active: it is registered here, and returns records to write first. */
  onSegment(segment: Segment, first: boolean): Promise<PendingRecord[]>;
  /** After each durable batch (segment clean-up). */
  afterBatch(): Promise<void>;
}

/** Appends records durably, in order, many per sync. */
export class JournalWriter {
  readonly #o: WriterOptions;
  #active: { segment: Segment; file: JournalFile } | undefined;
  #nextNum = 1;
  #needRotate = false;
  #queue: PendingRecord[] = [];
  #deferred: PendingRecord[] = [];
  #writing: Promise<void> | undefined;
  #rewriteTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(opts: WriterOptions) {
    this.#o = opts;
  }

  /** The segment being appended to (none while it cannot be created). */
  get active(): Segment | undefined {
    return this.#active?.segment;
  }

  /**
   * Creates the first segment to write to. When that fails (a full disk) the journal still
   * opens — what it holds is delivered — and the next write tries again.
   */
  async start(num: number): Promise<void> {
    this.#nextNum = num;
    try {
      await this.#startSegment();
    } catch (err) {
      this.#o.log.warn("cannot start a journal segment; async requests are refused until it can", {
        err: this.#storeError(err).message,
      });
      return;
    }
    await this.#o.onSegment(this.#active!.segment, true);
  }

  /** Appends a frame; resolves once it is durable (or, for `later`, deferred). */
  append(
    frame: Uint8Array,
    kind: PendingRecord["kind"],
    onDurable?: PendingRecord["onDurable"],
    onDeferred?: () => void,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ frame, kind, onDurable, onDeferred, resolve, reject });
      this.#kick();
    });
  }

  /** Waits for the writes under way, then closes the segment file. */
  async close(): Promise<void> {
    clearTimeout(this.#rewriteTimer);
    while (this.#writing) await this.#writing;
    if (this.#deferred.length > 0) {
      this.#o.log.warn("async queue closed with records it could not write", {
        records: this.#deferred.length,
      });
    }
    await this.#active?.file.close().catch(() => {});
  }

  #kick(): void {
    if (this.#writing || this.#queue.length === 0) return;
    this.#writing = (async () => {
      try {
        while (this.#queue.length > 0) {
          const batch = [...this.#deferred, ...this.#queue];
          this.#deferred = [];
          this.#queue = [];
          await this.#writeBatch(batch);
        }
      } finally {
        this.#writing = undefined;
      }
    })();
  }

  async #writeBatch(batch: PendingRecord[]): Promise<void> {
    let carried: PendingRecord[] = [];
    let start = this.#active?.segment.size ?? 0;
    try {
      if (!this.#active || this.#needRotate || start >= this.#o.segmentBytes) {
        await this.#startSegment();
        carried = await this.#o.onSegment(this.#active!.segment, false);
        start = this.#active!.segment.size;
      }
      const all = [...carried, ...batch];
      const total = all.reduce((n, p) => n + p.frame.length, 0);
      const buf = new Uint8Array(total);
      const offsets: number[] = [];
      let at = 0;
      for (const p of all) {
        offsets.push(start + at);
        buf.set(p.frame, at);
        at += p.frame.length;
      }
      const { file, segment } = this.#active!;
      let written = 0;
      while (written < total) {
        const n = await file.write(buf.subarray(written), start + written);
        if (n <= 0) throw new Error("the file system accepted no bytes");
        written += n;
      }
      await file.datasync();
      segment.size = start + total;
      all.forEach((p, i) => {
        p.onDurable?.(segment.num, offsets[i]);
        p.resolve();
      });
    } catch (err) {
      const error = this.#storeError(err);
      this.#o.log.error("async queue write failed", {
        err: error.message,
        records: batch.length,
      });
      // Nothing half-written may stay in front of later records: cut the segment back, or
      // start a new one when even that fails. Carried records are simply not carried.
      await this.#active?.file.truncate(start).catch(() => (this.#needRotate = true));
      for (const p of batch) {
        if (p.kind === "later") {
          this.#deferred.push(p);
          p.onDeferred?.();
          p.resolve();
        } else {
          p.reject(error);
        }
      }
      if (this.#deferred.length > 0) this.#scheduleRewrite();
      return;
    }
    await this.#o.afterBatch();
  }

  #scheduleRewrite(): void {
    clearTimeout(this.#rewriteTimer);
    this.#rewriteTimer = setTimeout(() => {
      // The deferred records go out as a batch of their own when nothing else is queued.
      if (this.#queue.length === 0) this.#queue.push(...this.#deferred.splice(0));
      this.#kick();
    }, this.#o.rewriteDelayMs);
  }

  #storeError(err: unknown): UnavailableError {
    const code = (err as { code?: string }).code;
    if (code === "ENOSPC" || code === "EDQUOT") {
      return new UnavailableError(
        `async queue cannot store the request: disk full under ${this.#o.dir}`,
        { cause: err },
      );
    }
    return new UnavailableError(
      `async queue cannot store the request: writing under ${this.#o.dir} failed: ${
        (err as Error).message
      }`,
      { cause: err },
    );
  }

  async #startSegment(): Promise<void> {
    const num = this.#nextNum;
    const path = this.#o.path(num);
    const file = await this.#o.fs.open(path, "create");
    try {
      if ((await file.write(SEGMENT_MAGIC, 0)) !== SEGMENT_MAGIC.length) {
        throw new Error("short write of the segment header");
      }
      await file.datasync();
      await this.#o.fs.syncDir(this.#o.dir);
    } catch (err) {
      await file.close().catch(() => {});
      await this.#o.fs.unlink(path).catch(() => {});
      throw err;
    }
    const old = this.#active;
    this.#active = {
      segment: { num, size: SEGMENT_MAGIC.length, live: 0, liveBytes: 0 },
      file,
    };
    this.#nextNum = num + 1;
    this.#needRotate = false;
    await old?.file.close().catch(() => {});
  }
}
