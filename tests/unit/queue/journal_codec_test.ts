/** The journal's frames: every record type round-trips, and damage is reported, not thrown. */

import assert from "node:assert/strict";
import {
  crc32,
  decodeSegment,
  encodeFrame,
  type JournalRecord,
  SEGMENT_MAGIC,
} from "../../../src/queue/journal_codec.ts";

const request = {
  id: "call-1",
  name: "fn",
  namespace: "dev",
  method: "PUT",
  pathAndQuery: "/a?b=c",
  headers: [["x-a", "1"], ["x-a", "2"]] as [string, string][],
  body: new Uint8Array([0, 1, 2, 255]),
  callbackUrl: "http://cb/",
  acceptedAt: 1234,
};

const records: JournalRecord[] = [
  { type: "accept", seq: 1, attempt: 1, notBefore: 0, begun: false, request },
  { type: "accept", seq: 2 ** 40, attempt: 3, notBefore: 1.7e12, begun: true, request },
  { type: "begin", seq: 7, attempt: 2 },
  { type: "retry", seq: 7, attempt: 3, notBefore: 1_700_000_000_123 },
  { type: "settle", seq: 7 },
];

function segment(...frames: Uint8Array[]): Uint8Array {
  const parts = [SEGMENT_MAGIC, ...frames];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

Deno.test("crc32 matches the IEEE check value", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

Deno.test("journal codec: every record type round-trips", async (t) => {
  for (const rec of records) {
    await t.step(`${rec.type} ${rec.seq}`, () => {
      const decoded = decodeSegment(segment(encodeFrame(rec)));
      assert.equal(decoded.torn, undefined);
      assert.deepEqual(decoded.frames.map((f) => f.record), [rec]);
    });
  }
});

Deno.test("journal codec: damage ends the valid part with a reason", async (t) => {
  const a = encodeFrame(records[2]);
  const b = encodeFrame(records[3]);
  const flipped = b.slice();
  flipped[12] ^= 0xff;
  const huge = b.slice();
  new DataView(huge.buffer).setUint32(0, 0xffffffff, true);
  const cases = [
    { name: "cut in the header", data: segment(a, b.subarray(0, 5)), want: /header cut short/ },
    { name: "cut in the payload", data: segment(a, b.subarray(0, 12)), want: /frame cut short/ },
    { name: "a flipped byte", data: segment(a, flipped), want: /checksum mismatch/ },
    { name: "an impossible length", data: segment(a, huge), want: /impossible frame length/ },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      const decoded = decodeSegment(c.data);
      assert.equal(decoded.frames.length, 1);
      assert.equal(decoded.validBytes, SEGMENT_MAGIC.length + a.length);
      assert.match(decoded.torn!, c.want);
    });
  }
  await t.step("no segment header", () => {
    assert.match(decodeSegment(a).torn!, /no segment header/);
    assert.deepEqual(decodeSegment(new Uint8Array()), { frames: [], validBytes: 0 });
  });
});
