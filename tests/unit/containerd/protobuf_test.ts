/**
 * The protobuf codec and .proto parser against byte sequences worked out by hand from the wire
 * format (varints, zigzag, two's complement, packed runs, map entries, nested messages).
 */

import assert from "node:assert/strict";
import { ProtoSchema } from "../../../src/containerd/protobuf.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const bytes = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16));

const SCHEMA = ProtoSchema.parse({
  "test.proto": `
    // A comment, and /* a block comment */ too.
    syntax = "proto3";
    package t.v1;
    import "google/protobuf/timestamp.proto";
    enum Color { RED = 0; GREEN = 1; BLUE = 2; }
    message Inner { string name = 1; }
    message All {
      int32 i32 = 1;
      int64 i64 = 2;
      uint32 u32 = 3;
      uint64 u64 = 4;
      sint32 s32 = 5;
      sint64 s64 = 6;
      bool flag = 7;
      string text = 8;
      bytes data = 9;
      Color color = 10;
      Inner inner = 11;
      repeated uint32 nums = 12;
      repeated string words = 13;
      map<string, string> labels = 14;
      google.protobuf.Timestamp at = 15;
      fixed32 f32 = 16;
      double d = 17;
      repeated Inner inners = 18;
      message Nested { Color c = 1; }
      Nested nested = 19;
    }
    service S {
      rpc One(Inner) returns (All);
      rpc Many(stream Inner) returns (stream .t.v1.All) {}
    }
  `,
});

Deno.test("protobuf: scalars encode to the wire format", async (t) => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ["a varint over one byte (150)", { i32: 150 }, "089601"],
    ["a string", { text: "testing" }, "420774657374696e67"],
    ["a negative int32 takes ten bytes", { i32: -1 }, "08ffffffffffffffffff01"],
    ["int64 from a decimal string beyond 2^53", { i64: "9007199254740993" }, "108180808080808010"],
    ["uint64 from a bigint", { u64: 2n ** 63n }, "2080808080808080808001"],
    ["sint32 zigzag (-1 → 1, 1 → 2)", { s32: -1, s64: 1 }, "28013002"],
    ["bool, enum by name and by number", { flag: true, color: "BLUE" }, "38015002"],
    ["bytes from a Uint8Array and from base64", { data: new Uint8Array([1, 2]) }, "4a020102"],
    [
      "fixed32 and double are little-endian",
      { f32: 1, d: 1 },
      "850101000000" + "8901000000000000f03f",
    ],
  ];
  for (const [what, value, expected] of cases) {
    await t.step(what, () => assert.equal(hex(SCHEMA.encode("t.v1.All", value)), expected));
  }
  assert.equal(hex(SCHEMA.encode("t.v1.All", { data: "AQI=" })), "4a020102");
  assert.equal(hex(SCHEMA.encode("t.v1.All", { color: 2 })), "5002");
});

Deno.test("protobuf: repeated, map and nested fields", () => {
  // Packed uint32s (proto3's default), one record per string, one entry message per map key.
  assert.equal(hex(SCHEMA.encode("t.v1.All", { nums: [1, 300] })), "6203" + "01ac02");
  assert.equal(hex(SCHEMA.encode("t.v1.All", { words: ["a", "b"] })), "6a01616a0162");
  assert.equal(hex(SCHEMA.encode("t.v1.All", { labels: { k: "v" } })), "7206" + "0a016b120176");
  assert.equal(hex(SCHEMA.encode("t.v1.All", { inner: { name: "x" } })), "5a03" + "0a0178");
  assert.equal(hex(SCHEMA.encode("t.v1.All", { nested: { c: "GREEN" } })), "9a0102" + "0801");
  assert.equal(hex(SCHEMA.encode("t.v1.All", { nums: [], labels: {}, inner: null })), "");
});

