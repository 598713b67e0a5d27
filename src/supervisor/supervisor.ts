/**
 * The supervisor of the extra services from docker-compose.yaml. Each service is a container in
 * its own containerd namespace (`openfaas`), started in dependency order on the functions' CNI
 * network, named in the hosts file replicas mount, its ports published by in-process forwarders.
 * A task that exits is restarted per its policy with exponential backoff (src/supervisor/backoff.ts)
 * on the same container, so its writable layer survives; `faasd service restart` asks for an
 * immediate restart through a container label. On start, service containers left by an earlier
 * run are stopped and removed, then created afresh from the compose file (replace, not adopt:
 * the file or the image may have changed, and the provider's network clean-up has already
 * detached them). On stop, services go down in reverse order and their containers and snapshots
 * are removed; pulled images stay.
 */

import { mkdir, readFile, stat } from "node:fs/promises";
import type { Containerd } from "../containerd/client.ts";
import type { TaskRuntimeOptions } from "../containerd/tasks.ts";
import {
  CancelledError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
} from "../errors.ts";
import { OWNER_LABEL } from "../provider/discover.ts";
import type { Logger } from "../log.ts";
import { userDatabase } from "../provider/image_files.ts";
import type { PullPolicy } from "../images/service.ts";
import {
  createReplicaContainer,
  removeReplicaContainer,
  type ReplicaDeps,
  type ReplicaRef,
  startReplicaTask,
  stopReplicaTask,
} from "../provider/replica.ts";
import type { ImageProcessConfig } from "../provider/spec.ts";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import type { ServiceSpec } from "./compose.ts";
import { type Forwarder, forwardPort } from "./forwarder.ts";
import { renderHosts, writeHostsInPlace } from "./hosts.ts";
import {
  EXIT_LABEL,
  IMAGE_LABEL,
  RESTART_REQUEST_LABEL,
  RESTARTS_LABEL,
  SERVICE_LABEL,
  serviceRef,
} from "./labels.ts";
import { serviceNetwork } from "./network.ts";
import type { Cni } from "../cni/plugins.ts";
import { startOrder } from "./order.ts";
import { serviceSpec } from "./spec.ts";

/** Pulls (when missing) and describes an image; the image service fits. */
export interface ImageSource {
  ensure(
    ref: string,
    opts: { namespace: string; policy: PullPolicy; signal?: AbortSignal },
  ): Promise<{ name: string; chainId: string; runConfig: Record<string, unknown> }>;
}

/** What the supervisor needs. */
export interface SupervisorDeps {
  containerd: Pick<
    Containerd,
    "namespaces" | "containers" | "tasks" | "snapshots" | "leases"
  >;
  images: ImageSource;
  cni: Pick<Cni, "add" | "del">;
  /** The subnet's prefix length, to ask host-local for a service's previous address. */
  prefixLength: number;
  paths: { logDir: string; hostsFile: string; resolvFile: string };
  log: Logger;
  backoff?: Omit<BackoffOptions, "now">;
  /** This appliance's ID (the provider's): services carry it, and only its own are removed. */
  owner: string;
  /** The OCI runtime for the services' tasks (default: the shim's, runc). */
  runtime?: TaskRuntimeOptions;
  /** How long a service has to exit after SIGTERM before SIGKILL (default 10 s). */
  stopGraceMs?: number;
  /** How often an exited service's container is checked for a restart request (default 2 s). */
  requestPollMs?: number;
}

type State = "starting" | "running" | "restarting" | "exited" | "stopping";

interface Svc {
  spec: ServiceSpec;
  ref: ReplicaRef;
  deps: ReplicaDeps;
  state: State;
  created: boolean;
  pid?: number;
  ip?: string;
  restarts: number;
  startedAt: number;
  backoff: Backoff;
  timer?: ReturnType<typeof setTimeout>;
  /** The restart-request label's value when the task started; a new value means "restart now". */
  requestSeen: string;
  /** A start in progress, which stop() waits for so it cannot leave a task behind. */
  launching?: Promise<void>;
}

