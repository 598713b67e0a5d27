/**
 * Checks a `POST`/`PUT /system/functions` body and normalises it into the FunctionDeployment the
 * provider stores: JSON read leniently (`null` maps and lists are empty), empty maps, lists and
 * strings left out, the namespace filled in, every quantity parsed once so a bad one is a 400 here
 * rather than a failed task later. Fields the contract does not list (e.g. `registryAuth`, a
 * credential) are dropped, so they are never stored.
 */

import { InvalidArgumentError } from "../errors.ts";
import { CFS_MIN_QUOTA_US, CFS_PERIOD_US, parseCpu, parseMemory } from "./quantity.ts";
import { upstreamTimeoutMs } from "./scale_labels.ts";
import type { FunctionDeployment, ResourceAmounts } from "./types.ts";

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_LABEL_MAX = 63;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// A Kubernetes-style key: a DNS subdomain prefix (253), "/", a name (63).
const KEY_MAX = 253 + 1 + 63;
// Linux MAX_ARG_STRLEN (32 pages) bounds each "NAME=value" string execve accepts, NUL included.
const ENV_ENTRY_MAX = 32 * 4096 - 1;
// The whole deployment is stored in the container's spec (see function_record.ts); this keeps
// that record, which also repeats the env in process.env, far below containerd's 16 MiB message.
const DEPLOYMENT_MAX = 1024 * 1024;
// quota = millis × (period / 1000) must reach the kernel's minimum quota.
const MIN_CPU_LIMIT_MILLIS = CFS_MIN_QUOTA_US / (CFS_PERIOD_US / 1000);

/** Checks and normalises a deployment request; InvalidArgumentError names the field at fault. */
export function validateDeployment(
  body: unknown,
  opts: { defaultNamespace: string },
): FunctionDeployment {
  if (!isObject(body)) {
    throw new InvalidArgumentError("a function deployment must be a JSON object");
  }
  const service = validateName(body.service ?? "", "function name");
  const image = optionalString(body.image, "image") ?? "";
  if (image.trim() === "") {
    throw new InvalidArgumentError(
      `invalid image "${image}" for function "${service}": it is empty`,
    );
  }
  const namespace = validateName(
    optionalString(body.namespace, "namespace") || opts.defaultNamespace,
    "namespace",
  );

  const dep: FunctionDeployment = { service, image, namespace };
  const envProcess = optionalString(body.envProcess, "envProcess");
  if (envProcess) dep.envProcess = envProcess;
  const envVars = stringMap(body.envVars, "envVars", checkEnv);
  if (envVars) dep.envVars = envVars;
  const constraints = stringList(body.constraints, "constraints");
  if (constraints) dep.constraints = constraints;
  const secrets = stringList(body.secrets, "secrets", checkSecret);
  if (secrets) dep.secrets = secrets;
  const labels = stringMap(body.labels, "labels", checkKey);
  if (labels) dep.labels = labels;
  const annotations = stringMap(body.annotations, "annotations", checkKey);
  if (annotations) dep.annotations = annotations;
  const limits = amounts(body.limits, "limits");
  if (limits) dep.limits = limits;
  const requests = amounts(body.requests, "requests");
  if (requests) dep.requests = requests;
  dep.readOnlyRootFilesystem = optionalBoolean(
    body.readOnlyRootFilesystem,
    "readOnlyRootFilesystem",
  );

  upstreamTimeoutMs(dep); // a bad com.openfaas.timeout is a 400 now, not a surprise later

  const size = new TextEncoder().encode(JSON.stringify(dep)).length;
  if (size > DEPLOYMENT_MAX) {
    throw new InvalidArgumentError(
      `function deployment "${service}" is ${size} bytes; at most ${DEPLOYMENT_MAX} are allowed`,
    );
  }
  return dep;
}

/**
 * Checks a function or namespace name: a DNS-1123 label without consecutive hyphens, which
 * containerd's ID and namespace grammar (`[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`) would reject.
 */
