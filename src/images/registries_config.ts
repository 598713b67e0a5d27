/**
 * `<data-dir>/registries.yaml` in k3s's format: mirrors per registry, and per-host auth, TLS and
 * plain HTTP. Read strictly, so a typo is an error with its line number instead of being ignored.
 */

import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type Scalar,
  type YAMLMap,
} from "yaml";
import { InvalidArgumentError } from "../errors.ts";
import { type Credentials, decodeAuth } from "./docker_config.ts";

/** TLS settings for one registry host; file paths are read by the registry client. */
export interface RegistryTls {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  insecureSkipVerify?: boolean;
}

/** What `configs` says about one registry host. */
export interface RegistryHostConfig {
  auth?: Credentials;
  tls?: RegistryTls;
  /** Talk HTTP, not HTTPS, to this host when it is a registry's origin (our extension). */
  plainHttp?: boolean;
}

/** The whole file; keys are `host[:port]` (Docker Hub as `docker.io`) or `*` for every registry. */
export interface RegistriesConfig {
  /** Mirror base URLs per registry, tried in order before the registry itself. */
  mirrors: Record<string, { endpoints: string[] }>;
  configs: Record<string, RegistryHostConfig>;
}

/** One place to pull from. */
export interface Endpoint {
  /** Base URL without `/v2`, e.g. `https://registry-1.docker.io` or `http://10.0.0.5:5000`. */
  url: string;
  /** `host[:port]` to look up configs and credentials with. */
  host: string;
  mirror: boolean;
}

/** The file's name under the data dir. */
export const REGISTRIES_FILE = "registries.yaml";

/** Reads `<dataDir>/registries.yaml`; a missing file is an empty config. */
export async function loadRegistriesConfig(dataDir: string): Promise<RegistriesConfig> {
  const path = join(dataDir, REGISTRIES_FILE);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { mirrors: {}, configs: {} };
    throw err;
  }
  return parseRegistriesConfig(text, path);
}

/** Parses registries.yaml text; errors start with `<source> line N:` and name the key path. */
export function parseRegistriesConfig(text: string, source = REGISTRIES_FILE): RegistriesConfig {
  const r = new Reader(text, source);
  const config: RegistriesConfig = { mirrors: {}, configs: {} };
  for (const top of r.entries(r.doc.contents, [], ["mirrors", "configs"])) {
    const section = top.key as "mirrors" | "configs";
    for (const { key, keyNode, value } of r.entries(top.value, [section])) {
      const name = registryKey(key) ?? r.fail(keyNode, hostError(key, section));
      if (name in config[section]) {
        r.fail(keyNode, `${pathText([section, key])} repeats registry "${name}"`);
      }
      if (section === "mirrors") config.mirrors[name] = readMirror(r, value, [section, key]);
      else config.configs[name] = readHostConfig(r, value, [section, key], name);
    }
  }
  return config;
}

function readMirror(r: Reader, node: unknown, path: string[]): { endpoints: string[] } {
  const endpoints: string[] = [];
  for (const { value } of r.entries(node, path, ["endpoint"])) {
    if (!isSeq(value)) r.fail(value, `${pathText([...path, "endpoint"])} must be a list of URLs`);
    (value as { items: unknown[] }).items.forEach((item, i) => {
      const p = [...path, `endpoint[${i}]`];
      const text = r.str(item, p);
      endpoints.push(
        endpointUrl(text) ?? r.fail(item, `${pathText(p)} "${text}" is not an http(s) URL`),
      );
    });
  }
  return { endpoints };
}

function readHostConfig(
  r: Reader,
  node: unknown,
  path: string[],
  name: string,
): RegistryHostConfig {
  const host: RegistryHostConfig = {};
  for (const c of r.entries(node, path, ["auth", "tls", "plain_http"])) {
    const p = [...path, c.key];
    if (c.key === "plain_http") host.plainHttp = r.bool(c.value, p);
    else if (c.key === "auth") host.auth = readAuth(r, c.value, p, name);
    else host.tls = readTls(r, c.value, p);
  }
  return host;
}

function readAuth(r: Reader, node: unknown, path: string[], name: string): Credentials {
  const auth: Credentials = {};
  for (const a of r.entries(node, path, ["username", "password", "auth", "identity_token"])) {
    const p = [...path, a.key];
    const v = r.str(a.value, p);
    if (a.key === "username") auth.username = v;
    else if (a.key === "password") auth.password = v;
    else if (a.key === "identity_token") auth.identityToken = v;
    else {
      try {
        Object.assign(auth, decodeAuth(v, name));
      } catch (err) {
        r.fail(a.value, `${pathText(p)}: ${(err as Error).message}`);
      }
    }
  }
  return auth;
}

function readTls(r: Reader, node: unknown, path: string[]): RegistryTls {
  const tls: RegistryTls = {};
  for (
    const t of r.entries(node, path, ["ca_file", "cert_file", "key_file", "insecure_skip_verify"])
  ) {
    const p = [...path, t.key];
    if (t.key === "ca_file") tls.caFile = r.str(t.value, p);
    else if (t.key === "cert_file") tls.certFile = r.str(t.value, p);
    else if (t.key === "key_file") tls.keyFile = r.str(t.value, p);
    else tls.insecureSkipVerify = r.bool(t.value, p);
  }
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    r.fail(node, `${pathText(path)} needs both cert_file and key_file, or neither`);
  }
  return tls;
}

// Walks the YAML document strictly and reports problems with their line numbers.
class Reader {
  readonly doc: Document.Parsed;
  readonly #lines = new LineCounter();
  readonly #source: string;

