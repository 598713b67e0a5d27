/** faasd-ts: OpenFaaS functions on containerd in one binary. See README.md. */

import process from "node:process";
import { buffer } from "node:stream/consumers";
import { runCli } from "./src/cli/main.ts";

if (import.meta.main) {
  const code = await runCli(process.argv.slice(2), process.env, {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    isTty: Boolean(process.stdout.isTTY),
    readStdin: async () => new Uint8Array(await buffer(process.stdin)),
  });
  process.exitCode = code;
}
