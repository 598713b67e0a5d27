/**
 * OCI platforms (`linux/arm/v7`): the host's own, parsing and printing, and picking the manifest
 * for a platform out of an image index, as containerd's platforms package does in the common cases.
 */

import process from "node:process";
import { InvalidArgumentError, NotFoundError } from "../errors.ts";

/** An OCI platform as it appears in an image index. */
export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

// Node's process.arch (and common uname/Debian spellings) → GOARCH, as containerd normalises.
const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  x64: { architecture: "amd64" },
  x86_64: { architecture: "amd64" },
  ia32: { architecture: "386" },
  i386: { architecture: "386" },
  aarch64: { architecture: "arm64" },
  armhf: { architecture: "arm", variant: "v7" },
  armel: { architecture: "arm", variant: "v6" },
};

/** The platform of this machine, as images name it (`linux/amd64`, `linux/arm64/v8`, `linux/arm/v7`). */
export function hostPlatform(arch: string = process.arch): Platform {
  if (arch === "arm64") return { os: "linux", architecture: "arm64", variant: "v8" };
  if (arch === "arm") return { os: "linux", architecture: "arm", variant: `v${armVersion()}` };
  const alias = ARCH_ALIASES[arch];
  return alias ? { os: "linux", ...alias } : { os: "linux", architecture: arch };
}

/** Parses `os/architecture[/variant]`; throws InvalidArgumentError for anything else. */
export function parsePlatform(s: string): Platform {
  const parts = s.split("/");
  if (
    parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p))
  ) {
    throw new InvalidArgumentError(
      `invalid platform "${s}": expected os/architecture[/variant], e.g. "linux/arm/v7"`,
    );
  }
  const [os, arch, variant] = parts.map((p) => p.toLowerCase());
  const alias = ARCH_ALIASES[arch];
  const p: Platform = { os, architecture: alias?.architecture ?? arch };
  const v = variant ?? alias?.variant;
  if (v !== undefined) p.variant = v;
  return p;
}

/** Prints a platform as `os/architecture[/variant]`. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x).join("/");
}

/**
 * Whether an image built for `candidate` is what `want` asks for: same os and architecture, and
 * the same variant once arm64's missing variant is read as v8 and arm's as v7.
 */
export function platformMatches(want: Platform, candidate: Platform): boolean {
  const a = normalize(want);
  const b = normalize(candidate);
  return a.os === b.os && a.architecture === b.architecture && a.variant === b.variant;
}

/**
 * Picks the first manifest for `want`; on 32-bit ARM, when no exact variant exists, an older one
 * the CPU also runs (v7 runs v6 and v5, as containerd's platforms.Only allows). Throws NotFoundError listing the
 * platforms the image has.
 */
export function selectManifest<T extends { platform?: Platform }>(
  want: Platform,
  manifests: readonly T[],
): T {
  for (const p of compatible(want)) {
    const found = manifests.find((m) => m.platform && platformMatches(p, m.platform));
    if (found) return found;
  }
  const has = [
    ...new Set(
      manifests
        .filter((m) => m.platform && !isAttestation(m.platform))
        .map((m) => formatPlatform(m.platform!)),
    ),
  ];
  throw new NotFoundError(
    `image has no ${formatPlatform(want)} variant; ${
      has.length ? `it has ${has.join(", ")}` : "it names no platforms"
    }`,
  );
}

function normalize(p: Platform): Required<Platform> {
  const os = p.os.toLowerCase();
  const alias = ARCH_ALIASES[p.architecture.toLowerCase()];
  const architecture = alias?.architecture ?? p.architecture.toLowerCase();
  let variant = (p.variant || alias?.variant || "").toLowerCase();
  if (architecture === "arm64" && variant === "") variant = "v8";
  if (architecture === "arm" && variant === "") variant = "v7";
  return { os, architecture, variant };
}

// The platforms `want` can run, best first.
function compatible(want: Platform): Platform[] {
  const n = normalize(want);
  const older = n.architecture === "arm" ? ["v8", "v7", "v6", "v5"] : [];
  const from = older.indexOf(n.variant);
  if (from < 0) return [want];
  return older.slice(from).map((variant) => ({ ...n, variant }));
}

// BuildKit stores provenance and SBOM attestations in the index as unknown/unknown.
function isAttestation(p: Platform): boolean {
  return p.os === "unknown" && p.architecture === "unknown";
}

function armVersion(): string {
  const variables = (process.config as { variables?: Record<string, unknown> } | undefined)
    ?.variables;
  const v = variables?.arm_version;
  return (typeof v === "string" || typeof v === "number") && /^[5-8]$/.test(String(v))
    ? String(v)
    : "7";
}
