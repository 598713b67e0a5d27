/**
 * How a function deployment is stored in containerd, so that nothing is lost across restarts and
 * `FunctionStatus` round-trips exactly. Every replica is one container, and its record holds:
 *
 * - container labels: a small fixed set that containerd can filter on and that always fits the
 *   4096-byte key+value limit of a label — `com.openfaas.function=<name>`,
 *   `io.faasd-ts.generation=<n>`, `io.faasd-ts.replica=<n>`. User labels are not copied: one
 *   copy of the truth, no size or key collisions to police, and nothing here filters on them.
 * - OCI spec annotations (the spec is stored in the container record and has no per-entry size
 *   limit): `io.faasd-ts.deployment.v1`, the whole normalised deployment as JSON, exactly as
 *   validated (a 200-entry envVars does not fit one label), and `io.faasd-ts.created-at`
 *   (RFC 3339), when the function was first deployed. The version in the key lets a later
 *   format live beside this one. runc copies annotations into the bundle's config.json, which
 *   already holds the same env values in `process.env`, so nothing new is exposed.
 */

import { FailedPreconditionError, InvalidArgumentError } from "../errors.ts";
import {
  DEFAULT_NAMESPACE,
  type FunctionDeployment,
  type FunctionStatus,
  type FunctionUsage,
  type ResourceAmounts,
} from "./types.ts";

/** The label naming the function a container is a replica of. */
export const FUNCTION_LABEL = "com.openfaas.function";
/** The label holding the deploy generation (bumped by every deploy or update). */
export const GENERATION_LABEL = "io.faasd-ts.generation";
/** The label holding the replica index within a generation. */
export const REPLICA_LABEL = "io.faasd-ts.replica";
/** The spec annotation holding the deployment as JSON. */
export const DEPLOYMENT_ANNOTATION = "io.faasd-ts.deployment.v1";
/** The spec annotation holding when the function was first deployed (RFC 3339). */
export const CREATED_AT_ANNOTATION = "io.faasd-ts.created-at";

/** The largest generation a container ID can hold (8 base-36 digits). */
export const MAX_GENERATION = 36 ** 8 - 1;
/** The largest replica index a container ID can hold (3 base-36 digits). */
export const MAX_REPLICA = 36 ** 3 - 1;

/** What a replica's record says besides the deployment. */
export interface RecordMeta {
  generation: number;
  createdAt: Date;
  replica: number;
}

/** A decoded replica record. */
export interface FunctionRecord extends RecordMeta {
  deployment: FunctionDeployment;
}

/** Runtime facts that FunctionStatus reports next to the deployment. */
export interface StatusMeta {
  createdAt: Date;
  replicas: number;
  availableReplicas: number;
  invocationCount: number;
  usage?: FunctionUsage;
}

