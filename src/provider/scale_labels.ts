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
