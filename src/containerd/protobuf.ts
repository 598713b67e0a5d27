/**
 * Protocol Buffers for our containerd API subset: a parser for the .proto syntax proto/ uses
 * (proto3: packages, messages with nested messages and enums, enums, repeated and map fields,
 * services with streaming methods) and an encoder and decoder for its messages. It replaces a
 * general protobuf library, which cost the appliance about 18 MB of memory for what it used.
 *
 * Decoded messages are plain objects with the field names as written in the .proto file, every
 * field present (proto3 defaults filled in: "" / 0 / false, [] for repeated fields, {} for maps,
 * null for an absent message), 64-bit integers as decimal strings, enums by name and bytes as
 * Buffers. The encoder takes the same shapes, plus numbers or bigints for 64-bit integers, enum
 * numbers, and base64 strings for bytes; null and undefined fields are left out.
 */

import { Buffer } from "node:buffer";

const SCALARS = new Set([
  "double",
  "float",
  "int32",
  "int64",
  "uint32",
  "uint64",
  "sint32",
  "sint64",
  "fixed32",
  "fixed64",
  "sfixed32",
  "sfixed64",
  "bool",
  "string",
  "bytes",
]);

/** Integer types carried as decimal strings once decoded. */
const LONGS = new Set(["int64", "uint64", "sint64", "fixed64", "sfixed64"]);

/** The wire type of each scalar; enums are varints, messages, strings and bytes length-delimited. */
const WIRE_TYPE: Record<string, number> = {
  double: 1,
  fixed64: 1,
  sfixed64: 1,
  float: 5,
  fixed32: 5,
  sfixed32: 5,
  string: 2,
  bytes: 2,
};

/** The well-known types our files import, written out (their field numbers are protobuf's). */
const WELL_KNOWN = `
syntax = "proto3";
package google.protobuf;
message Any { string type_url = 1; bytes value = 2; }
message Timestamp { int64 seconds = 1; int32 nanos = 2; }
message Empty {}
message FieldMask { repeated string paths = 1; }
`;

/** One field of a message. */
export interface FieldInfo {
  name: string;
  number: number;
  /** A scalar name, or the full name of a message or enum once resolved. */
  type: string;
  repeated: boolean;
  /** For `map<K, V>`: the key and value types (the field is then a repeated entry message). */
  map?: { key: string; value: string };
}

/** A message type. */
export interface MessageInfo {
  kind: "message";
  fullName: string;
  fields: FieldInfo[];
}

/** An enum type. */
export interface EnumInfo {
  kind: "enum";
  fullName: string;
  byName: Map<string, number>;
  byNumber: Map<number, string>;
  /** The default: the value numbered 0, else the first declared. */
  defaultName: string;
}

/** One RPC of a service. */
export interface MethodInfo {
  name: string;
  requestType: string;
  responseType: string;
  requestStream: boolean;
  responseStream: boolean;
}

/** A parsed set of .proto files. */
export class ProtoSchema {
  readonly types = new Map<string, MessageInfo | EnumInfo>();
  readonly services = new Map<string, Map<string, MethodInfo>>();
  readonly #fieldsByNumber = new Map<string, Map<number, FieldInfo>>();

  /** Parses `files` (name → text) with the well-known types; throws naming the file and line. */
  static parse(files: Readonly<Record<string, string>>): ProtoSchema {
    const schema = new ProtoSchema();
    const pending: Array<{ scope: string; field: FieldInfo; file: string }> = [];
    const methods: Array<{ scope: string; method: MethodInfo; file: string }> = [];
    for (
      const [name, text] of [["google/protobuf (built in)", WELL_KNOWN], ...Object.entries(files)]
    ) {
      new Parser(name, text, schema, pending, methods).parseFile();
    }
    for (const { scope, field, file } of pending) {
      const resolve = (t: string) => SCALARS.has(t) ? t : schema.#resolve(t, scope, file);
      if (field.map) {
        field.map = { key: resolve(field.map.key), value: resolve(field.map.value) };
      } else {
        field.type = resolve(field.type);
      }
    }
    for (const { scope, method, file } of methods) {
      method.requestType = schema.#resolve(method.requestType, scope, file);
      method.responseType = schema.#resolve(method.responseType, scope, file);
    }
    return schema;
  }

