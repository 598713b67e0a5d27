/**
 * HPACK (RFC 7541), the header compression of HTTP/2, as far as a gRPC client needs it: the
 * decoder is complete (static and dynamic table, Huffman-coded strings, table size updates); the
 * encoder writes literals without indexing, which every decoder must accept, and static-table
 * indexes where an entry matches.
 */

/** The static table (RFC 7541, Appendix A); index 1 is the first entry. */
const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/**
 * The bit length of each symbol's Huffman code (RFC 7541, Appendix B; symbol 256 is EOS). The
 * code is canonical, so the lengths alone define it: codes of one length are consecutive in
 * symbol order, and each length's first code follows the previous length's last.
 */
const HUFFMAN_LENGTHS = [
  13,
  23,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  24,
  30,
  28,
  28,
  30,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  30,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  28,
  6,
  10,
  10,
  12,
  13,
  6,
  8,
  11,
  10,
  10,
  8,
  11,
  8,
  6,
  6,
  6,
  5,
  5,
  5,
  6,
  6,
  6,
  6,
  6,
  6,
  6,
  7,
  8,
  15,
  6,
  12,
  10,
  13,
  6,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  7,
  8,
  7,
  8,
  13,
  19,
  13,
  14,
  6,
  15,
  5,
  6,
  5,
  6,
  5,
  6,
  6,
  6,
  5,
  7,
  7,
  6,
  6,
  6,
  5,
  6,
  7,
  6,
  5,
  5,
  6,
  7,
  7,
  7,
  7,
  7,
  15,
  11,
  14,
  13,
  28,
  20,
  22,
  20,
  20,
  22,
  22,
  22,
  23,
  22,
  23,
  23,
  23,
  23,
  23,
  24,
  23,
  24,
  24,
  22,
  23,
  24,
  23,
  23,
  23,
  23,
  21,
  22,
  23,
  22,
  23,
  23,
  24,
  22,
  21,
  20,
  22,
  22,
  23,
  23,
  21,
  23,
  22,
  22,
  24,
  21,
  22,
  23,
  23,
  21,
  21,
  22,
  21,
  23,
  22,
  23,
  23,
  20,
  22,
  22,
  22,
  23,
  22,
  22,
  23,
  26,
  26,
  20,
  19,
  22,
  23,
  22,
  25,
  26,
  26,
  26,
  27,
  27,
  26,
  24,
  25,
  19,
  21,
  26,
  27,
  27,
  26,
  27,
  24,
  21,
  21,
  26,
  26,
  28,
  27,
  27,
  27,
  20,
  24,
  20,
  21,
  22,
  21,
  21,
  23,
  22,
  22,
  25,
  25,
  24,
  24,
  26,
  23,
  26,
  27,
  26,
  26,
  27,
  27,
  27,
  27,
  27,
  28,
  27,
  27,
  27,
  27,
  27,
  26,
  30,
];

const EOS = 256;

/** Per code length: the first code, and where its symbols start in `symbols`. */
const HUFFMAN = (() => {
  const symbols = [...HUFFMAN_LENGTHS.keys()].sort((a, b) =>
    HUFFMAN_LENGTHS[a] - HUFFMAN_LENGTHS[b] || a - b
  );
  const first = new Map<number, { code: number; count: number; at: number }>();
  let code = 0;
  let prev = HUFFMAN_LENGTHS[symbols[0]];
  symbols.forEach((s, i) => {
    const len = HUFFMAN_LENGTHS[s];
    if (i > 0) code = (code + 1) * 2 ** (len - prev);
    prev = len;
    const entry = first.get(len);
    if (entry) entry.count++;
    else first.set(len, { code, count: 1, at: i });
  });
  return { symbols, first, minLength: HUFFMAN_LENGTHS[symbols[0]] };
})();

/** Decodes a Huffman-coded string (RFC 7541 §5.2). */
export function huffmanDecode(input: Uint8Array): Uint8Array {
  const out: number[] = [];
  let code = 0, len = 0;
  for (const byte of input) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      if (len < HUFFMAN.minLength) continue;
      const f = HUFFMAN.first.get(len);
      if (f && code >= f.code && code - f.code < f.count) {
        const sym = HUFFMAN.symbols[f.at + code - f.code];
        if (sym === EOS) throw new HpackError("Huffman-coded string contains EOS");
        out.push(sym);
        code = 0;
        len = 0;
      } else if (len > 30) {
        throw new HpackError("invalid Huffman code");
      }
    }
  }
  // What is left must be a prefix of EOS (all ones), shorter than a byte.
  if (len > 7 || code !== 2 ** len - 1) throw new HpackError("invalid Huffman padding");
  return Uint8Array.from(out);
}

