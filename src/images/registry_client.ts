/**
 * A client for the OCI distribution API (and Docker's v2 registry API): resolve a tag, fetch
 * manifests and blobs, with the anonymous and credentialed bearer-token flows, Basic auth,
 * redirects to blob storage, and timeouts that name the host.
 */

import { createHash } from "node:crypto";
import { collectBytes } from "../bytes.ts";
import type { Descriptor } from "../containerd/types.ts";
import {
  InvalidArgumentError,
  NotFoundError,
  TimeoutError,
  UnauthenticatedError,
  UnavailableError,
} from "../errors.ts";
import type { Logger } from "../log.ts";
import { MANIFEST_ACCEPT, MAX_MANIFEST_BYTES } from "./media_types.ts";
import { type Challenge, parseChallenges } from "./www_authenticate.ts";

/** Credentials for one registry host, as docker's config.json holds them. */
export interface RegistryCredentials {
  username?: string;
  password?: string;
  identityToken?: string;
  registryToken?: string;
}

/** Where the client finds credentials, and how to name their source in errors. */
export interface CredentialSource {
  lookup(host: string): RegistryCredentials | undefined;
  /** E.g. the path of config.json, named when a registry refuses the credentials. */
  describe(host: string): string;
}

/** Options for {@link RegistryClient}. */
export interface RegistryClientOptions {
  credentials: CredentialSource;
  log: Logger;
  /** How long to wait for a registry to answer (headers, or the next chunk of a body). */
  timeoutMs?: number;
  /** A fetch per host, for hosts with their own CA; the global fetch otherwise. */
  fetchFor?: (host: string) => typeof fetch;
}

/** One registry endpoint: its base URL and the host name credentials are kept under. */
export interface RegistryEndpoint {
  /** `https://registry-1.docker.io`, `http://127.0.0.1:5000`, … */
  url: string;
  host: string;
}

interface CachedAuth {
  header: string;
  expiresAt: number;
}