  /** Looks up a type by name in `scope`, from the innermost scope outwards, as protoc does. */
  #resolve(name: string, scope: string, file: string): string {
    if (name.startsWith(".")) {
      if (this.types.has(name.slice(1))) return name.slice(1);
    } else {
      for (let s = scope;; s = s.slice(0, Math.max(0, s.lastIndexOf(".")))) {
        const full = s ? `${s}.${name}` : name;
        if (this.types.has(full)) return full;
        if (!s) break;
      }
    }
    throw new Error(`${file}: unknown type "${name}" (in ${scope || "the root scope"})`);
  }

  /** The message type `name` (fully qualified); throws when there is none. */
  message(name: string): MessageInfo {
    const t = this.types.get(name);
    if (t?.kind !== "message") throw new Error(`no message type "${name}" in the schema`);
    return t;
  }

  /** Encodes `value` as a `typeName` message. */
  encode(typeName: string, value: Record<string, unknown>): Uint8Array {
    const w = new Writer();
    this.#write(w, this.message(typeName), value);
    return w.finish();
  }

  /** Decodes a `typeName` message. */
  decode(typeName: string, bytes: Uint8Array): Record<string, unknown> {
    return this.#read(new Reader(bytes), this.message(typeName), bytes.length);
  }

  #write(w: Writer, type: MessageInfo, value: Record<string, unknown>): void {
    for (const f of type.fields) {
      const v = value[f.name];
      if (v === undefined || v === null) continue;
      if (f.map) {
        for (const [k, item] of Object.entries(v as Record<string, unknown>)) {
          if (item === undefined || item === null) continue;
          w.tag(f.number, 2);
          w.fork();
          this.#writeValue(w, 1, f.map.key, k);
          this.#writeValue(w, 2, f.map.value, item);
          w.join();
        }
      } else if (f.repeated) {
        if (!Array.isArray(v)) throw new TypeError(`${type.fullName}.${f.name}: expected an array`);
        if (this.#packable(f.type)) {
          if (v.length === 0) continue;
          w.tag(f.number, 2);
          w.fork();
          for (const item of v) this.#writeRaw(w, f.type, item, `${type.fullName}.${f.name}`);
          w.join();
        } else {
          for (const item of v) this.#writeValue(w, f.number, f.type, item, type, f);
        }
      } else {
        this.#writeValue(w, f.number, f.type, v, type, f);
      }
    }
  }

  #packable(type: string): boolean {
    if (SCALARS.has(type)) return type !== "string" && type !== "bytes";
    return this.types.get(type)?.kind === "enum";
  }

  #writeValue(
    w: Writer,
    number: number,
    type: string,
    v: unknown,
    parent?: MessageInfo,
    f?: FieldInfo,
  ): void {
    const where = parent && f ? `${parent.fullName}.${f.name}` : type;
    const t = SCALARS.has(type) ? undefined : this.types.get(type);
    if (t?.kind === "message") {
      if (typeof v !== "object") throw new TypeError(`${where}: expected an object`);
      w.tag(number, 2);
      w.fork();
      this.#write(w, t, v as Record<string, unknown>);
      w.join();
      return;
    }
    w.tag(number, t ? 0 : WIRE_TYPE[type] ?? 0);
    this.#writeRaw(w, type, v, where);
  }

  /** One value without its tag. */
  #writeRaw(w: Writer, type: string, v: unknown, where: string): void {
    switch (type) {
      case "string":
        return w.bytes(new TextEncoder().encode(String(v)));
      case "bytes":
        return w.bytes(typeof v === "string" ? Buffer.from(v, "base64") : asBytes(v, where));
      case "bool":
        return w.varint(v ? 1n : 0n);
      case "int32":
      case "int64":
      case "uint32":
      case "uint64":
        return w.varint(BigInt.asUintN(64, toBigInt(v, where)));
      case "sint32":
      case "sint64": {
        const n = toBigInt(v, where);
        return w.varint(BigInt.asUintN(64, (n << 1n) ^ (n < 0n ? -1n : 0n)));
      }
      case "fixed32":
      case "sfixed32":
        return w.fixed(4, BigInt.asUintN(32, toBigInt(v, where)));
      case "fixed64":
      case "sfixed64":
        return w.fixed(8, BigInt.asUintN(64, toBigInt(v, where)));
      case "float":
      case "double":
        return w.float(type === "float" ? 4 : 8, Number(v));
    }
    const e = this.types.get(type) as EnumInfo;
    const n = typeof v === "number" ? v : e.byName.get(String(v));
    if (n === undefined) throw new TypeError(`${where}: "${v}" is not a value of ${e.fullName}`);
    w.varint(BigInt.asUintN(64, BigInt(n)));
  }

  #read(r: Reader, type: MessageInfo, end: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const fields = this.#fields(type);
    while (r.pos < end) {
      const tag = r.uint32();
      const number = tag >>> 3, wire = tag & 7;
      const f = fields.get(number);
      if (!f) {
        r.skip(wire);
        continue;
      }
      if (f.map) {
        const entryEnd = r.length();
        let key: unknown, value: unknown;
        while (r.pos < entryEnd) {
          const t = r.uint32();
          if (t >>> 3 === 1) key = this.#readValue(r, f.map.key, t & 7);
          else if (t >>> 3 === 2) value = this.#readValue(r, f.map.value, t & 7);
          else r.skip(t & 7);
        }
        const map = (out[f.name] ??= {}) as Record<string, unknown>;
        map[String(key ?? "")] = value ?? this.#default(f.map.value);
      } else if (f.repeated) {
        const list = (out[f.name] ??= []) as unknown[];
        if (wire === 2 && this.#packable(f.type)) {
          const packedEnd = r.length();
          while (r.pos < packedEnd) list.push(this.#readValue(r, f.type, -1));
        } else {
          list.push(this.#readValue(r, f.type, wire));
        }
      } else {
        out[f.name] = this.#readValue(r, f.type, wire);
      }
    }
    if (r.pos !== end) throw new Error(`${type.fullName}: a field runs past the message's end`);
    for (const f of type.fields) {
      if (!(f.name in out)) out[f.name] = f.map ? {} : f.repeated ? [] : this.#default(f.type);
    }
    return out;
  }

  #fields(type: MessageInfo): Map<number, FieldInfo> {
    let m = this.#fieldsByNumber.get(type.fullName);
    if (!m) {
      m = new Map(type.fields.map((f) => [f.number, f]));
      this.#fieldsByNumber.set(type.fullName, m);
    }
    return m;
  }

  /** One value; `wire` is -1 inside a packed run (no tag, the type says the encoding). */
  #readValue(r: Reader, type: string, wire: number): unknown {
    const t = SCALARS.has(type) ? undefined : this.types.get(type);
    if (t?.kind === "message") {
      if (wire !== 2) throw new Error(`${type}: wire type ${wire}, expected 2`);
      const end = r.length();
      return this.#read(r, t, end);
    }
    if (wire >= 0) {
      const expected = t ? 0 : WIRE_TYPE[type] ?? 0;
      if (wire !== expected) throw new Error(`${type}: wire type ${wire}, expected ${expected}`);
    }
    switch (type) {
      case "string":
        return new TextDecoder().decode(r.bytes());
      case "bytes":
        return r.bytes();
      case "bool":
        return r.uint32() !== 0;
      case "int32":
        return r.uint32() | 0;
      case "uint32":
        return r.uint32();
      case "int64":
        return BigInt.asIntN(64, r.varint()).toString();
      case "uint64":
        return r.varint().toString();
      case "sint32":
      case "sint64": {
        const n = r.varint();
        const v = (n >> 1n) ^ -(n & 1n);
        return type === "sint32" ? Number(v) : v.toString();
      }
      case "fixed32":
        return Number(r.fixed(4));
      case "sfixed32":
        return Number(BigInt.asIntN(32, r.fixed(4)));
      case "fixed64":
        return r.fixed(8).toString();
      case "sfixed64":
        return BigInt.asIntN(64, r.fixed(8)).toString();
      case "float":
      case "double":
        return r.float(type === "float" ? 4 : 8);
    }
    const n = r.uint32() | 0;
    return (t as EnumInfo).byNumber.get(n) ?? n;
  }

  #default(type: string): unknown {
    switch (type) {
      case "string":
        return "";
      case "bytes":
        return Buffer.alloc(0);
      case "bool":
        return false;
    }
    if (LONGS.has(type)) return "0";
    if (SCALARS.has(type)) return 0;
    const t = this.types.get(type);
    return t?.kind === "enum" ? t.defaultName : null;
  }
}

