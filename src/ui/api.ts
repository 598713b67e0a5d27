/**
 * The UI's view of the appliance: typed calls to the same HTTP routes faas-cli uses, made
 * in-process with synthetic Requests, so validation and error messages are the API's own.
 */

import type { FunctionDeployment, FunctionStatus } from "../provider/types.ts";

/** A fetch-style handler serving the provider API (`/system/*`). */
export type ApiHandler = (req: Request) => Promise<Response>;

/** An answer from the API that was not a success: its status and the message it gave. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** A secret as `GET /system/secrets` lists it. */
export interface SecretInfo {
  name: string;
  namespace?: string;
}

/** Typed calls to the API, each carrying the caller's (already checked) credentials. */
export class UiApi {
  readonly #handler: ApiHandler;
  readonly #authorization: string | null;

  constructor(handler: ApiHandler, from: Request) {
    this.#handler = handler;
    this.#authorization = from.headers.get("authorization");
  }

  /** The functions of a namespace. */
  async listFunctions(namespace: string): Promise<FunctionStatus[]> {
    return await (await this.#call("GET", `/system/functions${ns(namespace)}`)).json();
  }

  /** One function's status. */
  async getFunction(name: string, namespace: string): Promise<FunctionStatus> {
    const path = `/system/function/${encodeURIComponent(name)}${ns(namespace)}`;
    return await (await this.#call("GET", path)).json();
  }

  /** The namespaces functions may use. */
  async listNamespaces(): Promise<string[]> {
    return await (await this.#call("GET", "/system/namespaces")).json();
  }

  /** The secrets of a namespace (names only). */
  async listSecrets(namespace: string): Promise<SecretInfo[]> {
    return await (await this.#call("GET", `/system/secrets${ns(namespace)}`)).json();
  }

  /** Deploys a new function (`POST /system/functions`). */
  async deploy(dep: FunctionDeployment): Promise<void> {
    await this.#call("POST", "/system/functions", dep);
  }

  /** Sets a function's replica count (a string is passed on for the API to check and refuse). */
  async scale(name: string, namespace: string, replicas: number | string): Promise<void> {
    await this.#call("POST", `/system/scale-function/${encodeURIComponent(name)}`, {
      serviceName: name,
      namespace,
      replicas,
    });
  }

  /** Deletes a function. */
  async remove(name: string, namespace: string): Promise<void> {
    await this.#call("DELETE", "/system/functions", { functionName: name, namespace });
  }

  /** Follows a function's logs: the API's NDJSON response; `signal` ends the follow. */
  async followLogs(
    name: string,
    namespace: string,
    tail: number,
    signal: AbortSignal,
  ): Promise<Response> {
    const q = new URLSearchParams({ name, namespace, tail: String(tail), follow: "true" });
    return await this.#call("GET", `/system/logs?${q}`, undefined, signal);
  }

  async #call(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
  ): Promise<Response> {
    const headers = new Headers();
    if (this.#authorization) headers.set("authorization", this.#authorization);
    if (body !== undefined) headers.set("content-type", "application/json");
    const res = await this.#handler(
      new Request(`http://ui.internal${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      }),
    );
    if (res.ok) return res;
    const text = (await res.text()).trim();
    throw new ApiError(res.status, text || `${method} ${path} answered ${res.status}`);
  }
}

function ns(namespace: string): string {
  return `?namespace=${encodeURIComponent(namespace)}`;
}
