/**
 * Our containerd API subset, parsed from the proto text embedded in proto_text.ts (so the binary
 * never reads a .proto file at run time), with the message codec of protobuf.ts. Nothing outside
 * src/containerd/ sees protobuf types.
 */

import { PROTO_FILES } from "./proto_text.ts";
import { ProtoSchema } from "./protobuf.ts";

/** What a call of one method needs: its path and how to encode and decode messages. */
export interface MethodDefinition {
  path: string;
  requestSerialize(value: object): Uint8Array;
  responseDeserialize(bytes: Uint8Array): unknown;
}

/** The parsed schema and gRPC methods. */
export interface ProtoApi {
  readonly schema: ProtoSchema;
  /** The method `name` of `service` (fully qualified); undefined when our subset lacks it. */
  method(service: string, name: string): MethodDefinition | undefined;
  /** Encodes a message of the fully qualified type `typeName`. */
  encode(typeName: string, value: Record<string, unknown>): Uint8Array;
}

/** Parses the embedded proto files (about a millisecond; done once per client). */
export function loadProtoApi(files: Readonly<Record<string, string>> = PROTO_FILES): ProtoApi {
  let schema: ProtoSchema;
  try {
    schema = ProtoSchema.parse(files);
  } catch (err) {
    throw new Error(`cannot parse the embedded proto files: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const methods = new Map<string, MethodDefinition | undefined>();
  const method = (service: string, name: string) => {
    const key = `${service}/${name}`;
    if (!methods.has(key)) methods.set(key, buildMethod(schema, service, name));
    return methods.get(key);
  };
  return {
    schema,
    method,
    encode: (typeName, value) => schema.encode(typeName, value),
  };
}

function buildMethod(
  schema: ProtoSchema,
  service: string,
  name: string,
): MethodDefinition | undefined {
  const m = schema.services.get(service)?.get(name);
  if (!m) return undefined;
  return {
    path: `/${service}/${name}`,
    requestSerialize: (value) => schema.encode(m.requestType, value as Record<string, unknown>),
    responseDeserialize: (bytes) => schema.decode(m.responseType, bytes),
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
  if (api.schema.types.get(typeName)?.kind !== "message") return undefined;
  return { typeUrl: any.type_url, value: api.schema.decode(typeName, any.value) };
}
