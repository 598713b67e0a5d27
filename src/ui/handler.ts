/**
 * The web UI's routes under `/ui/` (the gateway checks basic auth first). Pages are rendered on
 * the server; form posts are checked for same-origin, call the API in-process and redirect
 * (post/redirect/get), or show the page again with the API's error message.
 */

import { InvalidArgumentError, MethodNotAllowedError, NotFoundError } from "../errors.ts";
import { statusFor } from "../gateway/errors.ts";
import type { Logger } from "../log.ts";
import { DEFAULT_NAMESPACE } from "../provider/types.ts";
import { ApiError, type ApiHandler, UiApi } from "./api.ts";
import { SCRIPT, STYLE } from "./assets.ts";
import { crossSiteReason, crossSiteRefused } from "./csrf.ts";
import { deployPage, emptyDeployFields } from "./deploy_form.ts";
import { deployFields, readForm, toDeployment } from "./forms.ts";
import { functionListPage, functionTable } from "./function_list.ts";
import { deletePage, functionPage, functionStatus } from "./function_page.ts";
import { type Html, html, query } from "./html.ts";
import { page } from "./layout.ts";

/** What the UI needs: the API's handler (called with the user's credentials) and a logger. */
export interface UiDeps {
  api: ApiHandler;
  log: Logger;
}

/** Success messages, chosen by a fixed key so a link cannot put words in the page. */
const DONE: Record<string, string> = {
  deployed: "Function deployed.",
  scaled: "Scale requested.",
  deleted: "Function deleted.",
};

const LOG_TAIL_MAX = 1000;

/** Builds the handler for `/ui` and everything under it. */
export function createUiHandler(deps: UiDeps): (req: Request) => Promise<Response> {
  const log = deps.log.child({ component: "ui" });
  return async (req) => {
    const url = new URL(req.url);
    const path = url.pathname;
    const q = url.searchParams;
    const api = new UiApi(deps.api, req);
    try {
      if (req.method === "POST") {
        const crossSite = crossSiteReason(req);
        if (crossSite) return crossSiteRefused(crossSite);
        if (path === "/ui/deploy") return await deploy(api, req);
        if (path === "/ui/scale") return await scale(api, req);
        if (path === "/ui/delete") return await remove(api, req);
        throw new NotFoundError(`no page for POST ${path}`);
      }
      if (req.method !== "GET" && req.method !== "HEAD") {
        throw new MethodNotAllowedError(`the UI answers GET and POST, not ${req.method}`);
      }
      const namespace = q.get("namespace") || DEFAULT_NAMESPACE;
      const done = DONE[q.get("done") ?? ""];
      if (path === "/ui") return redirect("/ui/");
      if (path === "/ui/") return await listPage(api, namespace, done);
      if (path === "/ui/style.css") return asset(STYLE, "text/css; charset=utf-8");
      if (path === "/ui/app.js") return asset(SCRIPT, "text/javascript; charset=utf-8");
      if (path === "/ui/fragment/functions") {
        return htmlResponse(functionTable(await api.listFunctions(namespace), namespace));
      }
      if (path === "/ui/fragment/function") {
        return htmlResponse(functionStatus(await api.getFunction(required(q, "name"), namespace)));
      }
      const fn = path.match(/^\/ui\/function\/([^/]+)$/);
      if (fn) {
        const name = decodePart(fn[1]);
        return htmlResponse(
          functionPage({ fn: await api.getFunction(name, namespace), flash: done }),
        );
      }
      if (path === "/ui/deploy") {
        return htmlResponse(await deployView(api, emptyDeployFields(namespace)));
      }
      if (path === "/ui/delete") {
        return htmlResponse(deletePage({ name: required(q, "name"), namespace }));
      }
      if (path === "/ui/logs") return await logs(api, q, namespace);
      throw new NotFoundError(`no page at ${path}`);
    } catch (err) {
      return errorPage(err, log);
    }
  };
}

async function listPage(api: UiApi, namespace: string, done?: string): Promise<Response> {
  const namespaces = await api.listNamespaces();
  try {
    const functions = await api.listFunctions(namespace);
    return htmlResponse(functionListPage({ functions, namespace, namespaces, flash: done }));
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    // An unknown namespace: the page still renders, so another one can be picked.
    return htmlResponse(
      functionListPage({ functions: [], namespace, namespaces, error: err.message }),
      err.status,
    );
  }
}

