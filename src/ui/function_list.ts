/** The function list: a namespace selector and a table that refreshes itself as a fragment. */

import type { FunctionStatus } from "../provider/types.ts";
import { type Html, html, option, query } from "./html.ts";
import { page } from "./layout.ts";

/** A function's state as a badge: Ready, Not ready, or Scaled to zero. */
export function statusBadge(fn: Pick<FunctionStatus, "replicas" | "availableReplicas">): Html {
  if (fn.availableReplicas > 0) return html`<span class="badge ready">Ready</span>`;
  if (fn.replicas === 0) return html`<span class="badge idle">Scaled to zero</span>`;
  return html`<span class="badge not-ready">Not ready</span>`;
}

/** The link to a function's page. */
export function functionHref(name: string, namespace: string): string {
  return `/ui/function/${encodeURIComponent(name)}${query({ namespace })}`;
}

/** The table of functions (the fragment `/ui/fragment/functions` serves). */
export function functionTable(functions: FunctionStatus[], namespace: string): Html {
  if (functions.length === 0) {
    const deploy = `/ui/deploy${query({ namespace })}`;
    return html`
      <p class="muted" id="no-functions">
        No functions in namespace <code>${namespace}</code> yet. <a href="${deploy}">Deploy one</a>.
      </p>
    `;
  }
  const rows = functions.map((fn) =>
    html`
      <tr data-function="${fn.name}">
        <td><a href="${functionHref(fn.name, namespace)}">${fn.name}</a></td>
        <td class="status">${statusBadge(fn)}</td>
        <td class="replicas">${fn.availableReplicas}/${fn.replicas}</td>
        <td class="invocations">${fn.invocationCount}</td>
        <td class="mono">${fn.image}</td>
      </tr>
    `
  );
  return html`
    <div class="scroll">
      <table id="functions">
        <thead>
          <tr>
            <th>Name</th>
            <th>Status</th>
            <th title="available/desired">Replicas</th>
            <th>Invocations</th>
            <th>Image</th>
          </tr>
        </thead>
        <tbody>${rows}</tbody>
      </table>
    </div>
  `;
}

/** The list page. */
export function functionListPage(p: {
  functions: FunctionStatus[];
  namespace: string;
  namespaces: string[];
  flash?: string;
  error?: string;
}): Html {
  const namespaces = p.namespaces.includes(p.namespace)
    ? p.namespaces
    : [p.namespace, ...p.namespaces];
  const options = namespaces.map((ns) => option(ns, ns === p.namespace));
  const here = query({ namespace: p.namespace });
  return page({
    title: "Functions",
    namespace: p.namespace,
    flash: p.flash,
    error: p.error,
    body: html`
      <h1>Functions</h1>
      <section>
        <form class="inline" method="get" action="/ui/">
          <div>
            <label for="namespace">Namespace</label>
            <select id="namespace" name="namespace" data-autosubmit>${options}</select>
          </div>
          <button type="submit">Show</button>
          <a class="button" href="/ui/deploy${here}">Deploy a function</a>
        </form>
      </section>
      <section data-refresh="/ui/fragment/functions${here}">
        ${functionTable(p.functions, p.namespace)}
      </section>
    `,
  });
}
