/**
 * Pull progress for people: on a terminal, one line per layer redrawn in place; otherwise plain
 * lines as each step finishes, so logs and CI output stay readable.
 */

import type { PullProgress } from "../images/pull.ts";

/** Formats a byte count as B, KiB, MiB or GiB. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

const short = (digest: string) => digest.replace(/^sha256:/, "").slice(0, 12);

/** Plain lines: resolved, each layer when it is present or downloaded, unpacking. */
export function plainProgress(write: (s: string) => void): PullProgress {
  return {
    resolved: (name, root, host) => write(`resolved ${name} to ${root.digest} (from ${host})\n`),
    layer: (e) => {
      if (e.state === "present") write(`layer ${short(e.digest)}: already present\n`);
      if (e.state === "done") {
        write(`layer ${short(e.digest)}: downloaded ${formatBytes(e.size)}\n`);
      }
    },
    unpacking: (n) => write(`unpacking ${n} layer${n === 1 ? "" : "s"}\n`),
  };
}

/** A redrawn table of layers for a terminal, at most ten frames a second. */
export function ttyProgress(write: (s: string) => void): PullProgress & { finish(): void } {
  const layers = new Map<string, { size: number; bytes: number; state: string }>();
  let drawn = 0;
  let last = 0;
  const draw = (force = false) => {
    const now = Date.now();
    if (!force && now - last < 100) return;
    last = now;
    let out = drawn > 0 ? `\x1b[${drawn}A` : "";
    for (const [digest, l] of layers) {
      const pct = l.size > 0 ? Math.floor((l.bytes / l.size) * 100) : 100;
      const bar = "#".repeat(Math.floor(pct / 5)).padEnd(20, ".");
      const state = l.state === "present"
        ? "already present"
        : `${formatBytes(l.bytes)} / ${formatBytes(l.size)}`;
      out += `\x1b[2K${short(digest)} [${bar}] ${String(pct).padStart(3)}% ${state}\n`;
    }
    drawn = layers.size;
    write(out);
  };
  return {
    resolved: (name, root, host) => write(`resolved ${name} to ${root.digest} (from ${host})\n`),
    layer: (e) => {
      layers.set(e.digest, { size: e.size, bytes: e.bytes, state: e.state });
      draw(e.state !== "downloading");
    },
    unpacking: (n) => {
      draw(true);
      write(`unpacking ${n} layer${n === 1 ? "" : "s"}\n`);
      drawn = 0;
    },
    finish: () => draw(true),
  };
}
