/**
 * The subset of docker-compose.yaml faasd reads for its extra services: `version`, and per
 * service `image`, `environment`, `command`, `entrypoint`, `user`, `depends_on`, `ports` (TCP,
 * with an optional host IP), bind `volumes` (read-only honoured), `cap_add` and `restart`.
 * Anything else is an InvalidArgumentError naming the file, the line and the key's path, so a
 * setting the supervisor would silently ignore never goes unnoticed.
 */

import {
  isMap,
  isScalar,
  LineCounter,
  type Node,
  parseDocument,
  type Scalar,
  type YAMLMap,
} from "yaml";
import { InvalidArgumentError } from "../errors.ts";
import { normalizeCapability } from "./capabilities.ts";
import {
  commandLine,
  type Ctx,
  dependsOn,
  entries,
  environment,
  list,
  port,
  str,
  volume,
} from "./compose_fields.ts";

/** When a service is restarted after its task exits. */
export type RestartPolicy = "no" | "always" | "on-failure" | "unless-stopped";

/** The default restart policy: an appliance's services stay up (Docker's default is "no"). */
export const DEFAULT_RESTART: RestartPolicy = "always";

/** A TCP port published on the host. */
export interface PortSpec {
  hostIp: string;
  hostPort: number;
  containerPort: number;
}

/** A host directory or file bind-mounted into the service. */
export interface VolumeSpec {
  /** Absolute host path (relative ones are resolved against the data dir). */
  source: string;
  target: string;
  readOnly: boolean;
}

/** One service as the supervisor runs it. */
export interface ServiceSpec {
  name: string;
  image: string;
  environment: Record<string, string>;
  /** Replaces the image's Cmd. */
  command?: string[];
  /** Replaces the image's Entrypoint (and drops its Cmd unless `command` is given). */
  entrypoint?: string[];
  user?: string;
  dependsOn: string[];
  ports: PortSpec[];
  volumes: VolumeSpec[];
  capAdd: string[];
  restart: RestartPolicy;
}

/** A parsed compose file: its services in file order. */
export interface ComposeFile {
  services: ServiceSpec[];
}

/** Options of {@link parseCompose}. */
export interface ParseOptions {
  /** Relative bind sources are resolved against this directory (the data dir). */
  baseDir: string;
  /** The name used in error messages. */
  fileName?: string;
}

const SERVICE_KEYS = [
  "image",
  "environment",
  "command",
  "entrypoint",
  "user",
  "depends_on",
  "ports",
  "volumes",
  "cap_add",
  "restart",
];
const SERVICE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const POLICIES: RestartPolicy[] = ["no", "always", "on-failure", "unless-stopped"];

/** Parses compose text; InvalidArgumentError with the line and key path on anything unsupported. */
export function parseCompose(text: string, opts: ParseOptions): ComposeFile {
  const file = opts.fileName ?? "docker-compose.yaml";
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const fail = (node: Node | null | undefined, path: string, msg: string): never => {
    const offset = node?.range?.[0];
    const line = offset === undefined ? "" : ` line ${lines.linePos(offset).line}`;
    throw new InvalidArgumentError(`${file}${line}: ${path ? `${path}: ` : ""}${msg}`);
  };
  const [err] = doc.errors;
  if (err) {
    throw new InvalidArgumentError(
      `${file} line ${lines.linePos(err.pos[0]).line}: invalid YAML: ${err.message.split("\n")[0]}`,
    );
  }
  const ctx: Ctx = { fail, baseDir: opts.baseDir };
  const root = doc.contents;
  if (root === null || (isScalar(root) && root.value === null)) return { services: [] };
  if (!isMap(root)) return fail(root, "", "the top level must be a mapping");
  const services: ServiceSpec[] = [];
  let servicesNode: YAMLMap | undefined;
  for (const [key, keyNode, value] of entries(ctx, root, "")) {
    if (key === "version") {
      if (!isScalar(value) || typeof value.value === "object") {
        fail(value, "version", "must be a string");
      }
    } else if (key === "services") {
      if (isScalar(value) && value.value === null) continue;
      if (!isMap(value)) return fail(value, "services", "must be a mapping of service names");
      servicesNode = value;
      for (const [name, nameNode, body] of entries(ctx, value, "services")) {
        if (!SERVICE_NAME.test(name)) {
          fail(
            nameNode,
            `services.${name}`,
            `invalid service name: use letters, digits, "_", "." or "-", starting with a letter or digit`,
          );
        }
        services.push(parseService(ctx, name, body));
      }
    } else {
      fail(keyNode, key, `unsupported key (supported: version, services)`);
    }
  }
  // Dependencies must name services of this file.
  const names = new Set(services.map((s) => s.name));
  for (const s of services) {
    for (const dep of s.dependsOn) {
      if (!names.has(dep)) {
        const node = servicesNode?.get(s.name, true) as YAMLMap | undefined;
        fail(
          node?.get("depends_on", true) as Node,
          `services.${s.name}.depends_on`,
          `unknown service "${dep}"`,
        );
      }
    }
  }
  return { services };
}