function toBigInt(v: unknown, where: string): bigint {
  if (typeof v === "bigint") return v;
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  if (typeof v === "string" && /^-?\d+$/.test(v)) return BigInt(v);
  if (typeof v === "boolean") return v ? 1n : 0n;
  throw new TypeError(`${where}: expected an integer, got ${JSON.stringify(v)}`);
}

function asBytes(v: unknown, where: string): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return Uint8Array.from(v as number[]);
  throw new TypeError(`${where}: expected bytes`);
}

/** Builds a message; `fork`/`join` wrap a length-delimited part whose length is known at the end. */
class Writer {
  #buf = new Uint8Array(256);
  #len = 0;
  readonly #forks: number[] = [];

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  tag(number: number, wire: number): void {
    this.uint(number * 8 + wire);
  }

  /** A varint of a non-negative number below 2^31 (tags, lengths). */
  uint(n: number): void {
    this.#room(5);
    while (n >= 0x80) {
      this.#buf[this.#len++] = (n & 0x7f) | 0x80;
      n >>>= 7;
    }
    this.#buf[this.#len++] = n;
  }

  /** A varint of a 64-bit value (negative numbers already as their two's complement). */
  varint(v: bigint): void {
    if (v < 0x80000000n) return this.uint(Number(v));
    this.#room(10);
    while (v >= 0x80n) {
      this.#buf[this.#len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.#buf[this.#len++] = Number(v);
  }

  fixed(size: 4 | 8, v: bigint): void {
    this.#room(size);
    for (let i = 0; i < size; i++) {
      this.#buf[this.#len++] = Number(v & 0xffn);
      v >>= 8n;
    }
  }

  float(size: 4 | 8, v: number): void {
    this.#room(size);
    const view = new DataView(this.#buf.buffer, this.#len, size);
    if (size === 4) view.setFloat32(0, v, true);
    else view.setFloat64(0, v, true);
    this.#len += size;
  }

  bytes(b: Uint8Array): void {
    this.uint(b.length);
    this.#room(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
  }

  /** Starts a length-delimited part. */
  fork(): void {
    this.#forks.push(this.#len);
  }

  /** Ends the part `fork` started: its length goes in front of it. */
  join(): void {
    const start = this.#forks.pop()!;
    const body = this.#buf.slice(start, this.#len);
    this.#len = start;
    this.bytes(body);
  }

  finish(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }
}

/** Reads a message; throws on truncated input. */
class Reader {
  pos = 0;
  readonly #buf: Uint8Array;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
  }

  varint(): bigint {
    let result = 0n, shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.#buf.length) throw new Error("truncated message (in a varint)");
      const b = this.#buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
      shift += 7n;
    }
    throw new Error("malformed varint (longer than 10 bytes)");
  }

