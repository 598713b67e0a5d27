/**
 * A function's autoscaling policy, read from its `com.openfaas.scale.*` labels: whether (and on
 * what) replicas follow the load, the replica bounds, and whether the idle function goes to zero.
 */

import { InvalidArgumentError } from "../errors.ts";
import { parseDuration, scaleBounds } from "../provider/scale_labels.ts";

/** What the load is measured in: requests per second, or requests in flight per replica. */
export type ScaleType = "rps" | "capacity";

/** How the autoscaler treats one function. */
export interface ScalePolicy {
  /** Load-based scaling, present when the function opts in with a scale type or target. */
  load?: { type: ScaleType; target: number };
  /** Replica bounds (`com.openfaas.scale.min`/`.max`, 1 and 20 by default). */
  min: number;
  max: number;
  /** Idle time after which the function goes to zero, present when `scale.zero` is true. */
  zeroAfterMs?: number;
}

/** Targets when only the type is given: 50 requests/s, or 10 in flight, per replica. */
export const DEFAULT_TARGETS: Readonly<Record<ScaleType, number>> = { rps: 50, capacity: 10 };

/** Idle time before scale to zero when `com.openfaas.scale.zero-duration` is not given. */
export const DEFAULT_ZERO_AFTER_MS = 15 * 60_000;

const TYPE = "com.openfaas.scale.type";
const TARGET = "com.openfaas.scale.target";
const FACTOR = "com.openfaas.scale.factor";
const ZERO = "com.openfaas.scale.zero";
const ZERO_DURATION = "com.openfaas.scale.zero-duration";

/**
 * Reads the policy from a function's labels; InvalidArgumentError names the label that is wrong.
 * `com.openfaas.scale.factor=0` turns load-based scaling off, as in OpenFaaS; other factors are
 * accepted and not used (replicas go straight to the count the load needs).
 */
export function scalePolicy(name: string, labels: Record<string, string> = {}): ScalePolicy {
  const { min, max } = scaleBounds({ service: name, image: "", labels });
  const policy: ScalePolicy = { min, max };

  const typeLabel = labels[TYPE];
  const targetLabel = labels[TARGET];
  if (
    typeLabel !== undefined && typeLabel !== "" && typeLabel !== "rps" && typeLabel !== "capacity"
  ) {
    throw new InvalidArgumentError(`label ${TYPE} must be rps or capacity, got "${typeLabel}"`);
  }
  const type: ScaleType = typeLabel === "capacity" ? "capacity" : "rps";
  let target = DEFAULT_TARGETS[type];
  if (targetLabel !== undefined && targetLabel !== "") {
    target = Number(targetLabel);
    if (!Number.isFinite(target) || target <= 0) {
      throw new InvalidArgumentError(
        `label ${TARGET} must be a number above 0, got "${targetLabel}"`,
      );
    }
  }
  const factorLabel = labels[FACTOR];
  const factor = factorLabel === undefined || factorLabel === "" ? undefined : Number(factorLabel);
  if (factor !== undefined && !(factor >= 0 && factor <= 100)) {
    throw new InvalidArgumentError(`label ${FACTOR} must be a number 0-100, got "${factorLabel}"`);
  }
  if ((typeLabel || targetLabel) && factor !== 0) policy.load = { type, target };

  const zero = labels[ZERO];
  if (zero !== undefined && zero !== "") {
    const on = /^(true|1)$/i.test(zero);
    if (!on && !/^(false|0)$/i.test(zero)) {
      throw new InvalidArgumentError(`label ${ZERO} must be true or false, got "${zero}"`);
    }
    if (on) {
      const d = labels[ZERO_DURATION];
      const ms = d === undefined || d === "" ? DEFAULT_ZERO_AFTER_MS : parseDuration(d);
      if (ms === undefined || ms <= 0) {
        throw new InvalidArgumentError(
          `label ${ZERO_DURATION} must be a duration such as 15m or 30s, got "${d}"`,
        );
      }
      policy.zeroAfterMs = ms;
    }
  }
  return policy;
}
