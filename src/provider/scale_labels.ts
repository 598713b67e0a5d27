/** The replica bounds and grace period a deployment asks for through its labels and env. */

import { InvalidArgumentError } from "../errors.ts";
import type { FunctionDeployment } from "./types.ts";

const DEFAULT_MIN = 1;
const DEFAULT_MAX = 20;

/** Replica bounds from the com.openfaas.scale labels (min 1 and max 20 by default). */
export function scaleBounds(dep: FunctionDeployment): { min: number; max: number } {
  const read = (key: string, fallback: number) => {
    const v = dep.labels?.[key];
    if (v === undefined || v === "") return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) {
      throw new InvalidArgumentError(`label ${key} must be a whole number ≥ 0, got "${v}"`);
    }
    return n;
  };
  const min = read("com.openfaas.scale.min", DEFAULT_MIN);
  const max = read("com.openfaas.scale.max", DEFAULT_MAX);
  if (max < Math.max(min, 1)) {
    throw new InvalidArgumentError(
      `com.openfaas.scale.max (${max}) is below com.openfaas.scale.min (${min})`,
    );
  }
  return { min, max };
}

/** The grace period before SIGKILL: the `grace_period` env var (Go duration), default 30 s, at most 120 s. */
export function graceMs(dep: FunctionDeployment): number {
  const v = dep.envVars?.grace_period;
  const ms = v ? parseDuration(v) : 30_000;
  return Math.min(ms ?? 30_000, 120_000);
}

/** Parses a Go-style duration (`30s`, `1m30s`, `500ms`); undefined when it is not one. */
export function parseDuration(s: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) {
    total += Number(m[1]) * unit[m[2] as keyof typeof unit];
    matched = re.lastIndex;
  }
  return matched === s.length && s.length > 0 ? total : undefined;
}

/** The annotation that overrides the gateway's upstream timeout for one function. */
export const TIMEOUT_ANNOTATION = "com.openfaas.timeout";

const timeouts = new WeakMap<FunctionDeployment, number | undefined>();

/**
 * The function's own upstream timeout from its `com.openfaas.timeout` annotation (a Go duration,
 * `2m`, `500ms`), or undefined for the gateway's; InvalidArgumentError for a bad value. Cached per
 * deployment, since the proxy asks on every request.
 */
export function upstreamTimeoutMs(dep: FunctionDeployment): number | undefined {
  if (timeouts.has(dep)) return timeouts.get(dep);
  const v = dep.annotations?.[TIMEOUT_ANNOTATION];
  let ms: number | undefined;
  if (v !== undefined && v !== "") {
    ms = parseDuration(v);
    if (ms === undefined || ms <= 0) {
      throw new InvalidArgumentError(
        `annotation ${TIMEOUT_ANNOTATION} must be a duration such as 30s or 2m, got "${v}"`,
      );
    }
  }
  timeouts.set(dep, ms);
  return ms;
}
