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
  // Exit now: a command that failed half-way may leave timers behind (a NATS client reconnecting,
  // grpc-js's channel), which would otherwise keep the process alive. stdout and stderr writes
  // are synchronous on Linux for files, pipes and terminals, so nothing written is lost.
  process.exit(code);
}
