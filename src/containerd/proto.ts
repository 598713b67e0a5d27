/**
 * Loads our containerd API subset from the proto text embedded in proto_text.ts, so the binary
 * never reads a .proto file at run time. Nothing outside src/containerd/ sees protobuf types.
 */

import protobuf from "protobufjs";
import { fromJSON, type PackageDefinition } from "@grpc/proto-loader";
import { PROTO_FILES } from "./proto_text.ts";

/** The parsed schema: protobufjs types for decoding `Any` values, and gRPC method definitions. */
export interface ProtoApi {
  readonly root: protobuf.Root;
  readonly definitions: PackageDefinition;
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
  return { root, definitions: fromJSON(root.toJSON(), CONVERSION) };
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
