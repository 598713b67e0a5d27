/**
 * The UI's form posts: reading a bounded `application/x-www-form-urlencoded` body, and turning the
 * deploy form's fields (env, labels and annotations as `KEY=VALUE` lines) into the deployment the
 * API takes. Everything else is checked by the API itself.
 */

import { collectBytes } from "../bytes.ts";
import { InvalidArgumentError, PayloadTooLargeError } from "../errors.ts";
import type { FunctionDeployment } from "../provider/types.ts";

/** The largest form body accepted; env values are the biggest thing a form carries. */
export const MAX_FORM_BYTES = 1024 * 1024;

/** Reads a URL-encoded form body. */
export async function readForm(req: Request): Promise<URLSearchParams> {
  const type = req.headers.get("content-type") ?? "";
  if (!type.toLowerCase().startsWith("application/x-www-form-urlencoded")) {
    throw new InvalidArgumentError(
      `a form must be sent as application/x-www-form-urlencoded, not "${type}"`,
    );
  }
  if (Number(req.headers.get("content-length") ?? 0) > MAX_FORM_BYTES) throw formTooLarge();
  const bytes = req.body
    ? await collectBytes(req.body, { limit: MAX_FORM_BYTES }).catch((err) => {
      throw err instanceof InvalidArgumentError ? formTooLarge() : err;
    })
    : new Uint8Array();
  return new URLSearchParams(new TextDecoder().decode(bytes));
}

function formTooLarge(): PayloadTooLargeError {
  return new PayloadTooLargeError(`the form is larger than ${MAX_FORM_BYTES} bytes`);
}

/**
 * Parses `KEY=VALUE` lines (the value may contain "="); blank lines and lines starting with "#"
 * are skipped. `what` names the field in errors.
 */
export function parseKeyValueLines(text: string, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq < 0) {
      throw new InvalidArgumentError(
        `${what}, line ${i + 1}: "${line}" is not KEY=VALUE`,
      );
    }
    const key = line.slice(0, eq).trim();
    if (key === "") throw new InvalidArgumentError(`${what}, line ${i + 1}: the key is empty`);
    if (Object.hasOwn(out, key)) {
      throw new InvalidArgumentError(`${what}, line ${i + 1}: "${key}" is given twice`);
    }
    out[key] = line.slice(eq + 1);
  }
  return out;
}

/** The deploy form's fields as they were typed, to render the form again after an error. */
export interface DeployFields {
  image: string;
  name: string;
  namespace: string;
  envProcess: string;
  env: string;
  labels: string;
  annotations: string;
  secrets: string[];
}

/** Reads the deploy form's fields. */
export function deployFields(form: URLSearchParams): DeployFields {
  const get = (k: string) => form.get(k) ?? "";
  return {
    image: get("image").trim(),
    name: get("name").trim(),
    namespace: get("namespace").trim(),
    envProcess: get("envProcess").trim(),
    env: get("env"),
    labels: get("labels"),
    annotations: get("annotations"),
    secrets: form.getAll("secrets").filter((s) => s !== ""),
  };
}

/** Turns the deploy form's fields into the body of `POST /system/functions`. */
export function toDeployment(f: DeployFields): FunctionDeployment {
  const dep: FunctionDeployment = { service: f.name, image: f.image, namespace: f.namespace };
  if (f.envProcess) dep.envProcess = f.envProcess;
  const envVars = parseKeyValueLines(f.env, "environment");
  if (Object.keys(envVars).length > 0) dep.envVars = envVars;
  const labels = parseKeyValueLines(f.labels, "labels");
  if (Object.keys(labels).length > 0) dep.labels = labels;
  const annotations = parseKeyValueLines(f.annotations, "annotations");
  if (Object.keys(annotations).length > 0) dep.annotations = annotations;
  if (f.secrets.length > 0) dep.secrets = f.secrets;
  return dep;
}
