/** The deploy form: image, name, namespace, fprocess, env, labels, annotations and secrets. */

import type { DeployFields } from "./forms.ts";
import { type Html, html, option, query } from "./html.ts";
import { page } from "./layout.ts";

/** Empty fields for a namespace. */
export function emptyDeployFields(namespace: string): DeployFields {
  return {
    image: "",
    name: "",
    namespace,
    envProcess: "",
    env: "",
    labels: "",
    annotations: "",
    secrets: [],
  };
}

function secretPicker(secrets: string[], chosen: string[]): Html {
  if (secrets.length === 0) {
    return html`
      <p class="muted">
        No secrets in this namespace (create them with <code>faas-cli secret create</code>).
      </p>
    `;
  }
  const size = Math.min(6, Math.max(3, secrets.length));
  const options = secrets.map((s) => option(s, chosen.includes(s)));
  return html`<select id="secrets" name="secrets" multiple size="${size}">${options}</select>`;
}

/** The deploy page; `fields` keeps what was typed when the API refused it (`error`). */
export function deployPage(p: {
  fields: DeployFields;
  namespaces: string[];
  /** The secrets of the chosen namespace. */
  secrets: string[];
  error?: string;
}): Html {
  const f = p.fields;
  const namespaces = p.namespaces.includes(f.namespace)
    ? p.namespaces
    : [f.namespace, ...p.namespaces];
  const nsOptions = namespaces.map((ns) => option(ns, ns === f.namespace));
  return page({
    title: "Deploy",
    namespace: f.namespace,
    error: p.error,
    body: html`
      <h1>Deploy a function</h1>
      <section>
        <form method="get" action="/ui/deploy" class="inline">
          <div>
            <label for="ns-pick">Namespace</label>
            <select id="ns-pick" name="namespace" data-autosubmit>${nsOptions}</select>
          </div>
          <button type="submit">Use namespace</button>
        </form>
      </section>
      <section>
        <form method="post" action="/ui/deploy" id="deploy">
          <input type="hidden" name="namespace" value="${f.namespace}">
          <div class="grid">
            <div>
              <label for="image">Image</label>
              <input
                type="text"
                id="image"
                name="image"
                required
                placeholder="ghcr.io/openfaas/figlet:latest"
                value="${f.image}"
              >
            </div>
            <div>
              <label for="name">Name</label>
              <input
                type="text"
                id="name"
                name="name"
                required
                placeholder="figlet"
                value="${f.name}"
              >
            </div>
          </div>
          <label for="envProcess">fprocess <span class="muted">(optional)</span></label>
          <input type="text" id="envProcess" name="envProcess" value="${f.envProcess}">
          <div class="grid">
            <div>
              <label for="env">Environment <span class="muted">KEY=VALUE, one a line</span></label>
              <textarea id="env" name="env">${f.env}</textarea>
            </div>
            <div>
              <label for="labels">Labels <span class="muted">KEY=VALUE</span></label>
              <textarea id="labels" name="labels">${f.labels}</textarea>
            </div>
            <div>
              <label for="annotations">Annotations <span class="muted">KEY=VALUE</span></label>
              <textarea id="annotations" name="annotations">${f.annotations}</textarea>
            </div>
            <div>
              <label for="secrets">Secrets <span class="muted">in ${f.namespace}</span></label>
              ${secretPicker(p.secrets, f.secrets)}
            </div>
          </div>
          <p>
            <button type="submit">Deploy</button>
            <a href="/ui/${query({ namespace: f.namespace })}">Cancel</a>
          </p>
        </form>
      </section>
    `,
  });
}
