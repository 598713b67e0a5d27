/**
 * The value parsers of the compose subset (src/supervisor/compose.ts): environment, command
 * lines, depends_on, ports and bind volumes, each failing through the context with the node's
 * line and the key's path.
 */

import { isAbsolute, resolve } from "node:path";
import { isMap, isPair, isScalar, isSeq, type Node, type Scalar, type YAMLMap } from "yaml";
import type { PortSpec, VolumeSpec } from "./compose.ts";

/** How a field parser reports an error (with the node's line) and resolves relative paths. */
export interface Ctx {
  fail(node: Node | null | undefined, path: string, msg: string): never;
  baseDir: string;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/** The key-value pairs of a mapping as [key, key node, value node]; keys must be strings. */
export function entries(ctx: Ctx, map: YAMLMap, path: string): Array<[string, Node, Node]> {
  return map.items.map((pair) => {
    if (!isPair(pair) || !isScalar(pair.key) || typeof pair.key.value !== "string") {
      return ctx.fail(pair.key as Node, path, "keys must be strings");
    }
    return [pair.key.value, pair.key as Node, pair.value as Node];
  });
}

/** A string scalar (or a number, with `numbers`). */
export function str(ctx: Ctx, node: unknown, path: string, o: { numbers?: boolean } = {}): string {
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

/** The items of a sequence. */
export function list(ctx: Ctx, node: unknown, path: string): Node[] {
  if (!isSeq(node)) return ctx.fail(node as Node, path, "must be a list");
  return node.items as Node[];
}

/** `environment`: a mapping, or a list of NAME=VALUE. */
export function environment(ctx: Ctx, node: unknown, path: string): Record<string, string> {
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

/** `command` / `entrypoint`: a list, or a string split into words. */
export function commandLine(ctx: Ctx, node: unknown, path: string): string[] {
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

/** `depends_on`: a list, or a mapping with `condition: service_started`. */
export function dependsOn(ctx: Ctx, node: unknown, path: string): string[] {
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

/** One `ports` entry: [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp]. */
export function port(ctx: Ctx, node: Node, path: string): PortSpec {
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

/** One `volumes` entry: a bind mount, short or long syntax. */
export function volume(ctx: Ctx, node: Node, path: string): VolumeSpec {
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