export function validateName(name: unknown, what = "function name"): string {
  if (typeof name !== "string") {
    throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(name)}: it must be a string`);
  }
  const fail = (why: string): never => {
    throw new InvalidArgumentError(`invalid ${what} "${name}": ${why}`);
  };
  if (name === "") fail("it is empty");
  if (name.length > DNS_LABEL_MAX) fail(`it is longer than ${DNS_LABEL_MAX} characters`);
  if (!DNS_LABEL.test(name)) {
    fail(`use lowercase letters, digits and "-", starting and ending with a letter or digit`);
  }
  if (name.includes("--")) fail(`consecutive "-" are not allowed (containerd IDs forbid them)`);
  return name;
}

function checkEnv(name: string, value: string): void {
  if (!ENV_NAME.test(name)) {
    throw new InvalidArgumentError(
      `envVars name "${name}" is not a valid variable name: use letters, digits and "_", not starting with a digit`,
    );
  }
  if (value.includes("\0")) {
    throw new InvalidArgumentError(`envVars "${name}" has a value with a NUL character`);
  }
  const size = new TextEncoder().encode(`${name}=${value}`).length;
  if (size > ENV_ENTRY_MAX) {
    throw new InvalidArgumentError(
      `envVars "${name}" is ${size} bytes; the kernel allows at most ${ENV_ENTRY_MAX} per variable`,
    );
  }
}

function checkKey(key: string, _value: string, field: string): void {
  // deno-lint-ignore no-control-regex
  if (key === "" || key.length > KEY_MAX || key.includes("=") || /[\s\x00-\x1f\x7f]/.test(key)) {
    throw new InvalidArgumentError(
      `${field} key "${key}" is not valid: it must be 1 to ${KEY_MAX} characters without "=", spaces or control characters`,
    );
  }
}

function checkSecret(name: string, field: string): void {
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new InvalidArgumentError(
      `${field} "${name}" is not a valid secret name: it must be non-empty, not "." or "..", and contain no "/"`,
    );
  }
}

function amounts(v: unknown, field: string): ResourceAmounts | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new InvalidArgumentError(`${field} must be an object`);
  const out: ResourceAmounts = {};
  const memory = optionalString(v.memory, `${field}.memory`);
  if (memory) {
    const bytes = parseMemory(memory, `${field}.memory`);
    if (field === "limits" && bytes === 0) {
      throw new InvalidArgumentError(`${field}.memory "${memory}" must be greater than zero`);
    }
    out.memory = memory;
  }
  const cpu = optionalString(v.cpu, `${field}.cpu`);
  if (cpu) {
    const millis = parseCpu(cpu, `${field}.cpu`);
    if (field === "limits" && millis < MIN_CPU_LIMIT_MILLIS) {
      throw new InvalidArgumentError(
        `${field}.cpu "${cpu}" is below the kernel's minimum of ${MIN_CPU_LIMIT_MILLIS}m`,
      );
    }
    out.cpu = cpu;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function stringMap(
  v: unknown,
  field: string,
  check: (key: string, value: string, field: string) => void,
): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new InvalidArgumentError(`${field} must be an object of strings`);
  const entries = Object.entries(v);
  if (entries.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    if (typeof value !== "string") {
      throw new InvalidArgumentError(
        `${field} "${key}" must be a string, not ${JSON.stringify(value)}`,
      );
    }
    check(key, value, field);
    out[key] = value;
  }
  return out;
}

function stringList(
  v: unknown,
  field: string,
  check?: (item: string, field: string) => void,
): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw new InvalidArgumentError(`${field} must be a list of strings`);
  if (v.length === 0) return undefined;
  const seen = new Set<string>();
  return v.map((item, i) => {
    if (typeof item !== "string") {
      throw new InvalidArgumentError(
        `${field}[${i}] must be a string, not ${JSON.stringify(item)}`,
      );
    }
    check?.(item, `${field}[${i}]`);
    // A checked list (secrets) becomes one mount per item, so an item may not repeat.
    if (check && seen.has(item)) {
      throw new InvalidArgumentError(`${field}[${i}] "${item}" is listed twice`);
    }
    seen.add(item);
    return item;
  });
}

function optionalString(v: unknown, field: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") {
    throw new InvalidArgumentError(`${field} must be a string, not ${JSON.stringify(v)}`);
  }
  return v;
}

function optionalBoolean(v: unknown, field: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") {
    throw new InvalidArgumentError(`${field} must be true or false, not ${JSON.stringify(v)}`);
  }
  return v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
