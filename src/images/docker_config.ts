/**
 * Registry credentials in `<data-dir>/.docker/config.json`, where faasd keeps them, in the format
 * of docker/cli's config file (`auths` keyed by host, Docker Hub under its legacy v1 URL).
 */

import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Buffer } from "node:buffer";
import { InvalidArgumentError } from "../errors.ts";

/** Credentials for one registry, as the token and basic-auth flows use them. */
export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth refresh token (`identitytoken`). */
  identityToken?: string;
  /** A ready bearer token (`registrytoken`). */
  registryToken?: string;
}

/** One entry of `auths`, as docker/cli writes it. */
export interface DockerAuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
  [key: string]: unknown;
}

/** The config file; keys other than `auths` (credsStore, credHelpers, …) are kept as they are. */
export interface DockerConfig {
  auths?: Record<string, DockerAuthEntry>;
  [key: string]: unknown;
}

/** Docker Hub's key in `auths`, kept for compatibility with docker login. */
export const DOCKER_HUB_KEY = "https://index.docker.io/v1/";

const DOCKER_HUB_HOSTS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

/** Where the config file lives under a data dir. */
export function dockerConfigPath(dataDir: string): string {
  return join(dataDir, ".docker", "config.json");
}

/**
 * Turns `HOST`, `https://HOST/v1/` and similar into a bare lowercase `host[:port]`; every Docker
 * Hub spelling becomes `docker.io`. Throws InvalidArgumentError when nothing host-like is left.
 */
export function normalizeRegistryHost(s: string): string {
  const host = s.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, "").split("/")[0].toLowerCase();
  if (!/^(?:[a-z0-9]([a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:]+\])(?::[0-9]+)?$/.test(host)) {
    throw new InvalidArgumentError(
      `invalid registry host "${s}": expected a host such as "docker.io" or "10.0.0.5:5000"`,
    );
  }
  return DOCKER_HUB_HOSTS.has(host) ? "docker.io" : host;
}

/** Reads the config file; a missing file is an empty config, malformed JSON an error naming it. */
export async function readDockerConfig(dataDir: string): Promise<DockerConfig> {
  const path = dockerConfigPath(dataDir);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw err;
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (err) {
    throw new InvalidArgumentError(
      `cannot read registry credentials from "${path}": not valid JSON (${(err as Error).message})`,
      { cause: err },
    );
  }
  if (!isObject(config) || (config.auths !== undefined && !isObject(config.auths))) {
    throw new InvalidArgumentError(
      `cannot read registry credentials from "${path}": expected an object with an "auths" object`,
    );
  }
  return config as DockerConfig;
}

/** The credentials stored for `host` (any spelling of it), or undefined when there are none. */
export function credentialsFor(config: DockerConfig, host: string): Credentials | undefined {
  const want = normalizeRegistryHost(host);
  const entry = matchingKeys(config, want).map((k) => config.auths![k])[0];
  if (!isObject(entry)) return undefined;
  const creds: Credentials = {};
  if (typeof entry.auth === "string" && entry.auth !== "") {
    Object.assign(creds, decodeAuth(entry.auth, want));
  } else {
    if (typeof entry.username === "string" && entry.username) creds.username = entry.username;
    if (typeof entry.password === "string" && entry.password) creds.password = entry.password;
  }
  if (typeof entry.identitytoken === "string" && entry.identitytoken) {
    creds.identityToken = entry.identitytoken;
  }
  if (typeof entry.registrytoken === "string" && entry.registrytoken) {
    creds.registryToken = entry.registrytoken;
  }
  return Object.keys(creds).length ? creds : undefined;
}

/** Decodes an `auth` value: base64 of `user:password`, split at the first colon. */
export function decodeAuth(auth: string, host: string): { username: string; password: string } {
  const text = Buffer.from(auth, "base64").toString("utf8");
  const colon = text.indexOf(":");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(auth) || colon < 0) {
    throw new InvalidArgumentError(
      `invalid credentials for registry "${host}": "auth" is not base64 of "user:password"`,
    );
  }
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

/**
 * Stores `username` and `password` for `host`, replacing any other spelling of the same host and
 * keeping the rest of the file; the file is written atomically with mode 0600 in a 0700 dir.
 */
export async function saveLogin(
  dataDir: string,
  host: string,
  username: string,
  password: string,
): Promise<void> {
  const normalized = normalizeRegistryHost(host);
  if (username === "" || username.includes(":")) {
    throw new InvalidArgumentError(
      `cannot save credentials for "${normalized}": user name "${username}" must be non-empty and contain no ":"`,
    );
  }
  if (password === "") {
    throw new InvalidArgumentError(`cannot save credentials for "${normalized}": empty password`);
  }
  const config = await readDockerConfig(dataDir);
  const auths = { ...config.auths };
  for (const k of matchingKeys(config, normalized)) delete auths[k];
  auths[configKey(normalized)] = {
    auth: Buffer.from(`${username}:${password}`, "utf8").toString("base64"),
  };
  await writeConfig(dataDir, { ...config, auths });
}

/** Removes every entry for `host`; resolves to whether anything was removed. */
export async function removeLogin(dataDir: string, host: string): Promise<boolean> {
  const normalized = normalizeRegistryHost(host);
  const config = await readDockerConfig(dataDir);
  const keys = matchingKeys(config, normalized);
  if (keys.length === 0) return false;
  const auths = { ...config.auths };
  for (const k of keys) delete auths[k];
  await writeConfig(dataDir, { ...config, auths });
  return true;
}

// Docker Hub keeps its legacy key; every other registry is keyed by its bare host[:port].
function configKey(normalizedHost: string): string {
  return normalizedHost === "docker.io" ? DOCKER_HUB_KEY : normalizedHost;
}

// Keys of `auths` that name the host, the canonical key first, then in file order.
function matchingKeys(config: DockerConfig, normalizedHost: string): string[] {
  const keys = Object.keys(config.auths ?? {}).filter((k) => {
    try {
      return normalizeRegistryHost(k) === normalizedHost;
    } catch {
      return false;
    }
  });
  const canonical = configKey(normalizedHost);
  return keys.sort((a, b) => Number(b === canonical) - Number(a === canonical));
}

async function writeConfig(dataDir: string, config: DockerConfig): Promise<void> {
  const path = dockerConfigPath(dataDir);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await chmod(dirname(path), 0o700);
  // Write a temp file and rename it over the old one, so a crash never leaves half a file.
  const tmp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, JSON.stringify(config, null, "\t") + "\n", { flag: "wx", mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
