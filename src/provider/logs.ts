/**
 * Function logs. Each replica's stdout and stderr go (through containerd's shim) to
 * `<log dir>/<ns>/<fn>/<id>.log`. A collector reads what is new, stamps every line with the time
 * it was read and appends it to `<id>.jsonl`, which `/system/logs` serves and which survives
 * appliance restarts; both files are kept small (the raw file is truncated once read, the JSON
 * file rotated by size).
 *
 * Under Deno the collector watches the log directory (inotify, one watcher for the whole tree) and
 * reads only the files written to, so idle replicas cost nothing: polling every replica's file
 * allocated about 13 KB per replica and round, which kept the heap growing while idle. Under
 * Node.js (the armhf bundle) it polls.
 */

import { open, readdir, readFile, rename, rm, stat, truncate, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import type { Logger } from "../log.ts";

/** One log line as `/system/logs` returns it. */
export interface LogRecord {
  name: string;
  namespace: string;
  instance: string;
  timestamp: string;
  text: string;
}

/** What to read. */
export interface LogQuery {
  name: string;
  namespace: string;
  instance?: string;
  /** Only lines at or after this time. */
  since?: Date;
  /** The last N lines; all when undefined or negative. */
  tail?: number;
  follow: boolean;
  signal?: AbortSignal;
}

const POLL_MS = 250;
// With nothing new, the pause between rounds doubles up to this: idle functions cost little CPU,
// and new output is still seen within a second (queries collect at once anyway).
const MAX_POLL_MS = 1000;
// While watching: a full scan this often anyway, in case an event was missed (a rescan the
// watcher reports is done at once). A full scan allocates about 13 KB per replica.
const SAFETY_SCAN_MS = 30_000;
const MAX_JSONL = 2 * 1024 * 1024;
const MAX_RAW = 1024 * 1024;

/** Collects replica output into timestamped records and answers log queries. */
export class LogCollector {
  readonly #dir: string;
  readonly #log: Logger;
  readonly #listeners = new Set<(r: LogRecord) => void>();
  // Read positions per raw file, loaded from the .pos file once, then kept here: an idle
  // replica then costs one stat per round.
  readonly #positions = new Map<string, number>();
  readonly #watchFs: WatchFs | undefined;
  #timer?: ReturnType<typeof setTimeout>;
  #turn: Promise<void> = Promise.resolve();
  #closed = false;
  #found = false;
  #watcher?: FsWatcher;
  // While watching: raw files written to since the last round, and whether to scan everything.
  readonly #dirty = new Set<string>();
  #scanAll = false;
  #safety?: ReturnType<typeof setInterval>;

  /** `watchFs` defaults to Deno's (none under Node.js); `null` forces polling. */
  constructor(dir: string, log: Logger, opts: { watchFs?: WatchFs | null } = {}) {
    this.#dir = resolve(dir);
    this.#log = log.child({ component: "logs" });
    this.#watchFs = opts.watchFs === null ? undefined : opts.watchFs ?? runtimeWatchFs();
  }

  /**
   * Starts collecting. Watching: the files written to, `POLL_MS` after the first write, and every
   * file every `SAFETY_SCAN_MS`. Polling: every `POLL_MS` while there is output, less often while
   * there is none.
   */
  start(): void {
    if (this.#watchFs) {
      try {
        this.#watcher = this.#watchFs(this.#dir, { recursive: true });
      } catch (err) {
        this.#log.warn("cannot watch the log directory, polling instead", { err: String(err) });
      }
    }
    if (!this.#watcher) return this.#poll();
    void this.#follow(this.#watcher);
    this.#safety = setInterval(() => this.#mark(undefined), SAFETY_SCAN_MS);
    this.#mark(undefined); // output written while the appliance was down
  }

  #poll(): void {
    let delay = POLL_MS;
    const round = async () => {
      this.#found = false;
      await this.collect().catch(() => {});
      delay = this.#found ? POLL_MS : Math.min(MAX_POLL_MS, delay * 2);
      if (!this.#closed) this.#timer = setTimeout(round, delay);
    };
    this.#timer = setTimeout(round, delay);
  }

  async #follow(watcher: FsWatcher): Promise<void> {
    try {
      for await (const e of watcher) {
        if (e.kind === "access") continue; // opened, read or closed: nothing new
        if (e.flag !== undefined || e.kind === "any" || e.kind === "other") {
          this.#mark(undefined); // a rescan or an event we cannot place: scan everything
          continue;
        }
        for (const path of e.paths) {
          if (path.endsWith(".log")) {
            if (e.kind !== "remove") this.#mark(path);
          } else if (e.kind === "create" && !OWN_FILE.test(path)) {
            // A new directory: files made in it before the watch covered it gave no event.
            this.#mark(undefined);
          }
        }
      }
    } catch (err) {
      if (this.#closed) return;
      this.#log.warn("watching the log directory failed, polling instead", { err: String(err) });
    }
    if (this.#closed) return;
    clearInterval(this.#safety);
    this.#watcher = undefined;
    clearTimeout(this.#timer);
    this.#poll();
  }

  /** Schedules a round for a raw file (or, undefined, for every file). */
  #mark(path: string | undefined): void {
    if (this.#closed) return;
    if (path === undefined) this.#scanAll = true;
    else this.#dirty.add(path);
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const all = this.#scanAll;
      const paths = [...this.#dirty];
      this.#scanAll = false;
      this.#dirty.clear();
      void this.#exclusive(() => all ? this.#collectAll() : this.#collectPaths(paths))
        .catch(() => {});
    }, POLL_MS);
  }

  /** Stops collecting. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    clearInterval(this.#safety);
    try {
      this.#watcher?.close();
    } catch {
      // already closed
    }
  }

  /**
   * Reads new output of every replica once (also called by queries, so they see fresh lines).
   * Collection rounds and the start of a query take turns (one lock), so a query reads the files
   * and starts listening with no round in between: no line is missed or sent twice.
   */
  collect(): Promise<void> {
    return this.#exclusive(() => this.#collectAll());
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#turn.then(work);
    this.#turn = run.then(() => {}, () => {});
    return run;
  }

  async #collectAll(): Promise<void> {
    for (const ns of await dirs(this.#dir)) {
      for (const fn of await dirs(join(this.#dir, ns))) {
        const base = join(this.#dir, ns, fn);
        for (const f of (await readdir(base).catch(() => [])).filter((f) => f.endsWith(".log"))) {
          await this.#collectFile(ns, fn, f.slice(0, -4), base).catch((err) =>
            this.#log.warn("cannot collect a log file", { file: join(base, f), err: String(err) })
          );
        }
      }
    }
  }

  /** Collects the raw files `paths` (`<dir>/<ns>/<fn>/<id>.log`); anything else: a full scan. */
  async #collectPaths(paths: string[]): Promise<void> {
    for (const path of paths) {
      const parts = relative(this.#dir, path).split("/");
      if (parts.length !== 3 || parts[0] === "..") return await this.#collectAll();
      const [ns, fn, file] = parts;
      const base = join(this.#dir, ns, fn);
      await this.#collectFile(ns, fn, file.slice(0, -4), base).catch((err) => {
        // Removed with its function in the meantime: nothing to collect.
        if ((err as { code?: string }).code === "ENOENT") return;
        this.#log.warn("cannot collect a log file", { file: path, err: String(err) });
      });
    }
  }

  /** Removes a function's logs (after it is deleted). */
  async remove(namespace: string, name: string): Promise<void> {
    const dir = join(this.#dir, namespace, name);
    for (const key of this.#positions.keys()) {
      if (key.startsWith(dir + "/")) this.#positions.delete(key);
    }
    await rm(dir, { recursive: true, force: true });
  }

  /**
   * The records matching a query; with `follow`, new ones as they arrive until aborted. Resolves
   * once the stored records are read and, with `follow`, the query listens: a line collected
   * after that is streamed, one collected before is history (dropped by `tail: 0`). Callers send
   * their response headers only then, so a client that writes a line right after it sees them
   * never misses that line.
   */
  async query(q: LogQuery): Promise<AsyncGenerator<LogRecord>> {
    const state: { queue: LogRecord[]; wake?: () => void } = { queue: [] };
    const listener = (r: LogRecord) => {
      if (!matches(r, q)) return;
      state.queue.push(r);
      state.wake?.();
    };
    const records = await this.#exclusive(async () => {
      await this.#collectAll();
      const found = await this.#read(q);
      if (q.follow && !q.signal?.aborted) this.#listeners.add(listener);
      return found;
    });
    // Also when the generator is never read (the client left first).
    const onAbort = () => {
      this.#listeners.delete(listener);
      state.wake?.();
    };
    q.signal?.addEventListener("abort", onAbort, { once: true });
    const last = q.tail !== undefined && q.tail >= 0
      ? (q.tail === 0 ? [] : records.slice(-q.tail))
      : records;
    return this.#emit(q, last, state, () => {
      this.#listeners.delete(listener);
      q.signal?.removeEventListener("abort", onAbort);
    });
  }

  async *#emit(
    q: LogQuery,
    history: LogRecord[],
    state: { queue: LogRecord[]; wake?: () => void },
    done: () => void,
  ): AsyncGenerator<LogRecord> {
    try {
      for (const r of history) yield r;
      if (!q.follow) return;
      for (;;) {
        while (state.queue.length > 0) yield state.queue.shift()!;
        // Checked after every yield too: the abort may have come while the reader held a line.
        if (q.signal?.aborted) return;
        await new Promise<void>((r) => state.wake = r);
        state.wake = undefined;
      }
    } finally {
      done();
    }
  }

  /** The stored records of a query's function, oldest first. */
  async #read(q: LogQuery): Promise<LogRecord[]> {
    const base = join(this.#dir, q.namespace, q.name);
    const records: LogRecord[] = [];
    const files = (await readdir(base).catch(() => [])).filter((f) => /\.jsonl(\.1)?$/.test(f))
      .sort();
    for (const f of files) {
      const text = await readFile(join(base, f), "utf8").catch(() => "");
      for (const line of text.split("\n")) {
        if (!line) continue;
        const r = JSON.parse(line) as LogRecord;
        if (matches(r, q)) records.push(r);
      }
    }
    return records.sort((a, b) => a.timestamp.localeCompare(b.timestamp));
  }

  async #collectFile(namespace: string, name: string, instance: string, base: string) {
    const raw = join(base, `${instance}.log`);
    const posFile = join(base, `.${instance}.pos`);
    const size = (await stat(raw)).size;
    let pos = this.#positions.get(raw) ??
      (Number(await readFile(posFile, "utf8").catch(() => "0")) || 0);
    if (size < pos) pos = 0; // truncated by someone else
    this.#positions.set(raw, pos);
    if (size === pos) return;
    this.#found = true;
    const fh = await open(raw, "r");
    let chunk: Uint8Array;
    try {
      chunk = new Uint8Array(size - pos);
      await fh.read(chunk, 0, chunk.length, pos);
    } finally {
      await fh.close();
    }
    // Only whole lines; a partial last line waits for its newline.
    const end = chunk.lastIndexOf(10) + 1;
    if (end === 0 && chunk.length < 64 * 1024) return;
    const text = new TextDecoder().decode(chunk.subarray(0, end || chunk.length));
    const now = new Date().toISOString();
    const records = text.split("\n").filter((l) => l !== "")
      .map((line) => ({ name, namespace, instance, timestamp: now, text: line }));
    const jsonl = join(base, `${instance}.jsonl`);
    await writeFile(jsonl, records.map((r) => JSON.stringify(r) + "\n").join(""), { flag: "a" });
    pos += end || chunk.length;
    // The shim appends (O_APPEND), so truncating a fully read file is safe; only lines written
    // between the read and the truncate could be lost, so check the size right before.
    if (pos >= MAX_RAW && (await stat(raw)).size === pos) {
      await truncate(raw, 0);
      pos = 0;
    }
    await writeFile(posFile, String(pos));
    this.#positions.set(raw, pos);
    if ((await stat(jsonl)).size > MAX_JSONL) await rename(jsonl, `${jsonl}.1`);
    for (const r of records) for (const l of this.#listeners) l(r);
  }
}

/** What a file watcher reports (Deno.FsEvent). */
export interface FsEvent {
  kind: string;
  paths: string[];
  flag?: string;
}

/** A file watcher (Deno.FsWatcher). */
export interface FsWatcher extends AsyncIterable<FsEvent> {
  close(): void;
}

/** Starts a file watcher (Deno.watchFs). */
export type WatchFs = (path: string, opts: { recursive: boolean }) => FsWatcher;

/** Files the collector writes itself next to the raw ones. */
const OWN_FILE = /\.(jsonl(\.1)?|pos)$/;

/** Deno's watcher; undefined under Node.js. */
function runtimeWatchFs(): WatchFs | undefined {
  const deno = (globalThis as { Deno?: { watchFs?: WatchFs } }).Deno;
  return deno?.watchFs ? (path, opts) => deno.watchFs!(path, opts) : undefined;
}

function matches(r: LogRecord, q: LogQuery): boolean {
  if (r.name !== q.name || r.namespace !== q.namespace) return false;
  if (q.instance && r.instance !== q.instance) return false;
  if (q.since && r.timestamp < q.since.toISOString()) return false;
  return true;
}

async function dirs(path: string): Promise<string[]> {
  const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => e.name);
}