/** A registry client; it caches tokens per host and scope for its lifetime. */
export class RegistryClient {
  readonly #opts: Required<Omit<RegistryClientOptions, "fetchFor">> & {
    fetchFor?: RegistryClientOptions["fetchFor"];
  };
  // Per host: the last challenge seen, so later requests send credentials up front.
  readonly #challenges = new Map<string, Challenge>();
  readonly #tokens = new Map<string, CachedAuth>();

  constructor(opts: RegistryClientOptions) {
    this.#opts = { ...opts, timeoutMs: opts.timeoutMs ?? 30_000 };
  }

  /** A handle on one repository (`library/busybox`) at one endpoint. */
  repository(endpoint: RegistryEndpoint, path: string): Repository {
    return new Repository(this, endpoint, path);
  }

  /** @internal Sends a request with auth, retrying once after a challenge. */
  async request(
    endpoint: RegistryEndpoint,
    path: string,
    url: string,
    init: { method: string; headers?: Record<string, string>; signal?: AbortSignal },
  ): Promise<Response> {
    const scope = `repository:${path}:pull`;
    let auth = await this.#authFor(endpoint, scope, init.signal);
    for (let attempt = 0;; attempt++) {
      const res = await this.#fetch(endpoint, url, {
        ...init,
        headers: { ...init.headers, ...(auth ? { authorization: auth } : {}) },
      });
      if (res.status !== 401 || attempt > 0) {
        if (res.status === 401) {
          await res.body?.cancel();
          throw new UnauthenticatedError(
            `registry ${endpoint.host} refused ${
              this.#opts.credentials.lookup(endpoint.host)
                ? `the credentials from ${this.#opts.credentials.describe(endpoint.host)}`
                : `anonymous access (no credentials for it in ${
                  this.#opts.credentials.describe(endpoint.host)
                })`
            }`,
          );
        }
        return res;
      }
      const challenge = parseChallenges(res.headers.get("www-authenticate"))[0];
      await res.body?.cancel();
      if (!challenge) {
        throw new UnauthenticatedError(
          `registry ${endpoint.host} answered 401 without a WWW-Authenticate challenge`,
        );
      }
      this.#challenges.set(endpoint.host, challenge);
      this.#tokens.delete(`${endpoint.host} ${scope}`);
      auth = await this.#authFor(endpoint, scope, init.signal);
      if (!auth) {
        throw new UnauthenticatedError(
          `registry ${endpoint.host} needs credentials: add them with "faasd registry login ${endpoint.host}" (stored in ${
            this.#opts.credentials.describe(endpoint.host)
          })`,
        );
      }
    }
  }

  /** @internal Fetch with a deadline for the headers, mapping network failures. */
  async #fetch(
    endpoint: RegistryEndpoint,
    url: string,
    init: {
      method: string;
      headers?: Record<string, string>;
      body?: string;
      signal?: AbortSignal;
    },
  ): Promise<Response> {
    const fetcher = this.#opts.fetchFor?.(endpoint.host) ?? fetch;
    const timeout = AbortSignal.timeout(this.#opts.timeoutMs);
    const signal = init.signal ? eitherSignal(init.signal, timeout) : timeout;
    try {
      return await fetcher(url, { ...init, redirect: "manual", signal });
    } catch (err) {
      throw networkError(endpoint.host, this.#opts.timeoutMs, err, timeout, init.signal);
    }
  }

  async #authFor(
    endpoint: RegistryEndpoint,
    scope: string,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    const challenge = this.#challenges.get(endpoint.host);
    const creds = this.#opts.credentials.lookup(endpoint.host);
    if (!challenge) return undefined;
    if (challenge.scheme === "basic") {
      return creds?.username !== undefined
        ? `Basic ${btoa(`${creds.username}:${creds.password ?? ""}`)}`
        : undefined;
    }
    if (challenge.scheme !== "bearer") {
      throw new UnauthenticatedError(
        `registry ${endpoint.host} asks for unsupported auth scheme "${challenge.scheme}"`,
      );
    }
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    const key = `${endpoint.host} ${scope}`;
    const cached = this.#tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached.header;
    const token = await this.#fetchToken(endpoint, challenge, scope, creds, signal);
    this.#tokens.set(key, token);
    return token.header;
  }

  async #fetchToken(
    endpoint: RegistryEndpoint,
    challenge: Challenge,
    scope: string,
    creds: RegistryCredentials | undefined,
    signal?: AbortSignal,
  ): Promise<CachedAuth> {
    const realm = challenge.params.realm;
    if (!realm) {
      throw new UnauthenticatedError(
        `registry ${endpoint.host} sent a bearer challenge without realm`,
      );
    }
    const realmUrl = new URL(realm);
    const tokenEndpoint = { url: realmUrl.origin, host: realmUrl.host };
    let res: Response;
    if (creds?.identityToken) {
      // An identity token is an OAuth2 refresh token (docker login with an identity provider).
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: creds.identityToken,
        client_id: "faasd-ts",
        service: challenge.params.service ?? "",
        scope,
      });
      res = await this.#fetch(tokenEndpoint, realm, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: form.toString(),
        signal,
      });
    } else {
      const q = new URLSearchParams();
      if (challenge.params.service) q.set("service", challenge.params.service);
      q.set("scope", scope);
      for (const [k, v] of q) realmUrl.searchParams.append(k, v);
      const headers: Record<string, string> = {};
      if (creds?.username !== undefined) {
        headers.authorization = `Basic ${btoa(`${creds.username}:${creds.password ?? ""}`)}`;
      }
      res = await this.#fetch(tokenEndpoint, realmUrl.toString(), {
        method: "GET",
        headers,
        signal,
      });
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw new UnauthenticatedError(
        `registry ${endpoint.host} refused ${
          creds
            ? `the credentials from ${this.#opts.credentials.describe(endpoint.host)}`
            : "anonymous access"
        } (token service ${realmUrl.host} answered ${res.status})`,
      );
    }
    if (!res.ok) {
      throw new UnavailableError(
        `token service ${realmUrl.host} for registry ${endpoint.host} answered ${res.status}: ${await errorText(
          res,
        )}`,
      );
    }
    const body = await res.json() as { token?: string; access_token?: string; expires_in?: number };
    const token = body.token ?? body.access_token;
    if (!token) {
      throw new UnauthenticatedError(`token service ${realmUrl.host} returned no token`);
    }
    // Renew a little early so a token never expires mid-pull.
    const ttl = Math.max(10, (body.expires_in ?? 60) - 10) * 1000;
    return { header: `Bearer ${token}`, expiresAt: Date.now() + ttl };
  }

  /** @internal */
  get timeoutMs(): number {
    return this.#opts.timeoutMs;
  }

  /** @internal Follows a redirect without the registry's credentials (blob storage, CDNs). */
  fetchRedirect(endpoint: RegistryEndpoint, location: string, signal?: AbortSignal) {
    const target = new URL(location);
    return this.#fetch({ url: target.origin, host: target.host }, location, {
      method: "GET",
      signal,
    }).catch((err) => {
      throw err instanceof UnavailableError || err instanceof TimeoutError
        ? err
        : new UnavailableError(`cannot follow ${endpoint.host}'s redirect to ${target.host}`, {
          cause: err,
        });
    });
  }
}