// A name is a DNS-1123 label without "--" (validate.ts), so the ID matches containerd's grammar,
// and 63 + "-" + 8 + "-" + 3 base-36 digits is at most 76 characters, containerd's limit.
const ID_RE = /^([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)-([0-9a-z]{1,8})-([0-9a-z]{1,3})$/;
const NAME_MAX = 63;
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/;

/** The container labels and spec annotations that store one replica of a deployment. */
export function encodeRecord(
  dep: FunctionDeployment,
  meta: RecordMeta,
): { labels: Record<string, string>; annotations: Record<string, string> } {
  checkCounter(meta.generation, MAX_GENERATION, "generation");
  checkCounter(meta.replica, MAX_REPLICA, "replica");
  if (Number.isNaN(meta.createdAt.getTime())) {
    throw new InvalidArgumentError(`invalid createdAt for function "${dep.service}"`);
  }
  return {
    labels: {
      [FUNCTION_LABEL]: dep.service,
      [GENERATION_LABEL]: String(meta.generation),
      [REPLICA_LABEL]: String(meta.replica),
    },
    annotations: {
      [DEPLOYMENT_ANNOTATION]: JSON.stringify(dep),
      [CREATED_AT_ANNOTATION]: meta.createdAt.toISOString(),
    },
  };
}

/** Reads a replica record back; FailedPreconditionError when the container is not one of ours or is damaged. */
export function decodeRecord(
  labels: Record<string, string>,
  specAnnotations: Record<string, string> | undefined,
): FunctionRecord {
  const fail = (why: string, cause?: unknown): never => {
    throw new FailedPreconditionError(`cannot read function record: ${why}`, { cause });
  };
  const name = labels[FUNCTION_LABEL];
  if (!name) return fail(`label "${FUNCTION_LABEL}" is missing`);
  const generation = counterLabel(labels, GENERATION_LABEL, fail);
  const replica = counterLabel(labels, REPLICA_LABEL, fail);

  const json = specAnnotations?.[DEPLOYMENT_ANNOTATION];
  if (json === undefined) return fail(`spec annotation "${DEPLOYMENT_ANNOTATION}" is missing`);
  let d: Partial<FunctionDeployment> | null;
  try {
    d = JSON.parse(json);
  } catch (err) {
    return fail(`spec annotation "${DEPLOYMENT_ANNOTATION}" of "${name}" is not JSON`, err);
  }
  if (typeof d?.service !== "string" || typeof d.image !== "string") {
    return fail(`spec annotation "${DEPLOYMENT_ANNOTATION}" of "${name}" has no service and image`);
  }
  if (d.service !== name) {
    return fail(`label "${FUNCTION_LABEL}" is "${name}" but the deployment is "${d.service}"`);
  }

  const created = specAnnotations?.[CREATED_AT_ANNOTATION] ?? "";
  const createdAt = new Date(created);
  if (!RFC3339.test(created) || Number.isNaN(createdAt.getTime())) {
    return fail(`spec annotation "${CREATED_AT_ANNOTATION}" "${created}" is not an RFC 3339 time`);
  }
  return { deployment: d as FunctionDeployment, generation, createdAt, replica };
}

/** The API view of a deployment, following the contract's round-trip rules exactly. */
export function toFunctionStatus(dep: FunctionDeployment, meta: StatusMeta): FunctionStatus {
  const status: FunctionStatus = {
    name: dep.service,
    image: dep.image,
    namespace: dep.namespace || DEFAULT_NAMESPACE,
    invocationCount: meta.invocationCount,
    replicas: meta.replicas,
    availableReplicas: meta.availableReplicas,
    createdAt: meta.createdAt.toISOString(),
  };
  if (dep.envProcess) status.envProcess = dep.envProcess;
  if (nonEmpty(dep.envVars)) status.envVars = { ...dep.envVars };
  if (dep.constraints?.length) status.constraints = [...dep.constraints];
  if (dep.secrets?.length) status.secrets = [...dep.secrets];
  status.labels = { ...dep.labels, faas_function: dep.service };
  if (nonEmpty(dep.annotations)) status.annotations = { ...dep.annotations };
  const limits = amounts(dep.limits);
  if (limits) status.limits = limits;
  const requests = amounts(dep.requests);
  if (requests) status.requests = requests;
  status.readOnlyRootFilesystem = dep.readOnlyRootFilesystem === true;
  if (meta.usage) status.usage = { ...meta.usage };
  return status;
}

/**
 * The containerd ID of one replica, `<name>-<generation base 36>-<replica base 36>`; the
 * namespace stays out because containerd namespaces already keep functions apart.
 */
export function containerId(name: string, generation: number, replica: number): string {
  checkCounter(generation, MAX_GENERATION, "generation");
  checkCounter(replica, MAX_REPLICA, "replica");
  const id = `${name}-${generation.toString(36)}-${replica.toString(36)}`;
  if (name.length > NAME_MAX || !ID_RE.test(id) || name.includes("--")) {
    throw new InvalidArgumentError(`cannot make a container ID from function name "${name}"`);
  }
  return id;
}

/** The inverse of containerId, or undefined for an ID it did not make. */
export function parseContainerId(
  id: string,
): { name: string; generation: number; replica: number } | undefined {
  const m = ID_RE.exec(id);
  if (!m || m[1].length > NAME_MAX || m[1].includes("--")) {
    return undefined;
  }
  const generation = parseInt(m[2], 36);
  const replica = parseInt(m[3], 36);
  // Only the canonical spelling (no leading zeros) so that each ID maps to one triple.
  if (generation.toString(36) !== m[2] || replica.toString(36) !== m[3]) return undefined;
  return { name: m[1], generation, replica };
}

function checkCounter(n: number, max: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    throw new InvalidArgumentError(`invalid ${what} ${n}: it must be an integer from 0 to ${max}`);
  }
}

function counterLabel(
  labels: Record<string, string>,
  key: string,
  fail: (why: string) => never,
): number {
  const v = labels[key];
  if (v === undefined || !/^(0|[1-9][0-9]{0,15})$/.test(v)) {
    return fail(`label "${key}" is ${v === undefined ? "missing" : `"${v}", not a number`}`);
  }
  return Number(v);
}

function amounts(a: ResourceAmounts | undefined): ResourceAmounts | undefined {
  if (!a) return undefined;
  const out: ResourceAmounts = {};
  if (a.memory) out.memory = a.memory;
  if (a.cpu) out.cpu = a.cpu;
  return Object.keys(out).length > 0 ? out : undefined;
}

function nonEmpty(m: Record<string, string> | undefined): m is Record<string, string> {
  return m !== undefined && m !== null && Object.keys(m).length > 0;
}
