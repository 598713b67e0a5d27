/**
 * Kubernetes resource quantities (`128Mi`, `1Gi`, `5e6`, `100m`, `0.5`) as OpenFaaS sends them in
 * `limits` and `requests`, and the OCI cgroup settings they become. Arithmetic is exact (BigInt),
 * so `0.3` cpu is 300 millicores, not 301; fractions round up as Kubernetes' `Value()` does.
 */

import { InvalidArgumentError } from "../errors.ts";

/** OCI `linux.resources.cpu`: CFS bandwidth and relative weight. */
export interface LinuxCpu {
  /** Microseconds of CPU time the cgroup may use per period. */
  quota?: number;
  /** The CFS period in microseconds. */
  period?: number;
  /** Relative weight (cgroup v1 `cpu.shares`; runc converts it for v2). */
  shares?: number;
}

/** The CFS period used for every function (100 ms, the kernel's default). */
export const CFS_PERIOD_US = 100_000;

/** The smallest CFS quota the kernel accepts (1 ms); a lower limit fails with EINVAL in runc. */
export const CFS_MIN_QUOTA_US = 1_000;

// The same bounds as Kubernetes' MilliCPUToShares (pkg/kubelet/cm).
const MIN_SHARES = 2;
const MAX_SHARES = 262_144;

// <sign><digits>[.<digits>]<suffix>, the grammar of k8s.io/apimachinery resource.ParseQuantity.
const QUANTITY_RE = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(.*)$/;
const EXPONENT_RE = /^[eE]([+-]?\d+)$/;
const MAX_EXPONENT = 64;

const BINARY: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  "": 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};

/** Parses a memory quantity into bytes (rounded up); `field` names it in errors, e.g. `limits.memory`. */
export function parseMemory(value: string, field = "memory"): number {
  return parseScaled(value, field, 1n);
}

/** Parses a cpu quantity into millicores (rounded up); `field` names it in errors, e.g. `limits.cpu`. */
export function parseCpu(value: string, field = "cpu"): number {
  return parseScaled(value, field, 1000n);
}

/** OCI cpu settings for a limit and a request in millicores: CFS quota/period from the limit, shares from the request. */
export function cpuResources(limitMillis?: number, requestMillis?: number): LinuxCpu | undefined {
  const cpu: LinuxCpu = {};
  if (limitMillis !== undefined) {
    cpu.quota = limitMillis * (CFS_PERIOD_US / 1000);
    cpu.period = CFS_PERIOD_US;
  }
  if (requestMillis !== undefined) {
    const shares = Math.floor((requestMillis * 1024) / 1000);
    cpu.shares = Math.min(MAX_SHARES, Math.max(MIN_SHARES, shares));
  }
  return Object.keys(cpu).length > 0 ? cpu : undefined;
}

function parseScaled(value: string, field: string, scale: bigint): number {
  const fail = (why = "is not a valid quantity"): never => {
    throw new InvalidArgumentError(`${field} "${value}" ${why}`);
  };
  if (typeof value !== "string") fail();
  const m = QUANTITY_RE.exec(value);
  if (!m) return fail();
  const [, sign, number, suffix] = m;
  const [whole, fraction = ""] = number.split(".");
  const digits = BigInt((whole || "0") + fraction);
  if (sign === "-" && digits !== 0n) fail("must not be negative");

  // value = digits × 2^binary × 10^decimal, with decimal folding in the fraction's length.
  let binary = 0;
  let decimal = -fraction.length;
  if (suffix in BINARY) binary = BINARY[suffix];
  else if (suffix in DECIMAL) decimal += DECIMAL[suffix];
  else {
    const e = EXPONENT_RE.exec(suffix);
    if (!e) return fail();
    const exponent = Number(e[1]);
    if (Math.abs(exponent) > MAX_EXPONENT) fail("is out of range");
    decimal += exponent;
  }

  let numerator = digits * scale * (1n << BigInt(binary));
  let denominator = 1n;
  if (decimal >= 0) numerator *= 10n ** BigInt(decimal);
  else denominator = 10n ** BigInt(-decimal);
  const result = (numerator + denominator - 1n) / denominator;
  if (result > BigInt(Number.MAX_SAFE_INTEGER)) fail("is out of range");
  return Number(result);
}
