/** `faasd image`: pull, import, ls, rm and prune, on containerd through our own client. */

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import process from "node:process";
import { Readable } from "node:stream";
import { Containerd } from "../containerd/client.ts";
import { NotFoundError, UsageError } from "../errors.ts";
import { parsePlatform } from "../images/platform.ts";
import { createImageService } from "../images/service.ts";
import { createLogger } from "../log.ts";
import { DEFAULT_NAMESPACE } from "../provider/types.ts";
import { type Command, commandConfig, type CommandContext, COMMON_FLAGS } from "./command.ts";
import { formatBytes, plainProgress, ttyProgress } from "./progress.ts";

/** Creates the `image` command. */
export function imageCommand(): Command {
  const cmd: Command = {
    name: "image",
    summary: "pull, import, list, remove and prune container images",
    usage: "faasd image (pull REF | import FILE | ls | rm REF... | prune) [options]",
    description: `
Manages container images in containerd with faasd's own registry client.
  pull REF      pull from the image's registry (or a mirror in <data-dir>/registries.yaml),
                with credentials from <data-dir>/.docker/config.json (faasd registry login)
  import FILE   import a docker save or OCI-layout tarball, gzip or not ("-" reads stdin)
  ls            list images with size, platform and whether they are unpacked
  rm REF...     remove images
  prune         remove every image no container uses, and report the space freed`,
    flags: {
      ...COMMON_FLAGS,
      namespace: {
        type: "string",
        valueName: "NS",
        description: "containerd namespace",
        defaultText: DEFAULT_NAMESPACE,
      },
      platform: {
        type: "string",
        valueName: "OS/ARCH[/VARIANT]",
        description: "platform to pull or import (linux/amd64, linux/arm64, linux/arm/v7)",
        defaultText: "this host's",
      },
      json: { type: "boolean", description: "ls: print JSON" },
    },
    positionals: true,
    run: (ctx) => runImage(cmd, ctx),
  };
  return cmd;
}

async function runImage(cmd: Command, ctx: CommandContext): Promise<number> {
  const { values, io } = ctx;
  const [sub, ...args] = ctx.positionals;
  const want = (n: number, what: string) => {
    if (args.length < n) throw new UsageError(`image ${sub} needs ${what}`);
    if (n === 1 && args.length > 1) throw new UsageError(`unexpected argument "${args[1]}"`);
  };
  const known = ["pull", "import", "ls", "rm", "prune"];
  if (!sub || !known.includes(sub)) {
    throw new UsageError(sub ? `unknown image subcommand "${sub}"` : "missing subcommand");
  }
  if (sub === "pull") want(1, "an image reference");
  if (sub === "import") want(1, "a file (or - for stdin)");
  if (sub === "rm") want(1, "at least one image reference");
  if ((sub === "ls" || sub === "prune") && args.length > 0) {
    throw new UsageError(`unexpected argument "${args[0]}"`);
  }
  const platform = values.platform ? parsePlatform(String(values.platform)) : undefined;
  const config = commandConfig(cmd, ctx);
  const namespace = String(values.namespace ?? DEFAULT_NAMESPACE);
  const log = createLogger({ level: config.logLevel });
  const containerd = await Containerd.connect({ socket: config.containerdSocket });
  try {
    await containerd.namespaces.ensure(namespace);
    const images = createImageService({ containerd, dataDir: config.dataDir, log });
    const started = performance.now();
    const took = () => `${((performance.now() - started) / 1000).toFixed(2)}s`;
    switch (sub) {
      case "pull": {
        const tty = io.isTty ? ttyProgress(io.out) : undefined;
        const r = await images.pull(args[0], {
          namespace,
          platform,
          progress: tty ?? plainProgress(io.out),
        });
        tty?.finish();
        io.out(
          `pulled ${r.name} ${r.target.digest} (${r.platform}, ${r.layers.length} layers, ${
            formatBytes(r.downloadedBytes)
          } downloaded) in ${took()}\n`,
        );
        return 0;
      }
      case "import": {
        const source = args[0] === "-" ? "stdin" : args[0];
        const input = args[0] === "-" ? process.stdin : await openFile(args[0]);
        const r = await images.import(Readable.toWeb(input) as ReadableStream<Uint8Array>, {
          namespace,
          platform,
          source,
        });
        for (const img of r.images) {
          io.out(
            `imported ${img.name} ${img.target.digest} (${img.platform}, ${img.layers.length} layers)\n`,
          );
        }
        io.out(
          `imported ${r.images.length} image${r.images.length === 1 ? "" : "s"} in ${took()}\n`,
        );
        return 0;
      }
      case "ls": {
        const rows = await images.list(namespace);
        if (values.json) {
          io.out(JSON.stringify(rows) + "\n");
          return 0;
        }
        const table = [
          ["NAME", "DIGEST", "SIZE", "PLATFORM", "UNPACKED"],
          ...rows.map((r) => [
            r.name,
            r.digest.replace(/^sha256:/, "").slice(0, 12),
            r.size === undefined ? "-" : formatBytes(r.size),
            r.platform ?? "-",
            r.unpacked ? "yes" : "no",
          ]),
        ];
        const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
        for (const row of table) {
          io.out(row.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd() + "\n");
        }
        return 0;
      }
      case "rm": {
        let failed = 0;
        for (const ref of args) {
          try {
            io.out(`removed ${await images.remove(ref, namespace)}\n`);
          } catch (err) {
            if (!(err instanceof NotFoundError)) throw err;
            io.err(`faasd image rm: ${err.message}\n`);
            failed++;
          }
        }
        return failed > 0 ? 1 : 0;
      }
      default: {
        const r = await images.prune(namespace);
        for (const name of r.removed) io.out(`removed ${name}\n`);
        io.out(
          `pruned ${r.removed.length} image${r.removed.length === 1 ? "" : "s"}, freed ${
            formatBytes(r.bytesFreed)
          }\n`,
        );
        return 0;
      }
    }
  } finally {
    await containerd.close();
  }
}

async function openFile(path: string) {
  const info = await stat(path).catch((err) => {
    throw new NotFoundError(`cannot read "${path}": ${(err as Error).message}`, { cause: err });
  });
  if (!info.isFile()) throw new UsageError(`"${path}" is not a file`);
  return createReadStream(path);
}
