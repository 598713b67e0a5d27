/**
 * What a service container carries in containerd, and where its pieces live: the labels that
 * `faasd service` reads from a separate process, the CNI ID and the log file.
 */

import { logFile, networkId, type ReplicaRef } from "../provider/replica.ts";

/** The containerd namespace services run in (OpenFaaS's core namespace). */
export const SERVICES_NAMESPACE = "openfaas";

/** Marks a container as an extra service; the value is the service name. */
export const SERVICE_LABEL = "io.faasd-ts.service";
/** The image reference as the compose file gives it. */
export const IMAGE_LABEL = "io.faasd-ts.service.image";
/** How often the supervisor has restarted the service since the appliance started. */
export const RESTARTS_LABEL = "io.faasd-ts.service.restarts";
/** Set by `faasd service restart` before it stops the task: restart now, whatever the policy. */
export const RESTART_REQUEST_LABEL = "io.faasd-ts.service.restart-request";
/** The exit status of a service that exited and is not restarted (policy "no" or "on-failure"). */
export const EXIT_LABEL = "io.faasd-ts.service.exit";

/** Where one service's task pieces live. */
export function serviceRef(logDir: string, namespace: string, name: string): ReplicaRef {
  return {
    namespace,
    id: name,
    networkId: networkId(namespace, name),
    logFile: logFile(logDir, namespace, name, name),
  };
}
