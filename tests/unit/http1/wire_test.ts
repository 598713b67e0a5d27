/**
 * The front door's HTTP/1.1 parsing: request and response heads (framing, connection options,
 * refusals with their status), the end of a head with CRLF or bare LF, and the chunked scanner
 * fed whole or byte by byte.
 */

import assert from "node:assert/strict";
import {
  ChunkedScanner,
  findHeadEnd,
  parseRequestHead,
  parseResponseHead,
  WireError,
} from "../../../src/http1/wire.ts";

const enc = new TextEncoder();

function rejects(text: string, status: number, message: RegExp) {
  assert.throws(() => parseRequestHead(text), (err) => {
    assert.ok(err instanceof WireError, String(err));
    assert.equal(err.status, status);
    assert.match(err.message, message);
    return true;
  });
}

Deno.test("wire: a request head with its framing and options", () => {
  const h = parseRequestHead(
    "POST /function/f.ns/p?q=1 HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nX-A:  b \r\n" +
      "Expect: 100-Continue",
  );
  assert.equal(h.method, "POST");
  assert.equal(h.target, "/function/f.ns/p?q=1");
  assert.equal(h.minor, 1);
  assert.equal(h.contentLength, 5);
  assert.equal(h.chunked, false);
  assert.equal(h.close, false);
  assert.equal(h.expect, "100-continue");
  assert.equal(h.host, "gw");
  assert.deepEqual(h.headers[2], { name: "x-a", value: "b", start: 65, end: 73 });
  const chunked = parseRequestHead(
    "PUT / HTTP/1.1\nhost: x\ntransfer-encoding: chunked\nconnection: keep-alive, close",
  );
  assert.equal(chunked.chunked, true);
  assert.equal(chunked.contentLength, -1);
  assert.equal(chunked.close, true);
  const old = parseRequestHead("GET / HTTP/1.0");
  assert.equal(old.minor, 0);
  assert.equal(old.close, true);
  assert.equal(parseRequestHead("GET / HTTP/1.0\r\nConnection: keep-alive").close, false);
  assert.equal(parseRequestHead("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket").upgrade, true);
  assert.equal(
    parseRequestHead("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip").otherEncoding,
    true,
  );
  assert.equal(
    parseRequestHead("GET / HTTP/1.1\r\nHost: x\r\ncontent-length: 3, 3").contentLength,
    3,
  );
});

Deno.test("wire: malformed request heads are refused with 400, naming what is wrong", () => {
  rejects("GET /\r\nHost: x", 400, /request line/);
  rejects("GET  / HTTP/1.1\r\nHost: x", 400, /request line/);
  rejects("GET / HTTP/2.0\r\nHost: x", 400, /request line/);
  rejects("G(T / HTTP/1.1\r\nHost: x", 400, /request line/);
  rejects("GET / HTTP/1.1", 400, /no Host/);
  rejects("GET / HTTP/1.1\r\nHost: a\r\nHost: b", 400, /more than one Host/);
  rejects("GET / HTTP/1.1\r\nHost: x\r\nbroken line", 400, /no colon/);
  rejects("GET / HTTP/1.1\r\nHost: x\r\nbad name: v", 400, /invalid header name/);
  rejects("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded", 400, /folded/);
  rejects("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b", 400, /control character/);
  rejects("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1", 400, /invalid Content-Length/);
  rejects(
    "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2",
    400,
    /conflicting Content-Length/,
  );
  rejects(
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked",
    400,
    /both Content-Length and Transfer-Encoding/,
  );
});