/** One repository on one registry endpoint. */
export class Repository {
  constructor(
    private readonly client: RegistryClient,
    readonly endpoint: RegistryEndpoint,
    readonly path: string,
  ) {}

  /** Resolves a tag or digest to the root descriptor (HEAD first, GET when headers are missing). */
  async resolve(reference: string, signal?: AbortSignal): Promise<Descriptor> {
    const url = this.#url(`manifests/${reference}`);
    const head = await this.client.request(this.endpoint, this.path, url, {
      method: "HEAD",
      headers: { accept: MANIFEST_ACCEPT },
      signal,
    });
    if (head.ok) {
      const digest = head.headers.get("docker-content-digest");
      const size = Number(head.headers.get("content-length") ?? NaN);
      const mediaType = (head.headers.get("content-type") ?? "").split(";")[0].trim();
      if (digest && Number.isFinite(size) && mediaType) return { mediaType, digest, size };
    } else if (head.status !== 405 && head.status !== 404) {
      throw new UnavailableError(
        `registry ${this.endpoint.host} answered ${head.status} for ${this.#name(reference)}`,
      );
    }
    // No usable HEAD: GET the manifest and hash it ourselves.
    const res = await this.client.request(this.endpoint, this.path, url, {
      method: "GET",
      headers: { accept: MANIFEST_ACCEPT },
      signal,
    });
    if (res.status === 404) {
      // A HEAD carries no body, so the registry's own words come from this GET.
      throw new NotFoundError(`${this.#name(reference)}: ${await errorText(res)}`);
    }
    if (!res.ok) {
      throw new UnavailableError(
        `registry ${this.endpoint.host} answered ${res.status} for ${
          this.#name(reference)
        }: ${await errorText(res)}`,
      );
    }
    const bytes = await readLimited(res, MAX_MANIFEST_BYTES, this.#name(reference));
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    const mediaType = (res.headers.get("content-type") ?? "").split(";")[0].trim() ||
      String(JSON.parse(new TextDecoder().decode(bytes)).mediaType ?? "");
    return { mediaType, digest, size: bytes.length };
  }

  /** Fetches a manifest or index by its descriptor and verifies size and digest. */
  async fetchManifest(desc: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
    if (desc.size > MAX_MANIFEST_BYTES) {
      throw new InvalidArgumentError(`manifest ${desc.digest} is too large (${desc.size} bytes)`);
    }
    const res = await this.client.request(
      this.endpoint,
      this.path,
      this.#url(`manifests/${desc.digest}`),
      { method: "GET", headers: { accept: `${desc.mediaType}, */*` }, signal },
    );
    if (res.status === 404) {
      throw new NotFoundError(
        `manifest ${desc.digest} not found in ${this.endpoint.host}/${this.path}: ${await errorText(
          res,
        )}`,
      );
    }
    if (!res.ok) {
      throw new UnavailableError(
        `registry ${this.endpoint.host} answered ${res.status} for manifest ${desc.digest}: ${await errorText(
          res,
        )}`,
      );
    }
    const bytes = await readLimited(res, MAX_MANIFEST_BYTES, desc.digest);
    verifyDigest(bytes, desc, this.endpoint.host);
    return bytes;
  }

  /** Fetches a small blob (an image config) into memory and verifies it. */
  async fetchSmallBlob(desc: Descriptor, signal?: AbortSignal): Promise<Uint8Array> {
    if (desc.size > MAX_MANIFEST_BYTES) {
      throw new InvalidArgumentError(
        `blob ${desc.digest} is too large to read (${desc.size} bytes)`,
      );
    }
    // A registry sending more than the descriptor says is cut off, not buffered.
    const bytes = await collectBytes(await this.fetchBlob(desc, { signal }), {
      limit: desc.size,
      what: `blob ${desc.digest} from ${this.endpoint.host}`,
    });
    verifyDigest(bytes, desc, this.endpoint.host);
    return bytes;
  }

  /**
   * Opens a blob's byte stream from `offset`, following redirects without the registry's
   * credentials. The stream errors with a TimeoutError when the registry stalls; the caller
   * verifies the digest of what it reads.
   */
  async fetchBlob(
    desc: Descriptor,
    { offset = 0, signal }: { offset?: number; signal?: AbortSignal } = {},
  ): Promise<ReadableStream<Uint8Array>> {
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    let res = await this.client.request(
      this.endpoint,
      this.path,
      this.#url(`blobs/${desc.digest}`),
      {
        method: "GET",
        headers,
        signal,
      },
    );
    for (let hops = 0; isRedirect(res.status) && hops < 5; hops++) {
      const location = res.headers.get("location");
      await res.body?.cancel();
      if (!location) break;
      res = await this.client.fetchRedirect(
        this.endpoint,
        new URL(location, res.url || this.endpoint.url).toString(),
        signal,
      );
    }
    if (res.status === 404) {
      throw new NotFoundError(
        `blob ${desc.digest} not found in ${this.endpoint.host}/${this.path}: ${await errorText(
          res,
        )}`,
      );
    }
    if (!res.ok || !res.body) {
      throw new UnavailableError(
        `registry ${this.endpoint.host} answered ${res.status} for blob ${desc.digest}: ${await errorText(
          res,
        )}`,
      );
    }
    if (offset > 0 && res.status !== 206) {
      // The registry ignored the range: skip what we already have.
      return skipBytes(res.body, offset);
    }
    return withIdleTimeout(res.body, this.client.timeoutMs, this.endpoint.host);
  }

  #url(rest: string): string {
    return `${this.endpoint.url}/v2/${this.path}/${rest}`;
  }

