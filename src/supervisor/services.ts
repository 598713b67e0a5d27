/**
 * Composition of the extra services for `faasd up`: read `<data-dir>/docker-compose.yaml` (before
 * anything starts, so a bad file stops `up` at once), then run a Supervisor on the provider's
 * network.
 */

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Conflist, parseSubnet } from "../cni/conflist.ts";
import type { Containerd } from "../containerd/client.ts";
import type { TaskRuntimeOptions } from "../containerd/tasks.ts";
import { InvalidArgumentError, NotFoundError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { providerPaths } from "../provider/provider.ts";
import { parseCompose, type ServiceSpec } from "./compose.ts";
import { SERVICES_NAMESPACE } from "./labels.ts";
import { createServiceCni } from "./network.ts";
import { startOrder } from "./order.ts";
import { type ImageSource, Supervisor } from "./supervisor.ts";

/** The compose file's name in the data dir. */
export const COMPOSE_FILE = "docker-compose.yaml";

const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The services namespace: `openfaas`, or the given override (tests); InvalidArgumentError if malformed. */
export function servicesNamespace(override?: string): string {
  const ns = override || SERVICES_NAMESPACE;
  if (!NAMESPACE.test(ns) || ns.length > 76) {
    throw new InvalidArgumentError(`invalid services namespace "${ns}"`);
  }
  return ns;
}

/**
 * The services of `<dataDir>/docker-compose.yaml` in start order; none when the file is absent.
 * InvalidArgumentError with the line and key for anything unsupported, or for a dependency cycle.
 */
export async function loadServices(dataDir: string): Promise<ServiceSpec[]> {
  const path = join(dataDir, COMPOSE_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  return startOrder(parseCompose(text, { baseDir: dataDir, fileName: COMPOSE_FILE }).services);
}

/** Starts the supervisor (which first removes services of an earlier run); `stop()` it on shutdown. */
export async function startServices(
  deps: {
    containerd: Containerd;
    images: ImageSource;
    /** The functions' conflist (the provider's `cni.conflist`). */
    conflist: Conflist;
    log: Logger;
    /** The OCI runtime the services' tasks run with (default: runc). */
    runtime?: TaskRuntimeOptions;
    /** The appliance's owner ID (the provider's). */
    owner: string;
  },
  opts: {
    dataDir: string;
    subnet: string;
    namespace: string;
    services: ServiceSpec[];
    /** Aborted by SIGTERM: stop starting services (start() then rejects). */
    signal?: AbortSignal;
  },
): Promise<Supervisor | undefined> {
  if (opts.services.length === 0) {
    // No services now; remove those of an earlier run, if that run left any.
    const exists = await deps.containerd.namespaces.get(opts.namespace).then(
      () => true,
      (err) => err instanceof NotFoundError ? false : Promise.reject(err),
    );
    if (!exists) return undefined;
  }
  const paths = providerPaths(opts.dataDir);
  const supervisor = new Supervisor({
    containerd: deps.containerd,
    images: deps.images,
    cni: createServiceCni({ conflist: deps.conflist, cacheDir: paths.cniCache, log: deps.log }),
    prefixLength: parseSubnet(opts.subnet).prefix,
    paths,
    log: deps.log,
    runtime: deps.runtime,
    owner: deps.owner,
  }, { namespace: opts.namespace, services: opts.services });
  await supervisor.start(opts.signal);
  return supervisor;
}