/** Runs the extra services of one compose file. */
export class Supervisor {
  readonly #deps: SupervisorDeps;
  readonly #namespace: string;
  readonly #log: Logger;
  readonly #order: ServiceSpec[];
  readonly #svcs = new Map<string, Svc>();
  readonly #forwarders: Forwarder[] = [];
  #hostsBase = "";
  #hostsWrite: Promise<void> = Promise.resolve();
  #stopping = false;
  #signal?: AbortSignal;

  constructor(deps: SupervisorDeps, opts: { namespace: string; services: ServiceSpec[] }) {
    this.#deps = deps;
    this.#namespace = opts.namespace;
    this.#log = deps.log.child({ component: "supervisor" });
    this.#order = startOrder(opts.services);
  }

  /**
   * Removes services of an earlier run, publishes every port, then starts the services in
   * dependency order. A configuration error (a taken port, an image with nothing to run, an
   * unknown user) rejects after everything started so far is stopped; other failures (a pull
   * while the network is down) are retried with backoff. An abort of `signal` (SIGTERM while
   * images are pulled) stops what started and rejects with a CancelledError.
   */
  async start(signal?: AbortSignal): Promise<void> {
    this.#signal = signal;
    try {
      await this.#deps.containerd.namespaces.ensure(this.#namespace);
      const foreign = await this.#removeLeftovers();
      const taken = this.#order.filter((s) => foreign.has(s.name));
      if (taken.length > 0) {
        const [first] = taken;
        throw new FailedPreconditionError(
          `service "${first.name}": namespace "${this.#namespace}" already holds a service ` +
            `container of that name owned by another appliance (owner ${
              foreign.get(first.name)
            }); give this appliance a namespace of its own with FAASD_SERVICES_NAMESPACE`,
        );
      }
      this.#hostsBase = await readFile(this.#deps.paths.hostsFile, "utf8").catch(() => "");
      for (const spec of this.#order) {
        for (const port of spec.ports) {
          this.#forwarders.push(
            await forwardPort({ log: this.#log }, spec.name, port, () => this.#ipOf(spec.name)),
          );
        }
      }
      for (const spec of this.#order) {
        if (signal?.aborted) {
          throw new CancelledError("stopped by a signal while starting the extra services");
        }
        const svc = this.#newSvc(spec);
        this.#svcs.set(spec.name, svc);
        try {
          await this.#start(svc);
        } catch (err) {
          if (err instanceof InvalidArgumentError || signal?.aborted) throw err;
          this.#log.error("service failed to start", { service: spec.name, err: String(err) });
          this.#schedule(svc, svc.backoff.next(Date.now()));
        }
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops every service (dependents first) and removes its container; images stay. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const svc of this.#svcs.values()) clearTimeout(svc.timer);
    await Promise.all(this.#forwarders.splice(0).map((f) => f.close()));
    for (const spec of [...this.#order].reverse()) {
      const svc = this.#svcs.get(spec.name);
      if (!svc) continue;
      svc.state = "stopping";
      try {
        await svc.launching?.catch(() => {});
        await stopReplicaTask(svc.deps, svc.ref, this.#deps.stopGraceMs ?? 10_000);
        await removeReplicaContainer(svc.deps, svc.ref);
        this.#log.info("service stopped", { service: spec.name });
      } catch (err) {
        this.#log.error("cannot stop a service", { service: spec.name, err: String(err) });
      }
      svc.ip = undefined;
    }
    await this.#updateHosts();
  }

  #newSvc(spec: ServiceSpec): Svc {
    const ref = serviceRef(this.#deps.paths.logDir, this.#namespace, spec.name);
    const svc: Svc = {
      spec,
      ref,
      deps: undefined as unknown as ReplicaDeps,
      state: "starting",
      created: false,
      restarts: 0,
      startedAt: 0,
      backoff: new Backoff(this.#deps.backoff),
      requestSeen: "",
    };
    svc.deps = this.#replicaDeps();
    return svc;
  }

  #replicaDeps(): ReplicaDeps {
    const c = this.#deps.containerd;
    return {
      containers: c.containers,
      snapshots: c.snapshots,
      tasks: c.tasks,
      network: serviceNetwork(this.#deps.cni, this.#deps.prefixLength, this.#log),
      runtime: this.#deps.runtime,
      log: this.#log,
    };
  }

  #ipOf(name: string): string | undefined {
    const svc = this.#svcs.get(name);
    return svc?.state === "running" ? svc.ip : undefined;
  }

  // Containers a previous run left (a crash, a SIGKILL): stopped and removed, whatever their
  // name, so a service dropped from the file does not linger. Those another appliance owns (on
  // the same containerd and namespace) are left alone and returned, name → owner.
  async #removeLeftovers(): Promise<Map<string, string>> {
    const ns = this.#namespace;
    const found = await this.#deps.containerd.containers.list(ns, [`labels."${SERVICE_LABEL}"`]);
    const foreign = new Map<string, string>();
    for (const c of found) {
      const owner = c.labels[OWNER_LABEL];
      // Containers without the label come from versions before it: this appliance's.
      if (owner && owner !== this.#deps.owner) {
        foreign.set(c.id, owner);
        continue;
      }
      const ref = serviceRef(this.#deps.paths.logDir, ns, c.id);
      const deps = this.#replicaDeps();
      await stopReplicaTask(deps, ref, this.#deps.stopGraceMs ?? 10_000);
      await removeReplicaContainer(deps, ref);
      this.#log.info("removed a service container of an earlier run", { service: c.id });
    }
    return foreign;
  }

  #start(svc: Svc): Promise<void> {
    svc.launching = this.#launch(svc);
    return svc.launching;
  }

  // Creates the container when there is none, then starts its task.
  async #launch(svc: Svc): Promise<void> {
    const { spec, ref } = svc;
    svc.state = "starting";
    let mounts;
    if (!svc.created) {
      const image = await this.#image(spec);
      for (const v of spec.volumes) {
        // Docker creates a missing bind source as a directory; so do we.
        if (!(await stat(v.source).then(() => true, () => false))) {
          await mkdir(v.source, { recursive: true });
        }
      }
      const ociSpec = serviceSpec(spec, {
        namespace: ref.namespace,
        imageConfig: image.config,
        hostsPath: this.#deps.paths.hostsFile,
        resolvPath: this.#deps.paths.resolvFile,
        etcPasswd: image.etcPasswd,
        etcGroup: image.etcGroup,
      });
      mounts = await createReplicaContainer(svc.deps, ref, {
        image: image.name,
        parentSnapshot: image.chainId,
        spec: ociSpec,
        labels: {
          [SERVICE_LABEL]: spec.name,
          [OWNER_LABEL]: this.#deps.owner,
          [IMAGE_LABEL]: spec.image,
          [RESTARTS_LABEL]: String(svc.restarts),
        },
      });
      svc.created = true;
    } else {
      const labels = (await this.#deps.containerd.containers.get(ref.namespace, ref.id)).labels;
      svc.requestSeen = labels[RESTART_REQUEST_LABEL] ?? "";
      await this.#deps.containerd.containers.setLabels(ref.namespace, ref.id, {
        [RESTARTS_LABEL]: String(svc.restarts),
        [EXIT_LABEL]: "",
      });
    }
    const started = await startReplicaTask(svc.deps, ref, { mounts });
    Object.assign(svc, {
      state: "running",
      pid: started.pid,
      ip: started.ip,
      startedAt: Date.now(),
    });
    this.#log.info("service started", {
      service: spec.name,
      pid: started.pid,
      ip: started.ip,
      restarts: svc.restarts,
    });
    await this.#updateHosts();
    void this.#watch(svc, started.pid, started.exited);
  }

  async #image(spec: ServiceSpec) {
    const ns = this.#namespace;
    const img = await this.#deps.images.ensure(spec.image, {
      namespace: ns,
      policy: "IfNotPresent",
      signal: this.#signal,
    });
    const config = img.runConfig as ImageProcessConfig;
    const user = spec.user ?? config.User ?? "";
    return {
      name: img.name,
      chainId: img.chainId,
      config,
      ...await userDatabase(this.#deps.containerd, ns, img.chainId, user),
    };
  }

