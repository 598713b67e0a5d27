/**
 * The subset of docker-compose.yaml faasd reads for its extra services: `version`, and per
 * service `image`, `environment`, `command`, `entrypoint`, `user`, `depends_on`, `ports` (TCP,
 * with an optional host IP), bind `volumes` (read-only honoured), `cap_add` and `restart`.
 * Anything else is an InvalidArgumentError naming the file, the line and the key's path, so a
 * setting the supervisor would silently ignore never goes unnoticed.
 */

import { isAbsolute, resolve } from "node:path";
import {
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type Scalar,
  type YAMLMap,
} from "yaml";
import { InvalidArgumentError } from "../errors.ts";
import { normalizeCapability } from "./capabilities.ts";

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
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
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

interface Ctx {
  fail(node: Node | null | undefined, path: string, msg: string): never;
  baseDir: string;
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

// The key-value pairs of a mapping as [key, key node, value node]; keys must be strings.
function entries(ctx: Ctx, map: YAMLMap, path: string): Array<[string, Node, Node]> {
  return map.items.map((pair) => {
    if (!isPair(pair) || !isScalar(pair.key) || typeof pair.key.value !== "string") {
      return ctx.fail(pair.key as Node, path, "keys must be strings");
    }
    return [pair.key.value, pair.key as Node, pair.value as Node];
  });
}

function str(ctx: Ctx, node: unknown, path: string, o: { numbers?: boolean } = {}): string {
  if (isScalar(node)) {
    if (typeof node.value === "string") return node.value;
    if (o.numbers && typeof node.value === "number") return String(node.value);
  }
  return ctx.fail(
    node as Node,
    path,
    o.numbers ? "must be a string or number" : "must be a string",
  );
}

function list(ctx: Ctx, node: unknown, path: string): Node[] {
  if (!isSeq(node)) return ctx.fail(node as Node, path, "must be a list");
  return node.items as Node[];
}

function environment(ctx: Ctx, node: unknown, path: string): Record<string, string> {
  const env: Record<string, string> = {};
  const set = (name: string, value: string, at: Node) => {
    if (!ENV_NAME.test(name)) ctx.fail(at, `${path}.${name}`, "invalid variable name");
    env[name] = value;
  };
  if (isMap(node)) {
    for (const [name, keyNode, value] of entries(ctx, node, path)) {
      if (isScalar(value) && value.value === null) set(name, "", keyNode);
      else if (isScalar(value) && ["string", "number", "boolean"].includes(typeof value.value)) {
        set(name, String(value.value), keyNode);
      } else ctx.fail(value, `${path}.${name}`, "must be a string, number or boolean");
    }
    return env;
  }
  if (isSeq(node)) {
    node.items.forEach((item, i) => {
      const entry = str(ctx, item, `${path}[${i}]`);
      const eq = entry.indexOf("=");
      if (eq <= 0) {
        ctx.fail(
          item as Node,
          `${path}[${i}]`,
          `"${entry}" needs a value: write NAME=VALUE (values are not taken from faasd's environment)`,
        );
      }
      set(entry.slice(0, eq), entry.slice(eq + 1), item as Node);
    });
    return env;
  }
  return ctx.fail(node as Node, path, "must be a mapping or a list of NAME=VALUE");
}

function commandLine(ctx: Ctx, node: unknown, path: string): string[] {
  if (isSeq(node)) return node.items.map((n, i) => str(ctx, n, `${path}[${i}]`, { numbers: true }));
  const s = str(ctx, node, path);
  try {
    return splitWords(s);
  } catch (err) {
    return ctx.fail(node as Node, path, (err as Error).message);
  }
}

/** Splits a command string into words the way a POSIX shell would, quotes and backslashes included. */
export function splitWords(s: string): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new Error("unterminated single quote");
      cur += s.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < s.length && s[j] !== '"'; j++) {
        if (s[j] === "\\" && j + 1 < s.length && '"\\$`'.includes(s[j + 1])) j++;
        cur += s[j];
      }
      if (j >= s.length) throw new Error("unterminated double quote");
      i = j;
      inWord = true;
    } else if (c === "\\" && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) words.push(cur);
  return words;
}

