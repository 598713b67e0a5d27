/**
 * The Prometheus text exposition format, version 0.0.4: escaping of help text and label values,
 * sample values, and label sets. Pure functions; the registry renders its families with them.
 */

/** The `Content-Type` of a scrape response. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Whether `name` may name a metric. */
export function isMetricName(name: string): boolean {
  return METRIC_NAME.test(name);
}

/** Whether `name` may name a label (names starting with `__` are reserved). */
export function isLabelName(name: string): boolean {
  return LABEL_NAME.test(name) && !name.startsWith("__");
}

/** Escapes a `# HELP` text: backslash and line feed. */
export function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => c === "\\" ? "\\\\" : "\\n");
}

/** Escapes a label value: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => c === "\\" ? "\\\\" : c === "\n" ? "\\n" : '\\"');
}

/** A sample value as the format writes it (`+Inf`, `-Inf`, `NaN` for the special ones). */
export function formatValue(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (Number.isNaN(v)) return "NaN";
  return String(v);
}

/** The inside of a label set, `a="x",b="y"` (no braces), for names and values in order. */
export function labelPairs(names: readonly string[], values: readonly string[]): string {
  let out = "";
  for (let i = 0; i < names.length; i++) {
    if (i > 0) out += ",";
    out += `${names[i]}="${escapeLabelValue(values[i])}"`;
  }
  return out;
}

/** `{pairs}`, or nothing when there are no labels. */
export function braces(pairs: string): string {
  return pairs === "" ? "" : `{${pairs}}`;
}

/** The `# HELP` and `# TYPE` lines of a family. */
export function header(name: string, help: string, type: string): string {
  return `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;
}
