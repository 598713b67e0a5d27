/**
 * `faasd service logs`: a service's output as the provider's log collector keeps it
 * (`<log dir>/<ns>/<name>/<name>.jsonl`, rotated to `.jsonl.1`), plus what the collector has not
 * read yet from the raw file; with `follow`, new records as they are collected.
 */

import { open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { LogRecord } from "../provider/logs.ts";

const POLL_MS = 300;

/** Writes a service's log lines (`<timestamp> <text>`) until done, or until `signal` aborts when following. */
export async function readServiceLogs(
  opts: {
    logDir: string;
    namespace: string;
    name: string;
    follow: boolean;
    signal?: AbortSignal;
    write(text: string): void;
  },
): Promise<void> {
  const dir = join(opts.logDir, opts.namespace, opts.name);
  const jsonl = join(dir, `${opts.name}.jsonl`);
  const format = (text: string) =>
    text.split("\n").filter((l) => l !== "").map((l) => {
      const r = JSON.parse(l) as LogRecord;
      return `${r.timestamp} ${r.text}\n`;
    }).join("");
  opts.write(format(await readFile(`${jsonl}.1`, "utf8").catch(() => "")));
  let offset = 0;
  const readNew = async () => {
    const size = await stat(jsonl).then((s) => s.size, () => 0);
    if (size < offset) offset = 0; // rotated
    if (size === offset) return;
    const fh = await open(jsonl, "r");
    try {
      const buf = new Uint8Array(size - offset);
      await fh.read(buf, 0, buf.length, offset);
      const end = buf.lastIndexOf(10) + 1;
      offset += end;
      opts.write(format(new TextDecoder().decode(buf.subarray(0, end))));
    } finally {
      await fh.close();
    }
  };
  await readNew();
  if (!opts.follow) {
    // Lines the collector has not stamped yet (or all of them while the appliance is down).
    const raw = join(dir, `${opts.name}.log`);
    const pos = Number(await readFile(join(dir, `.${opts.name}.pos`), "utf8").catch(() => "0")) ||
      0;
    const text = await readFile(raw).then(
      (b) => new TextDecoder().decode(b.subarray(pos)),
      () => "",
    );
    const now = new Date().toISOString();
    opts.write(text.split("\n").filter((l) => l !== "").map((l) => `${now} ${l}\n`).join(""));
    return;
  }
  while (!opts.signal?.aborted) {
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, POLL_MS);
      opts.signal?.addEventListener("abort", () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });
    await readNew();
  }
}
