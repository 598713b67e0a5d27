/**
 * A streaming reader for tar archives (ustar, with pax and GNU long names), enough for
 * `docker save` and OCI image-layout tarballs. Gzip-compressed archives are detected and
 * decompressed on the fly.
 */

import { InvalidArgumentError } from "../errors.ts";

/** One archive member. Read `body` to the end (or not at all) before asking for the next. */
export interface TarEntry {
  name: string;
  type: "file" | "directory" | "symlink" | "other";
  size: number;
  body: AsyncIterable<Uint8Array>;
}

const BLOCK = 512;

/** Iterates over the entries of a tar stream (optionally gzip-compressed). */
export async function* readTar(
  input: ReadableStream<Uint8Array>,
  what = "archive",
): AsyncGenerator<TarEntry> {
  const bytes = new ByteReader(await maybeGunzip(input));
  let longName: string | undefined;
  let paxPath: string | undefined;
  let sawEntry = false;
  for (;;) {
    const header = await bytes.read(BLOCK);
    if (!header || header.length < BLOCK) {
      if (!sawEntry) throw new InvalidArgumentError(`${what} is not a tar archive (it is empty)`);
      throw new InvalidArgumentError(`${what} is truncated (no end-of-archive marker)`);
    }
    if (header.every((b) => b === 0)) return;
    if (!checksumOk(header)) {
      throw new InvalidArgumentError(
        sawEntry
          ? `${what} is corrupt (bad tar header checksum)`
          : `${what} is not a tar archive (neither docker save nor OCI layout)`,
      );
    }
    sawEntry = true;
    const size = parseSize(header.subarray(124, 136), what);
    const flag = String.fromCharCode(header[156] || 48);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (flag === "L" || flag === "x") {
      const data = await bytes.read(padded);
      if (!data || data.length < padded) throw new InvalidArgumentError(`${what} is truncated`);
      const text = new TextDecoder().decode(data.subarray(0, size));
      if (flag === "L") longName = text.replace(/\0.*$/s, "");
      else paxPath = paxValue(text, "path") ?? paxPath;
      continue;
    }
    let name = longName ?? paxPath ?? headerName(header);
    longName = paxPath = undefined;
    name = name.replace(/^\.\//, "");
    const type = flag === "0" || flag === "7"
      ? "file"
      : flag === "5"
      ? "directory"
      : flag === "2"
      ? "symlink"
      : "other";
    let consumed = false;
    const body = bytes.stream(size);
    yield {
      name,
      type,
      size,
      body: {
        [Symbol.asyncIterator]: () => {
          consumed = true;
          return body[Symbol.asyncIterator]();
        },
      },
    };
    if (!consumed) { for await (const _ of body) { /* skip unread data */ } }
    else for await (const _ of body) { /* finish a partly read body */ }
    const pad = padded - size;
    if (pad > 0 && !(await bytes.read(pad))) {
      throw new InvalidArgumentError(`${what} is truncated`);
    }
  }
}

function headerName(h: Uint8Array): string {
  const field = (from: number, len: number) =>
    new TextDecoder().decode(h.subarray(from, from + len)).replace(/\0.*$/s, "");
  const name = field(0, 100);
  const magic = field(257, 6);
  const prefix = magic.startsWith("ustar") ? field(345, 155) : "";
  return prefix ? `${prefix}/${name}` : name;
}

function parseSize(field: Uint8Array, what: string): number {
  if (field[0] & 0x80) {
    // base-256 encoding for sizes of 8 GiB and more
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i];
    return n;
  }
  const text = new TextDecoder().decode(field).replace(/[\0 ]+$/g, "").trim();
  const n = text === "" ? 0 : parseInt(text, 8);
  if (!Number.isFinite(n) || !/^[0-7]*$/.test(text)) {
    throw new InvalidArgumentError(`${what} is corrupt (bad size field "${text}")`);
  }
  return n;
}

function checksumOk(h: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  const stored = parseInt(new TextDecoder().decode(h.subarray(148, 156)).replace(/[\0 ]/g, ""), 8);
  return stored === sum;
}

function paxValue(text: string, key: string): string | undefined {
  for (const line of text.split("\n")) {
    const m = line.match(/^\d+ ([^=]+)=(.*)$/s);
    if (m && m[1] === key) return m[2];
  }
  return undefined;
}

async function maybeGunzip(input: ReadableStream<Uint8Array>): Promise<ReadableStream<Uint8Array>> {
  const reader = input.getReader();
  const first = await reader.read();
  const rest = new ReadableStream<Uint8Array>({
    start(c) {
      if (!first.done) c.enqueue(first.value);
      else c.close();
    },
    async pull(c) {
      const { value, done } = await reader.read();
      if (done) c.close();
      else c.enqueue(value);
    },
    cancel: (r) => reader.cancel(r),
  });
  const gz = !first.done && first.value[0] === 0x1f && first.value[1] === 0x8b;
  return gz
    ? rest.pipeThrough(
      new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
    )
    : rest;
}

/** Reads exact byte counts from a stream of arbitrary chunks. */
class ByteReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #done = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** Exactly `n` bytes, fewer at the end of the stream, or undefined when nothing is left. */
  async read(n: number): Promise<Uint8Array | undefined> {
    while (this.#buf.length < n && !this.#done) await this.#fill();
    if (this.#buf.length === 0) return undefined;
    const out = this.#buf.subarray(0, Math.min(n, this.#buf.length));
    this.#buf = this.#buf.subarray(out.length);
    return out;
  }

  #pending = 0;

  /** The next `n` bytes as chunks, without buffering them all. */
  stream(n: number): AsyncIterable<Uint8Array> {
    this.#pending = n;
    return { [Symbol.asyncIterator]: () => this.#chunks() };
  }

  /** Drops what is left of the last stream() (a body the consumer did not read to the end). */
  async discardPending(): Promise<void> {
    for await (const _ of this.#chunks()) { /* drop */ }
  }

  async *#chunks(): AsyncGenerator<Uint8Array> {
    while (this.#pending > 0) {
      if (this.#buf.length === 0) {
        if (this.#done) throw new InvalidArgumentError("archive is truncated");
        await this.#fill();
        continue;
      }
      const take = this.#buf.subarray(0, Math.min(this.#pending, this.#buf.length));
      this.#buf = this.#buf.subarray(take.length);
      this.#pending -= take.length;
      yield take;
    }
  }

  async #fill(): Promise<void> {
    const { value, done } = await this.#reader.read();
    if (done) {
      this.#done = true;
      return;
    }
    if (this.#buf.length === 0) this.#buf = value;
    else {
      const merged = new Uint8Array(this.#buf.length + value.length);
      merged.set(this.#buf);
      merged.set(value, this.#buf.length);
      this.#buf = merged;
    }
  }
}