function parseService(ctx: Ctx, name: string, body: unknown): ServiceSpec {
  const path = `services.${name}`;
  if (!isMap(body)) return ctx.fail(body as Node, path, "must be a mapping");
  const svc: ServiceSpec = {
    name,
    image: "",
    environment: {},
    dependsOn: [],
    ports: [],
    volumes: [],
    capAdd: [],
    restart: DEFAULT_RESTART,
  };
  for (const [key, keyNode, value] of entries(ctx, body, path)) {
    const p = `${path}.${key}`;
    switch (key) {
      case "image":
        svc.image = str(ctx, value, p);
        if (svc.image === "") ctx.fail(value, p, "must not be empty");
        break;
      case "environment":
        svc.environment = environment(ctx, value, p);
        break;
      case "command":
        svc.command = commandLine(ctx, value, p);
        break;
      case "entrypoint":
        svc.entrypoint = commandLine(ctx, value, p);
        break;
      case "user":
        svc.user = str(ctx, value, p, { numbers: true });
        if (!/^[A-Za-z0-9_.-]+(:[A-Za-z0-9_.-]+)?$/.test(svc.user)) {
          ctx.fail(value, p, `invalid user "${svc.user}": use NAME, UID, NAME:GROUP or UID:GID`);
        }
        break;
      case "depends_on":
        svc.dependsOn = dependsOn(ctx, value, p);
        break;
      case "ports":
        svc.ports = list(ctx, value, p).map((n, i) => port(ctx, n, `${p}[${i}]`));
        break;
      case "volumes":
        svc.volumes = list(ctx, value, p).map((n, i) => volume(ctx, n, `${p}[${i}]`));
        break;
      case "cap_add":
        svc.capAdd = list(ctx, value, p).map((n, i) => {
          const cap = normalizeCapability(str(ctx, n, `${p}[${i}]`));
          return cap ?? ctx.fail(n, `${p}[${i}]`, `unknown capability "${(n as Scalar).value}"`);
        });
        break;
      case "restart": {
        // YAML 1.1 readers take a bare `no` for false; accept both spellings.
        const v = isScalar(value) && value.value === false ? "no" : str(ctx, value, p);
        if (!POLICIES.includes(v as RestartPolicy)) {
          ctx.fail(value, p, `unsupported value "${v}" (use ${POLICIES.join(", ")})`);
        }
        svc.restart = v as RestartPolicy;
        break;
      }
      default:
        ctx.fail(keyNode, p, `unsupported key (supported: ${SERVICE_KEYS.join(", ")})`);
    }
  }
  if (svc.image === "") ctx.fail(body, path, `missing key "image"`);
  const seen = new Map<string, PortSpec>();
  for (const pt of svc.ports) {
    const key = `${pt.hostIp}:${pt.hostPort}`;
    if (seen.has(key)) {
      ctx.fail(
        body.get("ports", true) as Node,
        `${path}.ports`,
        `host port ${key} is published twice`,
      );
    }
    seen.set(key, pt);
  }
  return svc;
}
