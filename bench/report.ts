/**
 * Benchmark reporting: an aligned text table per scenario and the JSON record of every run
 * (bench/results/<scenario>-<timestamp>.json plus latest.json).
 */

import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { type Figure, formatRatio, ratio, summarize, type Summary } from "./harness.ts";

/** Facts about the machine a run happened on. */
export interface MachineFacts {
  os: string;
  arch: string;
  cpus: number;
  cpuModel: string;
  memoryBytes: number;
  deno: string;
  v8: string;
  /** Present when the scenario reported it. */
  containerd?: string;
}

/** A figure with its statistics, as written to JSON. */
export interface FigureResult extends Summary {
  name: string;
  unit: "ms";
  baseline?: string;
  /** Median of this figure divided by the median of its baseline. */
  ratio?: number;
  samples: number[];
}

/** Everything one scenario run produced. */
export interface ScenarioResult {
  scenario: string;
  description: string;
  startedAt: string;
  finishedAt: string;
  machine: MachineFacts;
  facts: Record<string, string>;
  figures: FigureResult[];
}

/** Reads the machine facts; `facts.containerd` (a version) is copied in when present. */
export function machineFacts(facts: Record<string, string> = {}): MachineFacts {
  const cpus = os.cpus();
  const m: MachineFacts = {
    os: `${os.platform()} ${os.release()}`,
    arch: os.arch(),
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? "unknown",
    memoryBytes: os.totalmem(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
  };
  if (facts.containerd) m.containerd = facts.containerd;
  return m;
}

/** Adds statistics and baseline ratios to a scenario's figures. */
export function summarizeFigures(figures: readonly Figure[]): FigureResult[] {
  const medians = new Map(figures.map((f) => [f.name, summarize(f.samples).median]));
  return figures.map((f) => {
    const summary = summarize(f.samples);
    let compared: Pick<FigureResult, "baseline" | "ratio"> = {};
    if (f.baseline) {
      const base = medians.get(f.baseline);
      if (base === undefined) {
        throw new Error(
          `figure "${f.name}" names baseline "${f.baseline}", which was not measured`,
        );
      }
      compared = { baseline: f.baseline, ratio: ratio(summary.median, base) };
    }
    const { n, median, p95, min, max, mean } = summary;
    return {
      name: f.name,
      unit: f.unit,
      n,
      median: micros(median),
      p95: micros(p95),
      min: micros(min),
      max: micros(max),
      mean: micros(mean),
      ...compared,
      samples: f.samples.map(micros),
    };
  });
}

// Microsecond resolution is all performance.now() promises across runtimes.
function micros(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** Renders figures as an aligned table: names left, numbers (ms) right, ratio last. */
export function formatTable(figures: readonly FigureResult[]): string {
  const header = ["figure", "n", "median", "p95", "min", "max", "vs baseline"];
  const rows = figures.map((f) => [
    f.name,
    String(f.n),
    ms(f.median),
    ms(f.p95),
    ms(f.min),
    ms(f.max),
    f.baseline && f.ratio !== undefined ? `${formatRatio(f.ratio)} vs ${f.baseline}` : "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((
        c,
        i,
      ) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join("  ")
      .trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n") +
    "\n";
}

/** Formats milliseconds with two decimals (the table's unit is ms throughout). */
export function ms(value: number): string {
  return Number.isFinite(value) ? value.toFixed(2) : "-";
}

/** A file-name-safe ISO 8601 basic timestamp, e.g. `20250102T030405Z`. */
export function fileTimestamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}Z$/, "Z");
}

/**
 * Prints each result as a table to `out` and writes the JSON files into `dir`; returns the paths
 * written.
 */
export async function report(
  results: readonly ScenarioResult[],
  deps: { dir: string; out: (s: string) => void },
): Promise<string[]> {
  for (const r of results) {
    const m = r.machine;
    const versions = [`deno ${m.deno}`, m.containerd ? `containerd ${m.containerd}` : ""]
      .filter(Boolean).join(", ");
    deps.out(
      `\n${r.scenario}: ${r.description}\n${m.cpus} × ${m.cpuModel}, ${versions}; times in ms\n\n`,
    );
    deps.out(formatTable(r.figures));
  }
  await mkdir(deps.dir, { recursive: true });
  const paths: string[] = [];
  for (const r of results) {
    const path = join(deps.dir, `${r.scenario}-${fileTimestamp(new Date(r.startedAt))}.json`);
    await writeFile(path, JSON.stringify(r, null, 2) + "\n");
    paths.push(path);
  }
  const latest = join(deps.dir, "latest.json");
  await writeFile(latest, JSON.stringify({ results }, null, 2) + "\n");
  paths.push(latest);
  return paths;
}