async function deployView(
  api: UiApi,
  fields: ReturnType<typeof emptyDeployFields>,
  error?: string,
): Promise<Html> {
  const [namespaces, secrets] = await Promise.all([
    api.listNamespaces(),
    api.listSecrets(fields.namespace).catch(() => []),
  ]);
  return deployPage({ fields, namespaces, secrets: secrets.map((s) => s.name), error });
}

async function deploy(api: UiApi, req: Request): Promise<Response> {
  const fields = deployFields(await readForm(req));
  if (!fields.namespace) fields.namespace = DEFAULT_NAMESPACE;
  try {
    await api.deploy(toDeployment(fields));
  } catch (err) {
    if (!(err instanceof ApiError || err instanceof InvalidArgumentError)) throw err;
    return htmlResponse(await deployView(api, fields, err.message), statusOf(err));
  }
  return redirect(`/ui/${query({ namespace: fields.namespace, done: "deployed" })}`);
}

async function scale(api: UiApi, req: Request): Promise<Response> {
  const form = await readForm(req);
  const name = required(form, "name");
  const namespace = form.get("namespace") || DEFAULT_NAMESPACE;
  try {
    const replicas = required(form, "replicas").trim();
    // The API checks the number and words the error.
    await api.scale(name, namespace, /^\d+$/.test(replicas) ? Number(replicas) : replicas);
  } catch (err) {
    if (!(err instanceof ApiError || err instanceof InvalidArgumentError)) throw err;
    const fn = await api.getFunction(name, namespace);
    return htmlResponse(functionPage({ fn, error: err.message }), statusOf(err));
  }
  return redirect(
    `/ui/function/${encodeURIComponent(name)}${query({ namespace, done: "scaled" })}`,
  );
}

async function remove(api: UiApi, req: Request): Promise<Response> {
  const form = await readForm(req);
  const name = required(form, "name");
  const namespace = form.get("namespace") || DEFAULT_NAMESPACE;
  try {
    await api.remove(name, namespace);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return htmlResponse(deletePage({ name, namespace, error: err.message }), err.status);
  }
  return redirect(`/ui/${query({ namespace, done: "deleted" })}`);
}

async function logs(api: UiApi, q: URLSearchParams, namespace: string): Promise<Response> {
  const tail = Math.min(Number(q.get("tail") ?? 100) || 0, LOG_TAIL_MAX);
  // Aborted when the browser goes away (the relayed stream is cancelled): a follow waiting for
  // the next line then ends at once instead of when the function next writes one.
  const stop = new AbortController();
  const res = await api.followLogs(required(q, "name"), namespace, Math.max(tail, 0), stop.signal);
  const reader = res.body!.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(c) {
      const { value, done } = await reader.read();
      if (done) c.close();
      else c.enqueue(value);
    },
    async cancel(reason) {
      stop.abort();
      await reader.cancel(reason);
    },
  });
  return new Response(body, {
    headers: {
      "content-type": "application/x-ndjson",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    },
  });
}

function decodePart(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new InvalidArgumentError(`"${s}" is not a valid URL path segment`);
  }
}

function required(q: URLSearchParams, key: string): string {
  const v = q.get(key);
  if (!v) throw new InvalidArgumentError(`"${key}" is required`);
  return v;
}

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "same-origin",
};

function htmlResponse(body: Html, status = 200): Response {
  return new Response(body.value.trim() + "\n", {
    status,
    headers: {
      ...SECURITY_HEADERS,
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
    },
  });
}

function asset(body: string, type: string): Response {
  return new Response(body, {
    headers: { "content-type": type, "cache-control": "max-age=300", ...SECURITY_HEADERS },
  });
}

function redirect(location: string): Response {
  return new Response(null, { status: 303, headers: { location } });
}

/** The API's own status for its answers, the gateway's mapping for our errors. */
function statusOf(err: unknown): number {
  return err instanceof ApiError ? err.status : statusFor(err);
}

function errorPage(err: unknown, log: Logger): Response {
  const status = statusOf(err);
  let message = err instanceof Error ? err.message : String(err);
  if (status === 500 && !(err instanceof ApiError)) {
    log.error("UI request failed", { err });
    message = "internal error, see the faasd log";
  }
  return htmlResponse(
    page({
      title: `Error ${status}`,
      error: message,
      body: html`<p><a href="/ui/">Back to the functions</a></p>`,
    }),
    status,
  );
}