Deno.test("wire: response heads, framing by length, chunks or the connection's end", () => {
  const a = parseResponseHead("HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-Fn: 1");
  assert.equal(a.status, 201);
  assert.equal(a.reason, "Created");
  assert.equal(a.contentLength, 2);
  assert.equal(a.close, false);
  const b = parseResponseHead(
    "HTTP/1.1 200\nTransfer-Encoding: chunked\nContent-Length: 9\nConnection: close",
  );
  assert.equal(b.chunked, true);
  assert.equal(b.contentLength, -1);
  assert.equal(b.close, true);
  const c = parseResponseHead("HTTP/1.0 200 OK\r\nContent-Type: text/plain");
  assert.equal(c.closeDelimited, true);
  assert.equal(c.close, true);
  assert.equal(
    parseResponseHead("HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive")
      .close,
    false,
  );
  // No body by status: no length needed, and the connection stays open.
  for (const status of ["204 No Content", "304 Not Modified"]) {
    const d = parseResponseHead(`HTTP/1.1 ${status}\r\nETag: "x"`);
    assert.equal(d.closeDelimited, false, status);
    assert.equal(d.close, false, status);
  }
  assert.equal(parseResponseHead("HTTP/1.1 204 No Content\r\nConnection: close").close, true);
  for (const bad of ["HTTP/2 200 OK", "ICY 200 OK", "HTTP/1.1 20 OK", "HTTP/1.1 200 OK\r\nx"]) {
    assert.throws(() => parseResponseHead(bad), (err) => {
      assert.ok(err instanceof WireError);
      assert.equal(err.status, 502);
      return true;
    }, bad);
  }
});

Deno.test("wire: the end of a head, CRLF or bare LF, searched from where it stopped", () => {
  const b = enc.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY");
  assert.deepEqual(findHeadEnd(b, 0, b.length), { end: 24, body: 27 });
  assert.equal(findHeadEnd(b, 0, 26), undefined);
  const lf = enc.encode("HTTP/1.1 200 OK\nA: b\n\nrest");
  assert.deepEqual(findHeadEnd(lf, 0, lf.length), { end: 20, body: 22 });
  assert.deepEqual(findHeadEnd(lf, 0, lf.length, 15), { end: 20, body: 22 });
});

Deno.test("wire: the chunked scanner stops exactly at the end of the body, fed in any pieces", () => {
  const body = "5;ext=1\r\nhello\r\n1A\r\n" + "x".repeat(26) + "\r\n0\r\nTrailer: t\r\n\r\n";
  const next = "GET / HTTP/1.1\r\n";
  const bytes = enc.encode(body + next);
  const whole = new ChunkedScanner();
  assert.equal(whole.scan(bytes, 0, bytes.length), body.length);
  assert.ok(whole.done);
  assert.equal(whole.dataBytes, 31);
  const bytewise = new ChunkedScanner();
  let used = 0;
  for (let i = 0; i < bytes.length && !bytewise.done; i++) used += bytewise.scan(bytes, i, i + 1);
  assert.equal(used, body.length);
  assert.equal(bytewise.dataBytes, 31);
  const lf = new ChunkedScanner();
  const bare = enc.encode("2\nok\n0\n\n");
  assert.equal(lf.scan(bare, 0, bare.length), bare.length);
  assert.ok(lf.done);
  // Strict (a client's body): every bare LF is refused, wherever it is.
  for (const bare of ["2\nok\r\n0\r\n\r\n", "2;x\nok\r\n", "2\r\nok\n", "0\r\n\n"]) {
    const strict = new ChunkedScanner({ strict: true });
    assert.throws(() => strict.scan(enc.encode(bare), 0, bare.length), (err) => {
      assert.ok(err instanceof WireError);
      assert.equal(err.status, 400);
      assert.match(err.message, /LF without CR/);
      return true;
    }, JSON.stringify(bare));
  }
  const strict = new ChunkedScanner({ strict: true });
  assert.equal(strict.scan(bytes, 0, bytes.length), body.length);
  assert.ok(strict.done);
  for (const bad of ["zz\r\n", "2\r\nabc\r\n", "\r\n", "1\r\na\rx"]) {
    const s = new ChunkedScanner();
    assert.throws(() => s.scan(enc.encode(bad), 0, bad.length), WireError, bad);
  }
});
