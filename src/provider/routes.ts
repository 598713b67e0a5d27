/**
 * The faas-provider HTTP API (see the OpenFaaS contract): functions, scale, secrets, namespaces,
 * info, health and the function proxy, as one fetch-style handler. Errors are mapped to status
 * codes in gateway/errors.ts only.
 */

import { collectBytes } from "../bytes.ts";
import {
  InvalidArgumentError,
  NotFoundError,
  PayloadTooLargeError,
  UnprocessableError,
} from "../errors.ts";
import { errorResponse } from "../gateway/errors.ts";
import type { Logger } from "../log.ts";
import type { LogQuery, LogRecord } from "./logs.ts";
import type { SecretStore } from "./secrets.ts";
import { validateSecretName } from "./secrets.ts";
import { parseFunctionPath } from "./function_path.ts";
import type { FunctionDeployment, FunctionStatus } from "./types.ts";
import { DEFAULT_NAMESPACE } from "./types.ts";

/** What the routes need from the function manager. */
export interface Functions {
  list(namespace: string): Promise<FunctionStatus[]>;
  get(name: string, namespace: string, opts: { usage: boolean }): Promise<FunctionStatus>;
  deploy(body: unknown): Promise<void>;
  update(body: unknown): Promise<void>;
  remove(name: string, namespace: string): Promise<void>;
  scale(name: string, namespace: string, replicas: number): Promise<void>;
  /** Throws NotFoundError when the namespace is not one functions may use. */
  checkNamespace(namespace: string): Promise<void>;
}

/** What the routes need for logs. */
export interface LogSource {
  /** Resolves once stored records are read and, with `follow`, new ones are listened for. */
  query(q: LogQuery): Promise<AsyncGenerator<LogRecord>>;
}

/** What the routes need for namespaces. */
export interface FunctionNamespaces {
  list(): Promise<string[]>;
  get(
    name: string,
  ): Promise<{ name: string; labels: Record<string, string>; annotations: Record<string, string> }>;
  create(
    ns: { name: string; labels: Record<string, string>; annotations: Record<string, string> },
  ): Promise<void>;
  update(
    ns: { name: string; labels: Record<string, string>; annotations: Record<string, string> },
  ): Promise<void>;
  delete(name: string): Promise<void>;
}

/** Dependencies of the provider routes. */
export interface ProviderRouteDeps {
  functions: Functions;
  namespaces: FunctionNamespaces;
  secrets: SecretStore;
  logs: LogSource;
  /** Proxies `/function/...` requests; absent where the gateway proxies itself. */
  proxy?: (req: Request, name: string, namespace: string, path: string) => Promise<Response>;
  info: { release: string; sha: string; arch: string };
  log: Logger;
}

/** Builds the provider's handler; `/system/*` paths assume auth was checked by the caller. */
export function createProviderHandler(
  deps: ProviderRouteDeps,
): (req: Request) => Promise<Response> {
  return async (req) => {
    const url = new URL(req.url);
    const path = url.pathname;
    const q = url.searchParams;
    const method = req.method;
    try {
      if (path === "/healthz") return new Response("OK\n");
      const fn = deps.proxy && parseFunctionPath("function", path);
      if (fn) return await deps.proxy!(req, fn.name, fn.namespace, fn.path + url.search);
      if (path === "/system/info" && method === "GET") {
        const version = { release: deps.info.release, sha: deps.info.sha };
        return json({
          provider: { provider: "faasd-ts", orchestration: "containerd", version },
          version,
          arch: deps.info.arch,
        });
      }
      if (path === "/system/functions") {
        const namespace = q.get("namespace") || DEFAULT_NAMESPACE;
        if (method === "GET") {
          // The contract answers a listing in an unknown namespace with 400, not 404.
          await deps.functions.checkNamespace(namespace).catch((err) => {
            throw err instanceof NotFoundError ? new InvalidArgumentError(err.message) : err;
          });
          return json(await deps.functions.list(namespace));
        }
        if (method === "POST") {
          await deps.functions.deploy(withNamespace(await readJson(req), q));
          return accepted();
        }
        if (method === "PUT") {
          await deps.functions.update(withNamespace(await readJson(req), q));
          return accepted();
        }
        if (method === "DELETE") {
          const body = await readJson(req) as { functionName?: string; namespace?: string };
          if (!body.functionName) throw new InvalidArgumentError("functionName is required");
          await deps.functions.remove(body.functionName, body.namespace || namespace);
          return accepted();
        }
      }
      const one = path.match(/^\/system\/function\/([^/]+)$/);
      if (one && method === "GET") {
        const namespace = q.get("namespace") || DEFAULT_NAMESPACE;
        const usage = q.get("usage") === "1" || q.get("usage") === "true";
        return json(await deps.functions.get(one[1], namespace, { usage }));
      }
      const scale = path.match(/^\/system\/scale-function\/([^/]+)$/);
      if (scale && method === "POST") {
        const body = await readJson(req) as {
          serviceName?: string;
          replicas?: unknown;
          namespace?: string;
        };
        const replicas = Number(body.replicas);
        if (!Number.isInteger(replicas) || replicas < 0) {
          throw new InvalidArgumentError(
            `replicas must be a whole number ≥ 0, got ${JSON.stringify(body.replicas)}`,
          );
        }
        await deps.functions.scale(
          body.serviceName || scale[1],
          body.namespace || q.get("namespace") || DEFAULT_NAMESPACE,
          replicas,
        );
        return accepted();
      }
      if (path === "/system/secrets") return await secrets(deps, req, q);
      if (path === "/system/logs" && method === "GET") return await logs(deps, req, q);
      if (path === "/system/namespaces" && method === "GET") {
        return json(await deps.namespaces.list());
      }
      const ns = path.match(/^\/system\/namespace\/([^/]*)$/);
      if (ns) return await namespace(deps, req, ns[1]);
      throw new NotFoundError(`no route for ${method} ${path}`);
    } catch (err) {
      return errorResponse(err, deps.log);
    }
  };
}