  #name(reference: string): string {
    return `${this.endpoint.host}/${this.path}${reference.includes(":") ? "@" : ":"}${reference}`;
  }
}

/** Throws when `bytes` does not hash to the descriptor's digest or has another size. */
export function verifyDigest(bytes: Uint8Array, desc: Descriptor, host: string): void {
  const [alg, hex] = desc.digest.split(":");
  const got = createHash(alg).update(bytes).digest("hex");
  if (got !== hex || bytes.length !== desc.size) {
    throw new InvalidArgumentError(
      `content from ${host} does not match its descriptor: expected ${desc.digest} (${desc.size} bytes), got ${alg}:${got} (${bytes.length} bytes)`,
    );
  }
}

function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

function readLimited(res: Response, limit: number, what: string): Promise<Uint8Array> {
  return res.body ? collectBytes(res.body, { limit, what }) : Promise.resolve(new Uint8Array(0));
}

/** The registry's error text: `CODE: message` from its JSON body, or the raw text. */
export async function errorText(res: Response): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    if (body.errors?.length) {
      return body.errors.map((e) => [e.code, e.message].filter(Boolean).join(": ")).join("; ");
    }
  } catch { /* not JSON */ }
  return text.trim().slice(0, 200) || `HTTP ${res.status}`;
}

function networkError(
  host: string,
  timeoutMs: number,
  err: unknown,
  timeout: AbortSignal,
  caller?: AbortSignal,
): Error {
  if (caller?.aborted) return err instanceof Error ? err : new Error(String(err));
  if (timeout.aborted) {
    return new TimeoutError(`registry ${host} did not answer within ${timeoutMs / 1000}s`, {
      cause: err,
    });
  }
  const cause = err instanceof Error
    ? (err.cause instanceof Error ? err.cause.message : err.message)
    : String(err);
  return new UnavailableError(`cannot reach registry ${host}: ${cause}`, { cause: err });
}

function withIdleTimeout(
  body: ReadableStream<Uint8Array>,
  timeoutMs: number,
  host: string,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(
            new TimeoutError(`registry ${host} stopped sending data for ${timeoutMs / 1000}s`),
          );
        }, timeoutMs);
      });
      try {
        const { value, done } = await Promise.race([reader.read(), stalled]);
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (err) {
        reader.cancel(err).catch(() => {});
        controller.error(err);
      } finally {
        clearTimeout(timer);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

function skipBytes(body: ReadableStream<Uint8Array>, n: number): ReadableStream<Uint8Array> {
  let left = n;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (left >= chunk.length) {
          left -= chunk.length;
          return;
        }
        controller.enqueue(chunk.subarray(left));
        left = 0;
      },
    }),
  );
}

// AbortSignal.any arrived in Node.js 20.3; the armhf build runs on Node.js 18 too.
function eitherSignal(a: AbortSignal, b: AbortSignal): AbortSignal {
  const c = new AbortController();
  const abort = (s: AbortSignal) => () => c.abort(s.reason);
  if (a.aborted) c.abort(a.reason);
  else if (b.aborted) c.abort(b.reason);
  else {
    a.addEventListener("abort", abort(a), { once: true });
    b.addEventListener("abort", abort(b), { once: true });
  }
  return c.signal;
}
