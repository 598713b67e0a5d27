/**
 * `deno task bench [scenario...]`: runs benchmark scenarios, prints a table per scenario and
 * writes the JSON results to bench/results/. Exit codes: 0 ok, 1 a scenario failed, 2 usage.
 */

import { fileURLToPath } from "node:url";
import process from "node:process";
import { parseArgs } from "node:util";
import type { Scenario, ScenarioContext } from "./harness.ts";
import { machineFacts, report, type ScenarioResult, summarizeFigures } from "./report.ts";
import { containerdScenario } from "./scenarios/containerd.ts";
import { imagesScenario } from "./scenarios/images.ts";
import { gatewayScenario } from "./scenarios/gateway.ts";
import { providerScenario } from "./scenarios/provider.ts";
import { queueJetStreamScenario } from "./scenarios/queue_jetstream.ts";

/** Every scenario, in the order they run by default. */
export function scenarios(): Scenario[] {
  return [
    containerdScenario(),
    imagesScenario(),
    providerScenario(),
    gatewayScenario(),
    queueJetStreamScenario(),
  ];
}

const DEFAULT_SOCKET = "/run/containerd/containerd.sock";

const USAGE = `Usage: deno task bench [options] [scenario...]

Runs the named scenarios (all when none is named), prints median/p95/min/max per figure and
writes JSON results to bench/results/.

Options:
  --iterations N   timed iterations per figure (default: each figure's own, e.g. 200 for RPCs)
  --socket PATH    containerd's socket (default: ${DEFAULT_SOCKET})
  --list           list the scenarios and exit
  -h, --help       show this help
`;

/** Output sinks, passed in so the runner never reaches for globals. */
export interface BenchIo {
  out(s: string): void;
  err(s: string): void;
}

/** Parses `argv`, runs the scenarios and returns the exit code. */
export async function runBench(argv: string[], io: BenchIo, resultsDir: string): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        iterations: { type: "string" },
        socket: { type: "string", default: DEFAULT_SOCKET },
        list: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    io.err(`bench: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const all = scenarios();
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (values.list) {
    const width = Math.max(...all.map((s) => s.name.length)) + 2;
    for (const s of all) io.out(`${s.name.padEnd(width)}${s.description}\n`);
    return 0;
  }
  let iterations: number | undefined;
  if (values.iterations !== undefined) {
    iterations = Number(values.iterations);
    if (!Number.isInteger(iterations) || iterations < 1) {
      io.err(`bench: --iterations must be a positive integer, got "${values.iterations}"\n`);
      return 2;
    }
  }
  const unknown = positionals.filter((p) => !all.some((s) => s.name === p));
  if (unknown.length > 0) {
    io.err(
      `bench: unknown scenario ${unknown.map((u) => `"${u}"`).join(", ")}; known scenarios: ${
        all.map((s) => s.name).join(", ")
      }\n`,
    );
    return 2;
  }
  const chosen = positionals.length ? all.filter((s) => positionals.includes(s.name)) : all;

  const results: ScenarioResult[] = [];
  let failed = false;
  for (const scenario of chosen) {
    const facts: Record<string, string> = {};
    const ctx: ScenarioContext = {
      iterations: (d) => iterations ?? d,
      facts,
      log: (m) => io.err(`[${scenario.name}] ${m}\n`),
      containerdSocket: values.socket,
    };
    const startedAt = new Date();
    try {
      const figures = await scenario.run(ctx);
      results.push({
        scenario: scenario.name,
        description: scenario.description,
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        machine: machineFacts(facts),
        facts,
        figures: summarizeFigures(figures),
      });
    } catch (err) {
      failed = true;
      io.err(`bench: scenario "${scenario.name}" failed: ${(err as Error).stack ?? err}\n`);
    }
  }
  if (results.length > 0) {
    const paths = await report(results, { dir: resultsDir, out: io.out });
    io.err(`\nwrote ${paths.join(", ")}\n`);
  }
  return failed ? 1 : 0;
}

if (import.meta.main) {
  const dir = fileURLToPath(new URL("./results/", import.meta.url));
  process.exitCode = await runBench(process.argv.slice(2), {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
  }, dir);
}