async function secrets(
  deps: ProviderRouteDeps,
  req: Request,
  q: URLSearchParams,
): Promise<Response> {
  const queryNs = q.get("namespace") || DEFAULT_NAMESPACE;
  if (req.method === "GET") {
    await deps.functions.checkNamespace(queryNs);
    return json(await deps.secrets.list(queryNs));
  }
  const body = await readJson(req) as {
    name?: string;
    namespace?: string;
    value?: string;
    rawValue?: string;
  };
  const namespace = body.namespace || queryNs;
  await deps.functions.checkNamespace(namespace);
  const name = validateSecretName(body.name);
  if (req.method === "DELETE") {
    await deps.secrets.delete(namespace, name);
    return accepted();
  }
  const value = body.rawValue !== undefined && body.rawValue !== ""
    ? decodeBase64(body.rawValue, name)
    : new TextEncoder().encode(body.value ?? "");
  if (req.method === "POST") {
    await deps.secrets.create(namespace, name, value);
    return new Response(null, { status: 201 });
  }
  if (req.method === "PUT") {
    await deps.secrets.update(namespace, name, value);
    return accepted();
  }
  throw new NotFoundError(`no route for ${req.method} /system/secrets`);
}

async function logs(deps: ProviderRouteDeps, req: Request, q: URLSearchParams): Promise<Response> {
  const name = q.get("name");
  if (!name) throw new UnprocessableError("query parameter name is required");
  const namespace = q.get("namespace") || DEFAULT_NAMESPACE;
  const tailText = q.get("tail");
  const tail = tailText === null || tailText === "" ? undefined : Number(tailText);
  if (tail !== undefined && !Number.isInteger(tail)) {
    throw new UnprocessableError(`tail must be a whole number, got "${tailText}"`);
  }
  const sinceText = q.get("since");
  const since = sinceText ? new Date(sinceText) : undefined;
  if (since && Number.isNaN(since.getTime())) {
    throw new UnprocessableError(`since must be an RFC 3339 time, got "${sinceText}"`);
  }
  // 404 for a function that does not exist, before the stream starts.
  await deps.functions.get(name, namespace, { usage: false });
  const follow = q.get("follow") === "true" || q.get("follow") === "1";
  // Awaited before the headers go out: the reader listens from then on (see LogCollector.query).
  const records = await deps.logs.query({
    name,
    namespace,
    instance: q.get("instance") || undefined,
    tail,
    since,
    follow,
    signal: req.signal,
  });
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      const { value, done } = await records.next();
      if (done) c.close();
      else c.enqueue(enc.encode(JSON.stringify(value) + "\n"));
    },
    async cancel() {
      await records.return(undefined);
    },
  });
  return new Response(body, { headers: { "content-type": "application/x-ndjson" } });
}

async function namespace(deps: ProviderRouteDeps, req: Request, name: string): Promise<Response> {
  if (req.method === "GET") {
    if (!name) return json(await deps.namespaces.list());
    return json(await deps.namespaces.get(name));
  }
  if (req.method === "DELETE") {
    await deps.namespaces.delete(name);
    return accepted();
  }
  const body = await readJson(req) as {
    name?: string;
    labels?: Record<string, string> | null;
    annotations?: Record<string, string> | null;
  };
  const ns = {
    name: body.name || name,
    labels: body.labels ?? {},
    annotations: body.annotations ?? {},
  };
  if (req.method === "POST" && name === "") {
    await deps.namespaces.create(ns);
    return new Response(null, { status: 201 });
  }
  if (req.method === "PUT") {
    if (body.name && body.name !== name) {
      throw new InvalidArgumentError(
        `namespace in the body ("${body.name}") does not match the path ("${name}")`,
      );
    }
    await deps.namespaces.update(ns);
    return accepted();
  }
  throw new NotFoundError(`no route for ${req.method} /system/namespace/${name}`);
}

/** The largest JSON body the provider API reads (a secret's value is the biggest thing sent). */
export const MAX_JSON_BYTES = 16 * 1024 * 1024;

async function readJson(req: Request): Promise<unknown> {
  const declared = Number(req.headers.get("content-length") ?? 0);
  if (declared > MAX_JSON_BYTES) throw jsonTooLarge();
  const bytes = req.body
    ? await collectBytes(req.body, { limit: MAX_JSON_BYTES }).catch((err) => {
      throw err instanceof InvalidArgumentError ? jsonTooLarge() : err;
    })
    : new Uint8Array();
  const text = new TextDecoder().decode(bytes);
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidArgumentError("request body is not valid JSON");
  }
}

// faas-cli sends `secret create --from-file` as standard base64 (Go's StdEncoding).
function decodeBase64(raw: unknown, name: string): Uint8Array {
  if (typeof raw !== "string" || raw.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(raw)) {
    throw new InvalidArgumentError(`rawValue of secret "${name}" is not standard base64`);
  }
  return Uint8Array.from(atob(raw), (c) => c.charCodeAt(0));
}

function jsonTooLarge(): PayloadTooLargeError {
  return new PayloadTooLargeError(`request body is larger than ${MAX_JSON_BYTES} bytes`);
}

function withNamespace(body: unknown, q: URLSearchParams): unknown {
  const b = (body ?? {}) as Partial<FunctionDeployment>;
  if (!b.namespace && q.get("namespace")) return { ...b, namespace: q.get("namespace") };
  return b;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function accepted(): Response {
  return new Response(null, { status: 202 });
}