  constructor(text: string, source: string) {
    this.#source = source;
    this.doc = parseDocument(text, { lineCounter: this.#lines, prettyErrors: false });
    const e = this.doc.errors[0];
    if (e) this.#throw(e.pos[0], e.message.split("\n")[0]);
  }

  fail(node: unknown, message: string): never {
    this.#throw((node as Node | null | undefined)?.range?.[0], message);
  }

  // A map's entries; `key:` with nothing after it counts as an empty map.
  entries(node: unknown, path: string[], allowed?: string[]) {
    node = this.#resolve(node);
    if (node == null || (isScalar(node) && node.value === null)) return [];
    if (!isMap(node)) this.fail(node, `${where(path)} must be a map`);
    return (node as YAMLMap).items.map((pair) => {
      const k = pair.key;
      if (!isScalar(k) || k.value === null || typeof k.value === "object") {
        this.fail(k, `a key under ${where(path)} is not a plain name`);
      }
      const key = String((k as Scalar).value);
      if (allowed && !allowed.includes(key)) {
        const at = path.length ? `under ${pathText(path)}` : "at the top level";
        this.fail(k, `unknown key "${key}" ${at} (expected ${listOf(allowed)})`);
      }
      return { key, keyNode: k, value: this.#resolve(pair.value) };
    });
  }

  str(node: unknown, path: string[]): string {
    return this.#scalar(node, path, "string", "a string (quote numbers)") as string;
  }

  bool(node: unknown, path: string[]): boolean {
    return this.#scalar(node, path, "boolean", "true or false") as boolean;
  }

  #scalar(node: unknown, path: string[], type: "string" | "boolean", hint: string): unknown {
    node = this.#resolve(node);
    if (isScalar(node) && typeof node.value === type) return node.value;
    const got = isScalar(node)
      ? node.value === null ? "nothing" : `${typeof node.value} ${JSON.stringify(node.value)}`
      : isSeq(node)
      ? "a list"
      : "a map";
    this.fail(node, `${pathText(path)} must be ${hint}, got ${got}`);
  }

  #resolve(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  #throw(offset: number | undefined, message: string): never {
    const line = offset === undefined ? 0 : this.#lines.linePos(offset).line;
    throw new InvalidArgumentError(`${this.#source}${line ? ` line ${line}` : ""}: ${message}`);
  }
}

/**
 * Where to pull `domain`'s images from: its mirrors in order, then the registry itself, over
 * HTTP for loopback hosts or `plain_http: true`, else HTTPS (Docker Hub at registry-1.docker.io).
 */
export function endpointsFor(config: RegistriesConfig, domain: string): Endpoint[] {
  const name = hubAlias(domain.toLowerCase());
  const out: Endpoint[] = [];
  for (const url of (config.mirrors[name] ?? config.mirrors["*"])?.endpoints ?? []) {
    if (!out.some((e) => e.url === url)) out.push({ url, host: new URL(url).host, mirror: true });
  }
  const plain = hostConfigFor(config, name)?.plainHttp ?? isLoopback(name);
  const origin = `${plain ? "http" : "https"}://${
    name === "docker.io" ? "registry-1.docker.io" : name
  }`;
  const listed = out.find((e) => e.url === origin);
  if (listed) {
    // The registry itself is listed as a mirror: keep the user's order, but say what it is.
    Object.assign(listed, { host: name, mirror: false });
  } else {
    out.push({ url: origin, host: name, mirror: false });
  }
  return out;
}

/** The `configs` entry for `host` (Docker Hub under any spelling), else the `*` entry. */
export function hostConfigFor(
  config: RegistriesConfig,
  host: string,
): RegistryHostConfig | undefined {
  return config.configs[hubAlias(host.toLowerCase())] ?? config.configs["*"];
}

// A base URL without trailing "/" or "/v2", or undefined if `s` is not a plain http(s) URL.
function endpointUrl(s: string): string | undefined {
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return undefined;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return undefined;
  if (u.username || u.password || u.search || u.hash) return undefined;
  const path = u.pathname.replace(/\/+$/, "").replace(/\/v2$/, "");
  return `${u.protocol}//${u.host}${path}`;
}

// A mirrors/configs key as `host[:port]` (Docker Hub as docker.io), or undefined if it is not one.
function registryKey(key: string): string | undefined {
  if (key === "*") return key;
  const host = key.toLowerCase();
  const ok =
    /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:]+\])(?::[0-9]+)?$/
      .test(host);
  return ok ? hubAlias(host) : undefined;
}

function hostError(key: string, section: string): string {
  return `${section} key "${key}" must be a registry host such as "docker.io" or "10.0.0.5:5000" (no scheme or path), or "*"`;
}

function hubAlias(host: string): string {
  return host === "index.docker.io" || host === "registry-1.docker.io" ? "docker.io" : host;
}

function isLoopback(host: string): boolean {
  return /^localhost(?::\d+)?$/.test(host) ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}(?::\d+)?$/.test(host) ||
    /^\[::1\](?::\d+)?$/.test(host);
}

function where(path: string[]): string {
  return path.length ? pathText(path) : "the top level";
}

// mirrors."docker.io".endpoint[0]
function pathText(path: string[]): string {
  return path.map((p) => /^[A-Za-z_][\w]*(\[\d+\])?$/.test(p) ? p : JSON.stringify(p)).join(
    ".",
  );
}

function listOf(keys: string[]): string {
  return keys.length === 1 ? keys[0] : `${keys.slice(0, -1).join(", ")} or ${keys.at(-1)}`;
}
