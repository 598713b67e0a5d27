/**
 * HTTP/1.1 on the wire, for the gateway's front door (src/gateway/front_door.ts) and the
 * provider's client (client.ts): finding the end of a message head, parsing request and response
 * heads into what forwarding needs (with the byte ranges of
 * the header lines, so kept lines are copied, not re-encoded), a pass-through scanner for chunked
 * bodies, and response heads written by hand. Heads are read as latin1: one character per byte,
 * so string offsets are byte offsets.
 */

/** A request head the front door cannot accept; `status` is what the client gets (400, 431, …). */
export class WireError extends Error {
  override name = "WireError";
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const latin1 = new TextDecoder("latin1");

/** Decodes bytes one character per byte. */
export function decodeLatin1(bytes: Uint8Array): string {
  return latin1.decode(bytes);
}

/** Encodes a string of characters below 256 one byte per character into `out` at `at`. */
export function writeLatin1(s: string, out: Uint8Array, at: number): number {
  for (let i = 0; i < s.length; i++) out[at + i] = s.charCodeAt(i);
  return at + s.length;
}

/**
 * Finds the empty line ending a head in `buf[start, end)`: the index of the LF before it (where
 * the head's text ends, its CR dropped) and where the body starts; -1 when not there yet. Bare LF
 * line ends are accepted (RFC 9112 §2.2). `from` skips what an earlier call already searched.
 */
export function findHeadEnd(
  buf: Uint8Array,
  start: number,
  end: number,
  from = start,
): { end: number; body: number } | undefined {
  for (let i = Math.max(start, from); i < end; i++) {
    if (buf[i] !== 10) continue;
    if (i + 1 < end && buf[i + 1] === 10) return { end: i, body: i + 2 };
    if (i + 2 < end && buf[i + 1] === 13 && buf[i + 2] === 10) return { end: i, body: i + 3 };
  }
  return undefined;
}

/** One header line: lower-case name, trimmed value, and where the line is in the head's text. */
export interface HeaderLine {
  name: string;
  value: string;
  /** The line's start and end (CR excluded) in the head's text. */
  start: number;
  end: number;
}

/**
 * The header names a message's Connection header lists (RFC 9110 §7.6.1: hop-by-hop for this
 * connection only, so not forwarded), lower case. Content-Length and Transfer-Encoding are never
 * among them: they frame the message, and are handled as such.
 */
export function connectionOptions(
  headers: Iterable<{ name: string; value: string }>,
): Set<string> {
  const names = new Set<string>();
  for (const h of headers) {
    if (h.name !== "connection") continue;
    for (const t of h.value.split(",")) {
      const name = t.trim().toLowerCase();
      if (name && name !== "content-length" && name !== "transfer-encoding") names.add(name);
    }
  }
  return names;
}

/** A request head as the front door reads it. */
export interface RequestHead {
  method: string;
  /** The request target as sent (origin form: path and query). */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number;
  headers: HeaderLine[];
  /** The declared body length; -1 when there is none (or it is chunked). */
  contentLength: number;
  chunked: boolean;
  /** Transfer-Encoding other than a single `chunked`. */
  otherEncoding: boolean;
  /** Connection: close (or HTTP/1.0 without keep-alive). */
  close: boolean;
  /** An Upgrade header, or `upgrade` among the Connection options. */
  upgrade: boolean;
  /** The Expect header's value, lower case ("" when none). */
  expect: string;
  /** The Host header ("" when none). */
  host: string;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP\/1\.([01])$/;
// Field values: visible characters, spaces, tabs and obs-text; no CR, LF or NUL.
// deno-lint-ignore no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

/** Parses header lines of `text` from `pos` (after the start line) into `out`. */
function parseHeaderLines(text: string, pos: number, out: HeaderLine[], what: string): void {
  while (pos < text.length) {
    let eol = text.indexOf("\n", pos);
    if (eol < 0) eol = text.length;
    const end = eol > pos && text.charCodeAt(eol - 1) === 13 ? eol - 1 : eol;
    const c = text.charCodeAt(pos);
    if (c === 32 || c === 9) throw new WireError(400, `folded header line in the ${what}`);
    const colon = text.indexOf(":", pos);
    if (colon < 0 || colon >= end) {
      throw new WireError(400, `a header line of the ${what} has no colon`);
    }
    const name = text.slice(pos, colon);
    if (!TOKEN.test(name)) throw new WireError(400, `invalid header name in the ${what}`);
    // Optional whitespace is spaces and tabs only (String.trim would also take, say, 0xA0).
    const value = text.slice(colon + 1, end).replace(/^[ \t]+|[ \t]+$/g, "");
    if (BAD_VALUE.test(value)) {
      throw new WireError(400, `header ${name} of the ${what} has a control character`);
    }
    out.push({ name: name.toLowerCase(), value, start: pos, end });
    pos = eol + 1;
  }
}

/** Reads a Content-Length value; repeated ones must agree (RFC 9110 §8.6). */
function contentLength(value: string, before: number, what: string): number {
  // "5, 5" (a list of the same length) is accepted as 5.
  let n = -1;
  for (const part of value.split(",")) {
    const v = part.trim();
    if (!/^\d{1,15}$/.test(v)) throw new WireError(400, `invalid Content-Length in the ${what}`);
    if (n >= 0 && Number(v) !== n) {
      throw new WireError(400, `conflicting Content-Length values in the ${what}`);
    }
    n = Number(v);
  }
  if (before >= 0 && before !== n) {
    throw new WireError(400, `conflicting Content-Length values in the ${what}`);
  }
  return n;
}

/** Parses a request head (its text without the final empty line); throws WireError (400). */
export function parseRequestHead(text: string): RequestHead {
  let eol = text.indexOf("\n");
  if (eol < 0) eol = text.length;
  const line = text.slice(0, eol > 0 && text.charCodeAt(eol - 1) === 13 ? eol - 1 : eol);
  const m = REQUEST_LINE.exec(line);
  if (!m) throw new WireError(400, "malformed request line");
  const head: RequestHead = {
    method: m[1],
    target: m[2],
    minor: Number(m[3]),
    headers: [],
    contentLength: -1,
    chunked: false,
    otherEncoding: false,
    close: m[3] === "0",
    upgrade: false,
    expect: "",
    host: "",
  };
  parseHeaderLines(text, eol + 1, head.headers, "request head");
  let hosts = 0;
  let te = "";
  for (const h of head.headers) {
    switch (h.name) {
      case "content-length":
        head.contentLength = contentLength(h.value, head.contentLength, "request head");
        break;
      case "transfer-encoding":
        te = te ? `${te}, ${h.value}` : h.value;
        break;
      case "connection":
        for (const opt of h.value.toLowerCase().split(",")) {
          const o = opt.trim();
          if (o === "close") head.close = true;
          else if (o === "keep-alive" && head.minor === 0) head.close = false;
          else if (o === "upgrade") head.upgrade = true;
        }
        break;
      case "upgrade":
        head.upgrade = true;
        break;
      case "expect":
        head.expect = h.value.toLowerCase();
        break;
      case "host":
        hosts++;
        head.host = h.value;
        break;
    }
  }
  // A Connection: close among the options wins over keep-alive.
  if (head.minor === 0 || head.close) {
    for (const h of head.headers) {
      if (h.name === "connection" && /(^|,)\s*close\s*(,|$)/i.test(h.value)) head.close = true;
    }
  }
  if (hosts > 1) throw new WireError(400, "more than one Host header");
  if (head.minor === 1 && hosts === 0) throw new WireError(400, "no Host header (HTTP/1.1)");
  if (te) {
    // Both framings at once is a request smuggling attempt or a broken client: refused.
    if (head.contentLength >= 0) {
      throw new WireError(400, "both Content-Length and Transfer-Encoding in the request head");
    }
    if (te.trim().toLowerCase() === "chunked") head.chunked = true;
    else head.otherEncoding = true;
  }
  return head;
}

/** A response head as the front door reads it from a replica. */
export interface ResponseHead {
  status: number;
  reason: string;
  minor: number;
  headers: HeaderLine[];
  contentLength: number;
  chunked: boolean;
  /** Transfer-Encoding that is not chunked last: the body ends when the connection does. */
  closeDelimited: boolean;
  /** The replica will close the connection after this response. */
  close: boolean;
}

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/;

/** Parses a replica's response head; throws WireError (502) when it is not HTTP/1.x. */
export function parseResponseHead(text: string): ResponseHead {
  let eol = text.indexOf("\n");
  if (eol < 0) eol = text.length;
  const line = text.slice(0, eol > 0 && text.charCodeAt(eol - 1) === 13 ? eol - 1 : eol);
  const m = STATUS_LINE.exec(line);
  if (!m) throw new WireError(502, "the function answered with no HTTP/1.x status line");
  const head: ResponseHead = {
    status: Number(m[2]),
    reason: m[3] ?? "",
    minor: Number(m[1]),
    headers: [],
    contentLength: -1,
    chunked: false,
    closeDelimited: false,
    close: m[1] === "0",
  };
  if (head.status < 100) throw new WireError(502, `the function answered status ${m[2]}`);
  if (BAD_VALUE.test(head.reason)) {
    throw new WireError(502, "the function's status line has a control character");
  }
  try {
    parseHeaderLines(text, eol + 1, head.headers, "function's response head");
  } catch (err) {
    throw new WireError(502, (err as Error).message);
  }
  let te = "";
  for (const h of head.headers) {
    if (h.name === "content-length") {
      try {
        head.contentLength = contentLength(h.value, head.contentLength, "function's response");
      } catch (err) {
        throw new WireError(502, (err as Error).message);
      }
    } else if (h.name === "transfer-encoding") {
      te = te ? `${te}, ${h.value}` : h.value;
    } else if (h.name === "connection") {
      const v = h.value.toLowerCase();
      if (/(^|,)\s*close\s*(,|$)/.test(v)) head.close = true;
      else if (/(^|,)\s*keep-alive\s*(,|$)/.test(v) && head.minor === 0) head.close = false;
    }
  }
  if (te) {
    head.contentLength = -1; // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3)
    if (/(^|,)\s*chunked\s*$/i.test(te)) head.chunked = true;
    else head.closeDelimited = true;
  }
  // 1xx, 204 and 304 never have a body: without a length they do not end with the connection.
  const noBody = head.status < 200 || head.status === 204 || head.status === 304;
  if (!head.chunked && head.contentLength < 0 && !noBody) head.closeDelimited = true;
  if (head.closeDelimited) head.close = true;
  return head;
}

/** A response with no body whatever its headers say (RFC 9112 §6.3). */
export function bodyless(method: string, status: number): boolean {
  return method === "HEAD" || status === 204 || status === 304 || (status >= 100 && status < 200);
}

const enum Chunk {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  Trailer,
  TrailerLf,
  Done,
}

/**
 * Follows a chunked body byte by byte without changing it, so it can be passed on as it came:
 * `scan` says how many of the bytes belong to the body, and `done` when its last chunk and
 * trailers have passed. `dataBytes` counts the payload (for the body limit). Throws WireError
 * (400) on bad framing.
 *
 * `strict` (a client's body, forwarded over a connection other clients' requests use too) accepts
 * only CRLF line ends: a server that reads a bare LF differently would see other chunk boundaries,
 * and could take the rest of the body for a request of its own. Otherwise a bare LF ends a line
 * (RFC 9112 §2.2 allows it), as some functions' servers send them.
 */
export class ChunkedScanner {
  #state = Chunk.Size;
  #left = 0;
  #digits = 0;
  #lineLength = 0;
  readonly #strict: boolean;
  dataBytes = 0;