function dependsOn(ctx: Ctx, node: unknown, path: string): string[] {
  if (isSeq(node)) return node.items.map((n, i) => str(ctx, n, `${path}[${i}]`));
  if (isMap(node)) {
    return entries(ctx, node, path).map(([name, _k, value]) => {
      if (isScalar(value) && value.value === null) return name;
      if (!isMap(value)) return ctx.fail(value, `${path}.${name}`, "must be a mapping");
      for (const [key, keyNode, v] of entries(ctx, value, `${path}.${name}`)) {
        if (key !== "condition") {
          ctx.fail(keyNode, `${path}.${name}.${key}`, "unsupported key (supported: condition)");
        }
        const cond = str(ctx, v, `${path}.${name}.condition`);
        if (cond !== "service_started") {
          ctx.fail(
            v,
            `${path}.${name}.condition`,
            `unsupported value "${cond}" (only service_started: dependencies are started first, not health-checked)`,
          );
        }
      }
      return name;
    });
  }
  return ctx.fail(node as Node, path, "must be a list or a mapping of service names");
}

function port(ctx: Ctx, node: Node, path: string): PortSpec {
  const s = str(ctx, node, path, { numbers: true });
  const m = s.match(/^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d+):(\d+)(?:\/(tcp|udp|sctp))?$/);
  if (!m) {
    return ctx.fail(
      node,
      path,
      `unsupported port "${s}" (use [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp], e.g. "127.0.0.1:3000:3000")`,
    );
  }
  const [, hostIp = "0.0.0.0", host, container, proto = "tcp"] = m;
  if (proto !== "tcp") {
    ctx.fail(node, path, `unsupported protocol "${proto}" (only tcp is published)`);
  }
  if (hostIp.split(".").some((o) => Number(o) > 255)) {
    ctx.fail(node, path, `invalid host IP "${hostIp}"`);
  }
  const num = (v: string, what: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      ctx.fail(node, path, `invalid ${what} port "${v}" (1-65535)`);
    }
    return n;
  };
  return { hostIp, hostPort: num(host, "host"), containerPort: num(container, "container") };
}

function volume(ctx: Ctx, node: Node, path: string): VolumeSpec {
  let source: string, target: string, readOnly = false;
  if (isMap(node)) {
    const o: Record<string, Node> = {};
    for (const [key, keyNode, value] of entries(ctx, node, path)) {
      if (!["type", "source", "target", "read_only"].includes(key)) {
        ctx.fail(
          keyNode,
          `${path}.${key}`,
          "unsupported key (supported: type, source, target, read_only)",
        );
      }
      o[key] = value;
    }
    const type = o.type ? str(ctx, o.type, `${path}.type`) : "bind";
    if (type !== "bind") {
      ctx.fail(o.type, `${path}.type`, `unsupported volume type "${type}" (only bind mounts)`);
    }
    if (!o.source) ctx.fail(node, path, `missing key "source"`);
    if (!o.target) ctx.fail(node, path, `missing key "target"`);
    source = str(ctx, o.source, `${path}.source`);
    target = str(ctx, o.target, `${path}.target`);
    if (o.read_only) {
      if (!isScalar(o.read_only) || typeof o.read_only.value !== "boolean") {
        ctx.fail(o.read_only, `${path}.read_only`, "must be true or false");
      }
      readOnly = (o.read_only as Scalar<boolean>).value;
    }
  } else {
    const s = str(ctx, node, path);
    const parts = s.split(":");
    if (parts.length < 2 || parts.length > 3) {
      ctx.fail(node, path, `unsupported volume "${s}" (use HOST_PATH:CONTAINER_PATH[:ro])`);
    }
    [source, target] = parts;
    const mode = parts[2];
    if (mode !== undefined && mode !== "ro" && mode !== "rw") {
      ctx.fail(node, path, `unsupported volume mode "${mode}" (use ro or rw)`);
    }
    readOnly = mode === "ro";
  }
  if (!source.startsWith(".") && !source.startsWith("/")) {
    ctx.fail(
      node,
      path,
      `named volume "${source}" is not supported: only bind mounts of host paths (./data, /srv/data)`,
    );
  }
  if (!isAbsolute(target)) ctx.fail(node, path, `container path "${target}" must be absolute`);
  return { source: resolve(ctx.baseDir, source), target, readOnly };
}
