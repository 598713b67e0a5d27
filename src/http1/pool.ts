/**
 * Buffered TCP connections: a read buffer with the unread bytes in `buf[start, end)`, filled by
 * `fill`, and a pool of kept-alive connections to replicas per `ip:port` (idle ones closed after
 * a while, checked when requests come, so there is no timer). Used by the gateway's front door
 * and by the provider's HTTP/1.1 client (client.ts).
 */

/** A TCP connection and the bytes read from it but not used yet. */
export interface Wire {
  tcp: Deno.TcpConn;
  buf: Uint8Array<ArrayBuffer>;
  start: number;
  end: number;
  /** When it went back to the pool (performance.now()). */
  idleSince: number;
  /** A read started by {@link readAhead} that has not ended: the next `fill` takes it over. */
  pending?: Promise<boolean>;
}

/** Wraps a connection (Nagle off: requests and answers are small and sent whole). */
export function wire(tcp: Deno.TcpConn, size = 16 * 1024): Wire {
  tcp.setNoDelay(true);
  return { tcp, buf: new Uint8Array(size), start: 0, end: 0, idleSince: 0 };
}

/**
 * Reads more bytes after `end`, first moving the unread ones to the front or growing the buffer
 * (up to `max`) when it is full; false at the end of the stream. Throws HeadTooLarge when the
 * unread bytes already fill `max`.
 */
export function fill(w: Wire, max: number): Promise<boolean> {
  // One read at a time: a read started ahead is the one this call waits for.
  return w.pending ?? read(w, max);
}

/**
 * Starts a read now, for a connection nobody reads from for a while (a client waiting for a
 * replica): its end, when the client leaves, is seen at once. The next `fill` takes the read
 * over, so bytes that arrive meanwhile are kept.
 */
export function readAhead(w: Wire, max: number): Promise<boolean> {
  if (w.pending) return w.pending;
  const p: Promise<boolean> = read(w, max, true).finally(() => {
    if (w.pending === p) w.pending = undefined;
  });
  w.pending = p;
  return p;
}

/**
 * One read after `end`. With `keep` (a read ahead) nothing already in the buffer moves, read or
 * not: the request head a waiting call still copies from stays where it is; a full buffer grows
 * (up to `max`, then HeadTooLarge).
 */
async function read(w: Wire, max: number, keep = false): Promise<boolean> {
  if (w.start === w.end && !keep) w.start = w.end = 0;
  if (w.end === w.buf.length) {
    if (w.start > 0 && !keep) {
      w.buf.copyWithin(0, w.start, w.end);
      w.end -= w.start;
      w.start = 0;
    } else {
      if (w.buf.length >= max) throw new HeadTooLarge();
      const bigger = new Uint8Array(Math.min(max, w.buf.length * 2));
      bigger.set(w.buf.subarray(0, w.end));
      w.buf = bigger;
    }
  }
  const n = await w.tcp.read(w.buf.subarray(w.end));
  if (n === null) return false;
  w.end += n;
  return true;
}

/** The unread bytes fill the largest buffer allowed (a head that does not end). */
export class HeadTooLarge extends Error {
  override name = "HeadTooLarge";
}

/** Writes all of `bytes`. */
export async function writeAll(tcp: Deno.TcpConn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await tcp.write(bytes.subarray(off));
}

/** Closes a connection that may be closed already. */
export function closeQuietly(tcp: Deno.Conn): void {
  try {
    tcp.close();
  } catch {
    // already closed
  }
}

const MAX_IDLE_PER_ADDRESS = 64;
/** Pooled connections unused this long are closed (their replica may be gone for good). */
const IDLE_MS = 30_000;

/** Kept-alive connections to replicas, per `ip:port`. */
export class UpstreamPool {
  readonly #idle = new Map<string, Wire[]>();
  #swept = performance.now();

  /**
   * A pooled connection to `key` that has been idle at most `maxIdleMs` (the newest first),
   * or undefined.
   */
  take(key: string, maxIdleMs = IDLE_MS): Wire | undefined {
    this.#sweep();
    const list = this.#idle.get(key);
    const w = list?.pop();
    if (w && performance.now() - w.idleSince > maxIdleMs) {
      closeQuietly(w.tcp);
      return undefined;
    }
    return w;
  }

  /** A new connection to `ip:port`. */
  async connect(ip: string, port: number): Promise<Wire> {
    return wire(await Deno.connect({ hostname: ip, port }));
  }

  /** Puts a connection whose exchange ended cleanly back (closed when it holds extra bytes). */
  give(key: string, w: Wire): void {
    if (w.start !== w.end) return closeQuietly(w.tcp); // more than the response announced
    w.start = w.end = 0;
    w.idleSince = performance.now();
    let list = this.#idle.get(key);
    if (!list) this.#idle.set(key, list = []);
    if (list.length >= MAX_IDLE_PER_ADDRESS) return closeQuietly(w.tcp);
    list.push(w);
  }

  /**
   * Closes the pooled connections to `key`: when one turned out closed by its peer, those idle
   * as long were most likely closed with it.
   */
  drop(key: string): void {
    for (const w of this.#idle.get(key) ?? []) closeQuietly(w.tcp);
    this.#idle.delete(key);
  }

  /** Closes every pooled connection. */
  close(): void {
    for (const list of this.#idle.values()) for (const w of list) closeQuietly(w.tcp);
    this.#idle.clear();
  }

  // At most once a second, and only when requests come: connections idle for IDLE_MS close.
  #sweep(): void {
    const now = performance.now();
    if (now - this.#swept < 1000) return;
    this.#swept = now;
    for (const [key, list] of this.#idle) {
      while (list.length > 0 && now - list[0].idleSince > IDLE_MS) closeQuietly(list.shift()!.tcp);
      if (list.length === 0) this.#idle.delete(key);
    }
  }
}
