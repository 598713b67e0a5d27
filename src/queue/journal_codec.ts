/**
 * The journal's on-disk format: segment files that start with a magic line, followed by frames of
 * `[u32 payload length][u32 CRC-32 of the payload][payload]` (little endian). A frame cut short or
 * with a wrong checksum marks the end of what was durably written (a torn tail after kill -9 or a
 * power cut); the reader stops there instead of failing.
 */

import type { QueuedRequest } from "./types.ts";

/** First bytes of every segment file (format version 1). */
export const SEGMENT_MAGIC = new TextEncoder().encode("FDQJ1\n\0\0");

/** Frame header size: length and checksum. */
export const FRAME_HEADER_BYTES = 8;

// A frame longer than this is corruption, not a record (bodies are limited far below it).
const MAX_PAYLOAD_BYTES = 1 << 30;

/** A request accepted (or carried forward by compaction) with its delivery state. */
export interface AcceptRecord {
  type: "accept";
  seq: number;
  attempt: number;
  notBefore: number;
  /** An attempt had begun and not settled when the record was written (carried forward). */
  begun: boolean;
  request: QueuedRequest;
}

/** An attempt is about to invoke the function. */
export interface BeginRecord {
  type: "begin";
  seq: number;
  attempt: number;
}

/** The attempt failed; the next one (`attempt`) may start at `notBefore`. */
export interface RetryRecord {
  type: "retry";
  seq: number;
  attempt: number;
  notBefore: number;
}

/** The request left the queue. */
export interface SettleRecord {
  type: "settle";
  seq: number;
}

/** Any journal record. */
export type JournalRecord = AcceptRecord | BeginRecord | RetryRecord | SettleRecord;

const TYPE_CODE = { accept: 1, begin: 2, retry: 3, settle: 4 } as const;

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** Encodes one record as a complete frame. */
export function encodeFrame(rec: JournalRecord): Uint8Array {
  let payload: Uint8Array;
  switch (rec.type) {
    case "accept": {
      const { body, ...meta } = rec.request;
      const metaBytes = enc.encode(JSON.stringify(meta));
      payload = new Uint8Array(1 + 8 + 4 + 8 + 1 + 4 + metaBytes.length + body.length);
      const v = view(payload);
      v.setFloat64(1, rec.seq, true);
      v.setUint32(9, rec.attempt, true);
      v.setFloat64(13, rec.notBefore, true);
      payload[21] = rec.begun ? 1 : 0;
      v.setUint32(22, metaBytes.length, true);
      payload.set(metaBytes, 26);
      payload.set(body, 26 + metaBytes.length);
      break;
    }
    case "begin":
      payload = new Uint8Array(13);
      view(payload).setFloat64(1, rec.seq, true);
      view(payload).setUint32(9, rec.attempt, true);
      break;
    case "retry":
      payload = new Uint8Array(21);
      view(payload).setFloat64(1, rec.seq, true);
      view(payload).setUint32(9, rec.attempt, true);
      view(payload).setFloat64(13, rec.notBefore, true);
      break;
    case "settle":
      payload = new Uint8Array(9);
      view(payload).setFloat64(1, rec.seq, true);
      break;
  }
  payload[0] = TYPE_CODE[rec.type];
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  view(frame).setUint32(0, payload.length, true);
  view(frame).setUint32(4, crc32(payload), true);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/** A frame found in a segment: its record, where it starts and how long it is. */
export interface DecodedFrame {
  record: JournalRecord;
  offset: number;
  length: number;
}

/** What a segment holds: its frames, and where the valid part ends. */
export interface DecodedSegment {
  frames: DecodedFrame[];
  /** Bytes up to the end of the last good frame (the magic alone when there is none). */
  validBytes: number;
  /** Why reading stopped before the end of the data, when it did. */
  torn?: string;
}

/** Decodes a whole segment file; a torn or corrupt tail is reported, never thrown. */
export function decodeSegment(data: Uint8Array): DecodedSegment {
  if (!startsWithMagic(data)) {
    return data.length ? { frames: [], validBytes: 0, torn: "no segment header" } : {
      frames: [],
      validBytes: 0,
    };
  }
  const frames: DecodedFrame[] = [];
  let off = SEGMENT_MAGIC.length;
  while (off < data.length) {
    const result = decodeFrameAt(data, off);
    if (typeof result === "string") return { frames, validBytes: off, torn: result };
    frames.push({ record: result.record, offset: off, length: result.length });
    off += result.length;
  }
  return { frames, validBytes: off };
}

/** Decodes the frame at `off`; a string says why it is not a valid frame. */
export function decodeFrameAt(
  data: Uint8Array,
  off: number,
): { record: JournalRecord; length: number } | string {
  if (data.length - off < FRAME_HEADER_BYTES) return `frame header cut short at byte ${off}`;
  const v = view(data);
  const len = v.getUint32(off, true);
  if (len === 0 || len > MAX_PAYLOAD_BYTES) return `impossible frame length ${len} at byte ${off}`;
  if (data.length - off - FRAME_HEADER_BYTES < len) return `frame cut short at byte ${off}`;
  const payload = data.subarray(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + len);
  if (crc32(payload) !== v.getUint32(off + 4, true)) return `checksum mismatch at byte ${off}`;
  try {
    return { record: decodePayload(payload), length: FRAME_HEADER_BYTES + len };
  } catch (err) {
    return `undecodable record at byte ${off}: ${(err as Error).message}`;
  }
}

function decodePayload(p: Uint8Array): JournalRecord {
  const v = view(p);
  const seq = v.getFloat64(1, true);
  switch (p[0]) {
    case 1: {
      const metaLen = v.getUint32(22, true);
      const meta = JSON.parse(dec.decode(p.subarray(26, 26 + metaLen)));
      return {
        type: "accept",
        seq,
        attempt: v.getUint32(9, true),
        notBefore: v.getFloat64(13, true),
        begun: p[21] === 1,
        // A copy, so the segment's buffer can be released.
        request: { ...meta, body: p.slice(26 + metaLen) },
      };
    }
    case 2:
      return { type: "begin", seq, attempt: v.getUint32(9, true) };
    case 3:
      return {
        type: "retry",
        seq,
        attempt: v.getUint32(9, true),
        notBefore: v.getFloat64(13, true),
      };
    case 4:
      return { type: "settle", seq };
    default:
      throw new Error(`unknown record type ${p[0]}`);
  }
}

function startsWithMagic(data: Uint8Array): boolean {
  if (data.length < SEGMENT_MAGIC.length) return false;
  return SEGMENT_MAGIC.every((b, i) => data[i] === b);
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE), as zlib computes it. */
export function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
