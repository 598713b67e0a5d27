/**
 * HPACK against the examples of RFC 7541 Appendix C (Huffman-coded requests with a dynamic table)
 * and round trips of our encoder through the decoder.
 */

import assert from "node:assert/strict";
import { HpackDecoder, hpackEncode, huffmanDecode } from "../../../src/containerd/hpack.ts";

const bytes = (h: string) =>
  Uint8Array.from(h.replace(/\s+/g, "").match(/../g) ?? [], (x) => parseInt(x, 16));
const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("hpack: Huffman-coded strings decode (RFC 7541 C.4.1, C.6.1)", () => {
  assert.equal(text(huffmanDecode(bytes("f1e3 c2e5 f23a 6ba0 ab90 f4ff"))), "www.example.com");
  assert.equal(text(huffmanDecode(bytes("a8eb 1064 9cbf"))), "no-cache");
  assert.equal(text(huffmanDecode(bytes("6402"))), "302");
  assert.equal(text(huffmanDecode(bytes("aec3 771a 4b"))), "private");
  // Padding must be the start of EOS (ones) and shorter than a byte.
  assert.throws(() => huffmanDecode(bytes("f1e3 c2e5 f23a 6ba0 ab90 f4fe")), /padding/);
  assert.throws(() => huffmanDecode(bytes("ffffffff")), /EOS|padding|invalid/);
});

Deno.test("hpack: three requests sharing a dynamic table (RFC 7541 C.4)", () => {
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(bytes("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ]);
  assert.deepEqual(d.decode(bytes("8286 84be 5886 a8eb 1064 9cbf")), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ]);
  assert.deepEqual(
    d.decode(bytes("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf")),
    [
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ],
  );
});

Deno.test("hpack: responses that evict from a 256-byte table (RFC 7541 C.6.1–C.6.2)", () => {
  const d = new HpackDecoder(256);
  const first = d.decode(bytes(
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
  ));
  assert.deepEqual(first, [
    [":status", "302"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ]);
  // ":status: 307" evicts ":status: 302"; the rest come from the table.
  assert.deepEqual(d.decode(bytes("4883 640e ff c1 c0 bf")), [
    [":status", "307"],
    ["cache-control", "private"],
    ["date", "Mon, 21 Oct 2013 20:13:21 GMT"],
    ["location", "https://www.example.com"],
  ]);
});

Deno.test("hpack: our encoder's blocks decode to the same headers", () => {
  const headers: Array<[string, string]> = [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", "/containerd.services.tasks.v1.Tasks/Create"],
    [":authority", "localhost"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ["containerd-namespace", "x".repeat(200)],
    ["grpc-timeout", "5000m"],
  ];
  const block = hpackEncode(headers);
  assert.deepEqual(new HpackDecoder().decode(block), headers);
  // Exact static entries are one byte each: :method POST (3) and :scheme http (6).
  assert.deepEqual([...block.subarray(0, 2)], [0x83, 0x86]);
});

Deno.test("hpack: malformed blocks are refused", () => {
  const d = new HpackDecoder();
  assert.throws(() => d.decode(bytes("be")), /index 62 out of range/);
  assert.throws(() => d.decode(bytes("4a")), /truncated/);
  assert.throws(() => d.decode(bytes("3fe1ff03")), /table size update/);
});
