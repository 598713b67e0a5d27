/**
 * The OCI runtime spec of one extra service: the function replica's spec (src/provider/spec.ts:
 * containerd's defaults, the shared hosts and resolv.conf, the CNI network namespace) with the
 * compose settings on top — command and entrypoint, user, environment, added capabilities and
 * bind mounts.
 */

import { InvalidArgumentError } from "../errors.ts";
import { buildSpec, type ImageProcessConfig, resolveUser } from "../provider/spec.ts";
import type { ServiceSpec } from "./compose.ts";

/** What {@link serviceSpec} needs besides the compose service. */
export interface ServiceSpecOptions {
  namespace: string;
  imageConfig: ImageProcessConfig;
  hostsPath: string;
  resolvPath: string;
  etcPasswd?: string;
  etcGroup?: string;
}

/** The process arguments: compose's entrypoint replaces the image's and drops its Cmd. */
export function serviceArgs(svc: ServiceSpec, image: ImageProcessConfig): string[] {
  const entrypoint = svc.entrypoint ?? image.Entrypoint ?? [];
  const cmd = svc.command ?? (svc.entrypoint ? [] : image.Cmd ?? []);
  return [...entrypoint, ...cmd];
}

/** Builds the spec; InvalidArgumentError when there is nothing to run or the user is unknown. */
export function serviceSpec(svc: ServiceSpec, opts: ServiceSpecOptions): Record<string, unknown> {
  const args = serviceArgs(svc, opts.imageConfig);
  if (args.length === 0) {
    throw new InvalidArgumentError(
      `cannot run service "${svc.name}": image "${svc.image}" sets neither Entrypoint nor Cmd and the compose file gives no command`,
    );
  }
  const spec = buildSpec({
    id: svc.name,
    namespace: opts.namespace,
    deployment: { service: svc.name, image: svc.image, envVars: svc.environment },
    imageConfig: { ...opts.imageConfig, Entrypoint: [], Cmd: args },
    netnsPath: "",
    hostsPath: opts.hostsPath,
    resolvPath: opts.resolvPath,
    readOnlyRootFilesystem: false,
    etcPasswd: opts.etcPasswd,
    etcGroup: opts.etcGroup,
  });
  const process = spec.process as Record<string, unknown> & {
    capabilities: Record<string, string[]>;
  };
  if (svc.user !== undefined) {
    try {
      process.user = resolveUser(svc.user, opts.etcPasswd, opts.etcGroup);
    } catch (err) {
      throw new InvalidArgumentError(
        `cannot run service "${svc.name}": ${(err as Error).message.replace("image USER", "user")}`,
        { cause: err },
      );
    }
  }
  if (svc.capAdd.length > 0) {
    for (const set of ["bounding", "effective", "permitted"]) {
      process.capabilities[set] = [...new Set([...process.capabilities[set], ...svc.capAdd])];
    }
  }
  const mounts = spec.mounts as Array<Record<string, unknown>>;
  for (const v of svc.volumes) {
    mounts.push({
      destination: v.target,
      type: "bind",
      source: v.source,
      options: ["rbind", v.readOnly ? "ro" : "rw"],
    });
  }
  return spec;
}