/** A malformed header block: a connection error (COMPRESSION_ERROR) in HTTP/2. */
export class HpackError extends Error {
  override name = "HpackError";
}

const latin1 = new TextDecoder("latin1");

/** Decodes header blocks of one connection, keeping its dynamic table. */
export class HpackDecoder {
  #table: Array<[string, string]> = [];
  #size = 0;
  #maxSize: number;

  /** `maxSize`: the SETTINGS_HEADER_TABLE_SIZE we announced (4096 by default). */
  constructor(maxSize = 4096) {
    this.#maxSize = maxSize;
  }

  decode(block: Uint8Array): Array<[string, string]> {
    const headers: Array<[string, string]> = [];
    let pos = 0;
    const int = (prefixBits: number): number => {
      if (pos >= block.length) throw new HpackError("truncated header block");
      const max = 2 ** prefixBits - 1;
      let value = block[pos++] & max;
      if (value < max) return value;
      for (let shift = 0;; shift += 7) {
        if (pos >= block.length) throw new HpackError("truncated header block");
        if (shift > 28) throw new HpackError("integer too large in header block");
        const b = block[pos++];
        value += (b & 0x7f) * 2 ** shift;
        if (b < 0x80) return value;
      }
    };
    const str = (): string => {
      if (pos >= block.length) throw new HpackError("truncated header block");
      const huffman = (block[pos] & 0x80) !== 0;
      const n = int(7);
      if (pos + n > block.length) throw new HpackError("truncated header block");
      const raw = block.subarray(pos, pos + n);
      pos += n;
      return latin1.decode(huffman ? huffmanDecode(raw) : raw);
    };
    while (pos < block.length) {
      const b = block[pos];
      if (b & 0x80) {
        headers.push(this.#entry(int(7)));
      } else if (b & 0x40) {
        const index = int(6);
        const name = index ? this.#entry(index)[0] : str();
        const entry: [string, string] = [name, str()];
        headers.push(entry);
        this.#add(entry);
      } else if (b & 0x20) {
        const size = int(5);
        if (size > 4096) throw new HpackError(`table size update to ${size} beyond our 4096`);
        this.#maxSize = size;
        this.#evict();
      } else {
        const index = int(4);
        const name = index ? this.#entry(index)[0] : str();
        headers.push([name, str()]);
      }
    }
    return headers;
  }

  #entry(index: number): [string, string] {
    if (index >= 1 && index <= STATIC_TABLE.length) {
      const [n, v] = STATIC_TABLE[index - 1];
      return [n, v];
    }
    const e = this.#table[index - STATIC_TABLE.length - 1];
    if (!e) throw new HpackError(`header table index ${index} out of range`);
    return e;
  }

  #add(entry: [string, string]): void {
    this.#table.unshift(entry);
    this.#size += entry[0].length + entry[1].length + 32;
    this.#evict();
  }

  #evict(): void {
    while (this.#size > this.#maxSize && this.#table.length > 0) {
      const [n, v] = this.#table.pop()!;
      this.#size -= n.length + v.length + 32;
    }
  }
}

const utf8 = new TextEncoder();

/** Encodes a header list with literals that are never added to the peer's table. */
export function hpackEncode(headers: ReadonlyArray<readonly [string, string]>): Uint8Array {
  const out: number[] = [];
  const int = (value: number, prefixBits: number, flags: number) => {
    const max = 2 ** prefixBits - 1;
    if (value < max) {
      out.push(flags | value);
      return;
    }
    out.push(flags | max);
    value -= max;
    while (value >= 0x80) {
      out.push((value & 0x7f) | 0x80);
      value = Math.floor(value / 128);
    }
    out.push(value);
  };
  const str = (s: string) => {
    const bytes = utf8.encode(s);
    int(bytes.length, 7, 0);
    for (const b of bytes) out.push(b);
  };
  for (const [name, value] of headers) {
    const exact = STATIC_TABLE.findIndex(([n, v]) => n === name && v === value);
    if (exact >= 0) {
      int(exact + 1, 7, 0x80);
      continue;
    }
    const named = STATIC_TABLE.findIndex(([n]) => n === name);
    int(named + 1, 4, 0); // literal without indexing; index 0 means a new name follows
    if (named < 0) str(name);
    str(value);
  }
  return Uint8Array.from(out);
}