  // Waits for the task to exit. A broken wait (containerd restarted) is re-checked every second
  // until containerd answers for the task again.
  async #watch(svc: Svc, pid: number, exited: Promise<{ exitStatus: number }>): Promise<void> {
    const { namespace, id } = svc.ref;
    for (;;) {
      try {
        const r = await exited;
        return await this.#onExit(svc, pid, r.exitStatus);
      } catch (err) {
        if (this.#stopping || svc.pid !== pid) return;
        this.#log.warn("lost the wait on a service task, re-checking", {
          service: id,
          err: String(err),
        });
        await new Promise((r) => setTimeout(r, 1000));
        try {
          const task = await this.#deps.containerd.tasks.get(namespace, id);
          if (task.pid !== pid) return await this.#onExit(svc, pid, 255);
          if (task.status === "STOPPED") return await this.#onExit(svc, pid, task.exitStatus);
          exited = this.#deps.containerd.tasks.wait(namespace, id);
        } catch (e) {
          if (e instanceof NotFoundError) return await this.#onExit(svc, pid, 255);
        }
      }
    }
  }

  async #onExit(svc: Svc, pid: number, exitStatus: number): Promise<void> {
    if (this.#stopping || svc.pid !== pid || svc.state !== "running") return;
    const { spec, ref } = svc;
    svc.state = "restarting";
    const requested = await this.#restartRequested(svc);
    // Release the task and its address now; the container and its snapshot stay for the restart.
    await stopReplicaTask(svc.deps, ref, 0).catch((err) =>
      this.#log.warn("cannot clean up an exited service task", { service: spec.name, err })
    );
    if (this.#stopping) return;
    const policy = spec.restart;
    const restart = requested || policy === "always" || policy === "unless-stopped" ||
      (policy === "on-failure" && exitStatus !== 0);
    if (!restart) {
      svc.state = "exited";
      svc.ip = undefined;
      await this.#updateHosts();
      await this.#deps.containerd.containers.setLabels(ref.namespace, ref.id, {
        [EXIT_LABEL]: String(exitStatus),
      }).catch(() => {});
      this.#log.warn("service exited", { service: spec.name, exitStatus, policy });
      this.#pollRequests(svc);
      return;
    }
    if (requested) svc.backoff.reset();
    const delay = requested ? 0 : svc.backoff.next(svc.startedAt);
    this.#log.warn("service exited, restarting", {
      service: spec.name,
      exitStatus,
      requested,
      restartInMs: delay,
    });
    this.#schedule(svc, delay);
  }

  #schedule(svc: Svc, delay: number): void {
    svc.state = "restarting";
    svc.timer = setTimeout(async () => {
      if (this.#stopping) return;
      svc.restarts++;
      try {
        await this.#start(svc);
      } catch (err) {
        if (this.#stopping) return;
        this.#log.error("service restart failed", { service: svc.spec.name, err: String(err) });
        this.#schedule(svc, svc.backoff.next(Date.now()));
      }
    }, delay);
  }

  async #restartRequested(svc: Svc): Promise<boolean> {
    const labels = await this.#deps.containerd.containers.get(svc.ref.namespace, svc.ref.id)
      .then((c) => c.labels, () => ({} as Record<string, string>));
    return (labels[RESTART_REQUEST_LABEL] ?? "") !== svc.requestSeen;
  }

  // An exited service that is not restarted by policy still answers `faasd service restart`.
  #pollRequests(svc: Svc): void {
    svc.timer = setTimeout(async () => {
      if (this.#stopping || svc.state !== "exited") return;
      if (await this.#restartRequested(svc)) {
        svc.backoff.reset();
        this.#schedule(svc, 0);
      } else {
        this.#pollRequests(svc);
      }
    }, this.#deps.requestPollMs ?? 2000);
  }

  // Writes are chained so two services starting at once cannot interleave their rewrites.
  #updateHosts(): Promise<void> {
    const entries = new Map<string, string>();
    for (const svc of this.#svcs.values()) if (svc.ip) entries.set(svc.spec.name, svc.ip);
    const text = renderHosts(this.#hostsBase, entries);
    this.#hostsWrite = this.#hostsWrite.then(() =>
      writeHostsInPlace(this.#deps.paths.hostsFile, text)
    )
      .catch((err) => this.#log.error("cannot update the hosts file", { err: String(err) }));
    return this.#hostsWrite;
  }
}