Deno.test("protobuf: decoding fills proto3 defaults and converts 64-bit integers to strings", () => {
  const empty = SCHEMA.decode("t.v1.All", new Uint8Array());
  assert.equal(empty.i32, 0);
  assert.equal(empty.i64, "0");
  assert.equal(empty.u64, "0");
  assert.equal(empty.flag, false);
  assert.equal(empty.text, "");
  assert.equal((empty.data as Uint8Array).length, 0);
  assert.equal(empty.color, "RED");
  assert.equal(empty.inner, null);
  assert.deepEqual(empty.nums, []);
  assert.deepEqual(empty.labels, {});
  assert.equal(empty.at, null);

  const all = SCHEMA.decode(
    "t.v1.All",
    bytes(
      "08ffffffffffffffffff01" + // i32 -1
        "10ffffffffffffffffff01" + // i64 -1
        "20ffffffffffffffffff01" + // u64 2^64 - 1
        "2801" + // s32 -1
        "5063" + // an enum number without a name
        "6203" + "01ac02" + // packed [1, 300]
        "6001" + // the same field unpacked: appended
        "7206" + "0a016b120176" + // labels {k: v}
        "7a07" + "08011080ade204" + // at {seconds: 1, nanos: 10000000}
        "f80701" + // unknown field 127 (varint), skipped
        "9201" + "02" + "0a00", // an inners entry with an empty name
    ),
  );
  assert.equal(all.i32, -1);
  assert.equal(all.i64, "-1");
  assert.equal(all.u64, "18446744073709551615");
  assert.equal(all.s32, -1);
  assert.equal(all.color, 99);
  assert.deepEqual(all.nums, [1, 300, 1]);
  assert.deepEqual(all.labels, { k: "v" });
  assert.deepEqual(all.at, { seconds: "1", nanos: 10_000_000 });
  assert.deepEqual(all.inners, [{ name: "" }]);
});

Deno.test("protobuf: a message and its encoding round-trip", () => {
  const value = {
    i32: -5,
    i64: "-9223372036854775808",
    u32: 4294967295,
    u64: "18446744073709551615",
    s32: -2147483648,
    s64: "-9223372036854775808",
    flag: true,
    text: "héllo ✓",
    color: "GREEN",
    inner: { name: "in" },
    nums: [0, 1, 2 ** 31],
    words: ["", "x"],
    labels: { a: "1", b: "" },
    at: { seconds: "1700000000", nanos: 1 },
    f32: 4294967295,
    d: -0.5,
    inners: [{ name: "a" }, { name: "b" }],
    nested: { c: "BLUE" },
  };
  const decoded = SCHEMA.decode("t.v1.All", SCHEMA.encode("t.v1.All", value));
  const { data, ...rest } = decoded;
  assert.deepEqual(rest, value);
  assert.equal((data as Uint8Array).length, 0);
});

Deno.test("protobuf: bad input is refused with a message", () => {
  assert.throws(() => SCHEMA.decode("t.v1.All", bytes("4205616263")), /truncated/);
  assert.throws(() => SCHEMA.decode("t.v1.All", bytes("08ffffff")), /truncated/);
  assert.throws(() => SCHEMA.decode("t.v1.All", bytes("5a0161")), /wire type|truncated/);
  assert.throws(() => SCHEMA.encode("t.v1.All", { color: "PURPLE" }), /"PURPLE" is not a value/);
  assert.throws(
    () => SCHEMA.encode("t.v1.All", { i64: "12x" }),
    /t\.v1\.All\.i64: expected an integer/,
  );
  assert.throws(() => SCHEMA.encode("t.v1.Missing", {}), /no message type "t.v1.Missing"/);
});

Deno.test("protobuf: services, and parse errors name the file and line", () => {
  const one = SCHEMA.services.get("t.v1.S")?.get("One");
  assert.deepEqual(one, {
    name: "One",
    requestType: "t.v1.Inner",
    responseType: "t.v1.All",
    requestStream: false,
    responseStream: false,
  });
  const many = SCHEMA.services.get("t.v1.S")?.get("Many");
  assert.equal(many?.requestStream, true);
  assert.equal(many?.responseType, "t.v1.All");
  assert.throws(
    () =>
      ProtoSchema.parse({ "bad.proto": 'syntax = "proto3";\nmessage M {\n  Unknown x = 1;\n}' }),
    /bad\.proto: unknown type "Unknown"/,
  );
  assert.throws(
    () => ProtoSchema.parse({ "bad.proto": 'syntax = "proto3";\nmessage M {\n  string x = ;\n}' }),
    /bad\.proto:3: expected a number, found ";"/,
  );
  assert.throws(
    () => ProtoSchema.parse({ "bad.proto": 'syntax = "proto2";' }),
    /bad\.proto:1: only proto3 is supported/,
  );
});
