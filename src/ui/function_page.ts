/**
 * A function's page: its status (a fragment that refreshes itself), the invoke panel, live logs,
 * scaling and deletion; and the page that confirms a deletion.
 */

import type { FunctionStatus } from "../provider/types.ts";
import { functionHref, statusBadge } from "./function_list.ts";
import { type Html, html, query } from "./html.ts";
import { page } from "./layout.ts";

const METHODS = ["POST", "GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const NONE = html`<span class="muted">none</span>`;

function pairs(map: Record<string, string> | undefined, id: string): Html {
  const entries = Object.entries(map ?? {});
  if (entries.length === 0) return NONE;
  return html`<pre id="${id}">${entries.map(([k, v]) => `${k}=${v}`).join("\n")}</pre>`;
}

/** The status block (the fragment `/ui/fragment/function` serves). */
export function functionStatus(fn: FunctionStatus): Html {
  const fprocess = fn.envProcess
    ? html`
      <dt>fprocess</dt>
      <dd class="mono">${fn.envProcess}</dd>
    `
    : "";
  return html`
    <dl>
      <dt>Status</dt><dd id="status">${statusBadge(fn)}</dd>
      <dt>Replicas</dt><dd id="replicas">${fn.replicas}</dd>
      <dt>Available</dt><dd id="available">${fn.availableReplicas}</dd>
      <dt>Invocations</dt><dd id="invocations">${fn.invocationCount}</dd>
      <dt>Image</dt><dd class="mono" id="image">${fn.image}</dd>
      <dt>Namespace</dt><dd>${fn.namespace}</dd>
      ${fprocess}
      <dt>Created</dt><dd>${fn.createdAt}</dd>
      <dt>Environment</dt><dd>${pairs(fn.envVars, "env")}</dd>
      <dt>Labels</dt><dd>${pairs(fn.labels, "labels")}</dd>
      <dt>Annotations</dt><dd>${pairs(fn.annotations, "annotations")}</dd>
      <dt>Secrets</dt><dd id="secrets">${fn.secrets?.length ? fn.secrets.join(", ") : NONE}</dd>
    </dl>
  `;
}

/** The function's page. */
export function functionPage(p: { fn: FunctionStatus; flash?: string; error?: string }): Html {
  const { fn } = p;
  const ns = fn.namespace;
  const self = { name: fn.name, namespace: ns };
  const target = `/function/${encodeURIComponent(fn.name)}.${encodeURIComponent(ns)}`;
  const methods = METHODS.map((m) => html`<option>${m}</option>`);
  return page({
    title: fn.name,
    namespace: ns,
    flash: p.flash,
    error: p.error,
    body: html`
      <h1>${fn.name} <span class="muted">${ns}</span></h1>
      <section data-refresh="/ui/fragment/function${query(self)}">
        ${functionStatus(fn)}
      </section>
      <section>
        <h2>Invoke</h2>
        <form id="invoke" data-target="${target}">
          <div class="grid">
            <div>
              <label for="invoke-method">Method</label>
              <select id="invoke-method">${methods}</select>
            </div>
            <div>
              <label for="invoke-path">Path</label>
              <input type="text" id="invoke-path" value="/">
            </div>
            <div>
              <label for="invoke-type">Content type</label>
              <input type="text" id="invoke-type" value="text/plain">
            </div>
          </div>
          <label for="invoke-body-in">Body</label>
          <textarea id="invoke-body-in"></textarea>
          <p>
            <button type="submit">Invoke</button> <span class="muted mono">${target}</span>
          </p>
        </form>
        <div id="invoke-result" hidden>
          <dl>
            <dt>Status</dt>
            <dd id="invoke-status"></dd>
            <dt>Latency</dt>
            <dd id="invoke-latency"></dd>
          </dl>
          <label>Response headers</label>
          <pre id="invoke-headers"></pre>
          <label>Response body</label>
          <pre id="invoke-body"></pre>
        </div>
      </section>
      <section>
        <h2>Logs <span class="muted" id="logs-state">not started (needs JavaScript)</span></h2>
        <pre id="logs" data-src="/ui/logs${query({ ...self, tail: "100" })}"></pre>
      </section>
      <section>
        <h2>Scale</h2>
        <form class="inline" method="post" action="/ui/scale">
          <input type="hidden" name="name" value="${fn.name}">
          <input type="hidden" name="namespace" value="${ns}">
          <div>
            <label for="scale-replicas">Replicas</label>
            <input
              type="number"
              id="scale-replicas"
              name="replicas"
              min="0"
              step="1"
              value="${fn.replicas}"
              required
            >
          </div>
          <button type="submit">Scale</button>
        </form>
      </section>
      <section>
        <h2>Delete</h2>
        <a class="button danger" id="delete" href="/ui/delete${query(self)}">Delete ${fn.name}…</a>
      </section>
    `,
  });
}

/** Asks for confirmation before a function is deleted. */
export function deletePage(p: { name: string; namespace: string; error?: string }): Html {
  return page({
    title: `Delete ${p.name}`,
    namespace: p.namespace,
    error: p.error,
    body: html`
      <h1>Delete ${p.name}?</h1>
      <section>
        <p>
          This removes the function <code>${p.name}</code> from namespace
          <code>${p.namespace}</code>, stops its replicas and drops its logs. It cannot be undone.
        </p>
        <form class="inline" method="post" action="/ui/delete">
          <input type="hidden" name="name" value="${p.name}">
          <input type="hidden" name="namespace" value="${p.namespace}">
          <button type="submit" class="danger" id="confirm-delete">Delete</button>
          <a href="${functionHref(p.name, p.namespace)}">Cancel</a>
        </form>
      </section>
    `,
  });
}