  /** A varint's low 32 bits, read without bigints (tags, lengths, 32-bit types, enums). */
  uint32(): number {
    let result = 0;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= this.#buf.length) throw new Error("truncated message (in a varint)");
      const b = this.#buf[this.pos++];
      result += (b & 0x7f) * 2 ** (7 * i);
      if (b < 0x80) return result % 2 ** 32;
    }
    // A negative int32 is sign-extended to ten bytes; what is left carries no more bits.
    for (let i = 5; i < 10; i++) {
      if (this.pos >= this.#buf.length) throw new Error("truncated message (in a varint)");
      if (this.#buf[this.pos++] < 0x80) return result % 2 ** 32;
    }
    throw new Error("malformed varint (longer than 10 bytes)");
  }

  /** A length prefix; returns where the part it announces ends. */
  length(): number {
    const n = this.uint32();
    const end = this.pos + n;
    if (end > this.#buf.length) throw new Error("truncated message (a part longer than the rest)");
    return end;
  }

  bytes(): Buffer {
    const end = this.length();
    const b = Buffer.from(this.#buf.buffer, this.#buf.byteOffset + this.pos, end - this.pos);
    this.pos = end;
    return b;
  }

  fixed(size: 4 | 8): bigint {
    if (this.pos + size > this.#buf.length) throw new Error("truncated message (in a fixed field)");
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.#buf[this.pos + i]);
    this.pos += size;
    return v;
  }

  float(size: 4 | 8): number {
    if (this.pos + size > this.#buf.length) throw new Error("truncated message (in a fixed field)");
    const view = new DataView(this.#buf.buffer, this.#buf.byteOffset + this.pos, size);
    this.pos += size;
    return size === 4 ? view.getFloat32(0, true) : view.getFloat64(0, true);
  }

  skip(wire: number): void {
    switch (wire) {
      case 0:
        this.varint();
        return;
      case 1:
        this.fixed(8);
        return;
      case 2:
        this.pos = this.length();
        return;
      case 5:
        this.fixed(4);
        return;
    }
    throw new Error(`unsupported wire type ${wire}`);
  }
}

// ---- the .proto parser ----

const TOKEN =
  /\s+|\/\/[^\n]*|\/\*[\s\S]*?\*\/|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[A-Za-z_.][\w.]*|-?\d+|[{}()[\];=<>,])/y;

class Parser {
  readonly #tokens: Array<{ text: string; line: number }> = [];
  #at = 0;
  #package = "";

  constructor(
    private readonly file: string,
    text: string,
    private readonly schema: ProtoSchema,
    private readonly pending: Array<{ scope: string; field: FieldInfo; file: string }>,
    private readonly methods: Array<{ scope: string; method: MethodInfo; file: string }>,
  ) {
    let line = 1;
    TOKEN.lastIndex = 0;
    while (TOKEN.lastIndex < text.length) {
      const start = TOKEN.lastIndex;
      const m = TOKEN.exec(text);
      if (!m) throw this.#error(`unexpected character "${text[start]}"`, line);
      if (m[1] !== undefined) this.#tokens.push({ text: m[1], line });
      line += (m[0].match(/\n/g) ?? []).length;
    }
  }

  /** An error at the line of the token read last. */
  #error(message: string, line = this.#tokens[Math.max(0, this.#at - 1)]?.line ?? 0): Error {
    return new Error(`${this.file}:${line}: ${message}`);
  }

  #peek(): string | undefined {
    return this.#tokens[this.#at]?.text;
  }

  #next(): string {
    const t = this.#tokens[this.#at++];
    if (!t) throw this.#error("unexpected end of file");
    return t.text;
  }

  #expect(text: string): void {
    const got = this.#next();
    if (got !== text) throw this.#error(`expected "${text}", found "${got}"`);
  }

  #name(): string {
    const t = this.#next();
    if (!/^[A-Za-z_.][\w.]*$/.test(t)) throw this.#error(`expected a name, found "${t}"`);
    return t;
  }