  constructor(opts: { strict?: boolean } = {}) {
    this.#strict = opts.strict ?? false;
  }

  get done(): boolean {
    return this.#state === Chunk.Done;
  }

  /** How many bytes of `buf[start, end)` belong to the body (all of them until it is done). */
  scan(buf: Uint8Array, start: number, end: number): number {
    let i = start;
    while (i < end && this.#state !== Chunk.Done) {
      const b = buf[i];
      switch (this.#state) {
        case Chunk.Size: {
          const d = hexDigit(b);
          if (d >= 0) {
            if (++this.#digits > 12) throw new WireError(400, "chunk size too large");
            this.#left = this.#left * 16 + d;
          } else if (this.#digits === 0) {
            throw new WireError(400, "malformed chunk size");
          } else if (b === 13) {
            this.#state = Chunk.SizeLf;
          } else if (b === 10) {
            this.#bareLf();
            this.#endSize();
          } else if (b === 59 || b === 32 || b === 9) {
            this.#state = Chunk.Ext;
          } else {
            throw new WireError(400, "malformed chunk size");
          }
          i++;
          break;
        }
        case Chunk.Ext:
          if (b === 10) {
            this.#bareLf();
            this.#endSize();
          } else if (b === 13) this.#state = Chunk.SizeLf;
          else if (++this.#lineLength > 4096) throw new WireError(400, "chunk extension too long");
          i++;
          break;
        case Chunk.SizeLf:
          if (b !== 10) throw new WireError(400, "malformed chunk size line");
          this.#endSize();
          i++;
          break;
        case Chunk.Data: {
          const n = Math.min(this.#left, end - i);
          this.#left -= n;
          this.dataBytes += n;
          i += n;
          if (this.#left === 0) this.#state = Chunk.DataCr;
          break;
        }
        case Chunk.DataCr:
          if (b === 13) this.#state = Chunk.DataLf;
          else if (b === 10) {
            this.#bareLf();
            this.#nextChunk();
          } else throw new WireError(400, "chunk data longer than its size");
          i++;
          break;
        case Chunk.DataLf:
          if (b !== 10) throw new WireError(400, "chunk data longer than its size");
          this.#nextChunk();
          i++;
          break;
        case Chunk.Trailer:
          if (b === 10) {
            this.#bareLf();
            if (this.#lineLength === 0) this.#state = Chunk.Done;
            this.#lineLength = 0;
          } else if (b === 13) {
            this.#state = Chunk.TrailerLf;
          } else if (++this.#lineLength > 8192) {
            throw new WireError(400, "chunked trailer too long");
          }
          i++;
          break;
        case Chunk.TrailerLf:
          if (b !== 10) throw new WireError(400, "malformed chunked trailer");
          this.#state = this.#lineLength === 0 ? Chunk.Done : Chunk.Trailer;
          this.#lineLength = 0;
          i++;
          break;
      }
    }
    return i - start;
  }

  #bareLf(): void {
    if (this.#strict) throw new WireError(400, "a chunked body's line ends with LF without CR");
  }

  #endSize(): void {
    this.#digits = 0;
    this.#lineLength = 0;
    this.#state = this.#left === 0 ? Chunk.Trailer : Chunk.Data;
  }

  #nextChunk(): void {
    this.#state = Chunk.Size;
    this.#left = 0;
  }
}

function hexDigit(b: number): number {
  if (b >= 48 && b <= 57) return b - 48;
  if (b >= 97 && b <= 102) return b - 87;
  if (b >= 65 && b <= 70) return b - 55;
  return -1;
}

const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Content Too Large",
  417: "Expectation Failed",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

const utf8 = new TextEncoder();

/** A complete plain-text response (an error the front door answers itself). */
export function textResponse(status: number, body: string, close: boolean): Uint8Array {
  const bytes = utf8.encode(body);
  const head = `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n` +
    `content-type: text/plain\r\ncontent-length: ${bytes.length}\r\n` +
    (close ? "connection: close\r\n" : "") + "\r\n";
  const out = new Uint8Array(head.length + bytes.length);
  writeLatin1(head, out, 0);
  out.set(bytes, head.length);
  return out;
}

/** The interim answer to `Expect: 100-continue`. */
export const CONTINUE: Uint8Array = utf8.encode("HTTP/1.1 100 Continue\r\n\r\n");
