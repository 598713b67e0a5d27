/**
 * Loads our containerd API subset from the proto text embedded in proto_text.ts, so the binary
 * never reads a .proto file at run time. Nothing outside src/containerd/ sees protobuf types.
 */

import { Buffer } from "node:buffer";
import protobuf from "protobufjs";
import { PROTO_FILES } from "./proto_text.ts";

/** What grpc-js needs to call one method: its path and how to encode and decode messages. */
export interface MethodDefinition {
  path: string;
  requestSerialize(value: object): Buffer;
  responseDeserialize(bytes: Buffer): unknown;
}

/** The parsed schema: protobufjs types for decoding `Any` values, and gRPC methods. */
export interface ProtoApi {
  readonly root: protobuf.Root;
  /** The method `name` of `service` (fully qualified); undefined when our subset lacks it. */
  method(service: string, name: string): MethodDefinition | undefined;
}

// How messages become JS objects: int64 as decimal strings (sizes can exceed 2^53 in theory),
// enums as their names, proto3 defaults filled in. Wrappers convert to friendlier types.
export const CONVERSION = Object.freeze({
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});

const WELL_KNOWN = [
  "google/protobuf/any.proto",
  "google/protobuf/timestamp.proto",
  "google/protobuf/empty.proto",
  "google/protobuf/field_mask.proto",
];

/** Parses the embedded proto files (a few milliseconds; done once per client). */
export function loadProtoApi(files: Readonly<Record<string, string>> = PROTO_FILES): ProtoApi {
  const root = new protobuf.Root();
  for (const name of WELL_KNOWN) {
    const common = protobuf.common.get(name);
    if (!common) throw new Error(`protobufjs has no built-in ${name}`);
    root.addJSON(common.nested ?? {});
  }
  for (const [name, text] of Object.entries(files)) {
    try {
      protobuf.parse(text, root, { keepCase: true });
    } catch (err) {
      throw new Error(`cannot parse embedded proto ${name}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  root.resolveAll();
  // Built on first use from the one protobufjs root: a generic loader (proto-loader) would copy
  // the schema into a second root and build descriptors we never use (about 10 MB of memory).
  const methods = new Map<string, MethodDefinition | undefined>();
  const method = (service: string, name: string) => {
    const key = `${service}/${name}`;
    if (!methods.has(key)) methods.set(key, buildMethod(root, service, name));
    return methods.get(key);
  };
  return { root, method };
}

function buildMethod(
  root: protobuf.Root,
  service: string,
  name: string,
): MethodDefinition | undefined {
  const svc = root.lookup(service);
  if (!(svc instanceof protobuf.Service)) return undefined;
  const m = svc.methods[name];
  if (!m) return undefined;
  m.resolve();
  const request = m.resolvedRequestType!;
  const response = m.resolvedResponseType!;
  return {
    path: `/${service}/${name}`,
    requestSerialize: (value) => Buffer.from(request.encode(request.fromObject(value)).finish()),
    responseDeserialize: (bytes) => response.toObject(response.decode(bytes), CONVERSION),
  };
}

/** A decoded `google.protobuf.Any`: its type name and the message as a plain object. */
export interface DecodedAny {
  typeUrl: string;
  value: Record<string, unknown>;
}

/**
 * Decodes an Any whose type is in our schema. containerd 1.6 type URLs carry no
 * `type.googleapis.com/` prefix (`containerd.events.TaskExit`), but tolerate one.
 */
export function decodeAny(
  api: ProtoApi,
  any: { type_url: string; value: Uint8Array },
): DecodedAny | undefined {
  const typeName = any.type_url.slice(any.type_url.lastIndexOf("/") + 1);
  let type: protobuf.Type;
  try {
    type = api.root.lookupType(typeName);
  } catch {
    return undefined;
  }
  const msg = type.decode(any.value);
  return {
    typeUrl: any.type_url,
    value: type.toObject(msg, CONVERSION) as Record<string, unknown>,
  };
}