  #number(): number {
    const t = this.#next();
    if (!/^-?\d+$/.test(t)) throw this.#error(`expected a number, found "${t}"`);
    return Number(t);
  }

  /** Skips an option statement or a field's `[...]` options. */
  #skipUntil(end: string): void {
    while (this.#next() !== end) { /* skipped */ }
  }

  parseFile(): void {
    while (this.#peek() !== undefined) {
      const t = this.#next();
      if (t === "syntax") {
        this.#expect("=");
        const v = this.#next();
        if (v !== '"proto3"') throw this.#error(`only proto3 is supported, not ${v}`);
        this.#expect(";");
      } else if (t === "package") {
        this.#package = this.#name();
        this.#expect(";");
      } else if (t === "import" || t === "option") {
        this.#skipUntil(";");
      } else if (t === "message") {
        this.#message(this.#package);
      } else if (t === "enum") {
        this.#enum(this.#package);
      } else if (t === "service") {
        this.#service();
      } else if (t !== ";") {
        throw this.#error(`unexpected "${t}"`);
      }
    }
  }

  #define(fullName: string, type: MessageInfo | EnumInfo): void {
    if (this.schema.types.has(fullName)) throw this.#error(`"${fullName}" is defined twice`);
    this.schema.types.set(fullName, type);
  }

  #message(scope: string): void {
    const fullName = scope ? `${scope}.${this.#name()}` : this.#name();
    const type: MessageInfo = { kind: "message", fullName, fields: [] };
    this.#define(fullName, type);
    this.#expect("{");
    for (let t = this.#next(); t !== "}"; t = this.#next()) {
      if (t === "message") this.#message(fullName);
      else if (t === "enum") this.#enum(fullName);
      else if (t === "option" || t === "reserved") this.#skipUntil(";");
      else if (t === "oneof" || t === "extensions" || t === "extend" || t === "group") {
        throw this.#error(`"${t}" is not supported by this parser`);
      } else if (t !== ";") {
        type.fields.push(this.#field(t, fullName));
      }
    }
  }

  #field(first: string, scope: string): FieldInfo {
    let repeated = false;
    let typeName = first;
    let map: FieldInfo["map"];
    if (first === "repeated" || first === "optional") {
      repeated = first === "repeated";
      typeName = this.#name();
    }
    if (typeName === "map") {
      this.#expect("<");
      const key = this.#name();
      this.#expect(",");
      const value = this.#name();
      this.#expect(">");
      map = { key, value };
      repeated = true;
    }
    const name = this.#name();
    this.#expect("=");
    const number = this.#number();
    if (this.#peek() === "[") this.#skipUntil("]");
    this.#expect(";");
    const field: FieldInfo = { name, number, type: typeName, repeated, map };
    this.pending.push({ scope, field, file: this.file });
    return field;
  }

  #enum(scope: string): void {
    const fullName = scope ? `${scope}.${this.#name()}` : this.#name();
    const type: EnumInfo = {
      kind: "enum",
      fullName,
      byName: new Map(),
      byNumber: new Map(),
      defaultName: "",
    };
    this.#define(fullName, type);
    this.#expect("{");
    for (let t = this.#next(); t !== "}"; t = this.#next()) {
      if (t === "option" || t === "reserved") {
        this.#skipUntil(";");
        continue;
      }
      if (t === ";") continue;
      this.#expect("=");
      const n = this.#number();
      if (this.#peek() === "[") this.#skipUntil("]");
      this.#expect(";");
      type.byName.set(t, n);
      if (!type.byNumber.has(n)) type.byNumber.set(n, t);
      if (!type.defaultName || n === 0 && type.byName.get(type.defaultName) !== 0) {
        type.defaultName = t;
      }
    }
  }

  #service(): void {
    const fullName = this.#package ? `${this.#package}.${this.#name()}` : this.#name();
    const methods = new Map<string, MethodInfo>();
    this.schema.services.set(fullName, methods);
    this.#expect("{");
    for (let t = this.#next(); t !== "}"; t = this.#next()) {
      if (t === "option") {
        this.#skipUntil(";");
        continue;
      }
      if (t === ";") continue;
      if (t !== "rpc") throw this.#error(`expected "rpc", found "${t}"`);
      const name = this.#name();
      const side = () => {
        this.#expect("(");
        let stream = false;
        let type = this.#name();
        if (type === "stream" && this.#peek() !== ")") {
          stream = true;
          type = this.#name();
        }
        this.#expect(")");
        return { stream, type };
      };
      const req = side();
      this.#expect("returns");
      const res = side();
      if (this.#peek() === "{") {
        this.#next();
        for (let d = 1; d > 0;) {
          const x = this.#next();
          if (x === "{") d++;
          else if (x === "}") d--;
        }
      } else {
        this.#expect(";");
      }
      const method: MethodInfo = {
        name,
        requestType: req.type,
        responseType: res.type,
        requestStream: req.stream,
        responseStream: res.stream,
      };
      methods.set(name, method);
      this.methods.push({ scope: this.#package, method, file: this.file });
    }
  }
}
