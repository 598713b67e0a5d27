import assert from "node:assert/strict";
import { createConnection, createServer, type Server } from "node:net";
import { FailedPreconditionError } from "../../../src/errors.ts";
import { silentLogger } from "../../../src/log.ts";
import { forwardPort } from "../../../src/supervisor/forwarder.ts";

async function echoServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.pipe(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, port: (server.address() as { port: number }).port };
}

function roundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection({ host: "127.0.0.1", port }, () => sock.end(text));
    let got = "";
    sock.on("data", (d) => got += d).on("close", () => resolve(got)).on("error", reject);
  });
}

Deno.test("forwardPort() forwards to the current target and refuses while there is none", async () => {
  const { server, port: containerPort } = await echoServer();
  let target: string | undefined = "127.0.0.1";
  const fwd = await forwardPort({ log: silentLogger }, "echo", {
    hostIp: "127.0.0.1",
    hostPort: 0,
    containerPort,
  }, () => target);
  try {
    const addr = fwd.address();
    assert.equal(await roundTrip(addr, "hello"), "hello");
    target = undefined;
    assert.equal(await roundTrip(addr, "nobody home"), "", "closed without an answer");
  } finally {
    await fwd.close();
    await new Promise((r) => server.close(r));
  }
});

Deno.test("forwardPort() names the service and address when the port is taken", async () => {
  const { server, port } = await echoServer();
  try {
    await assert.rejects(
      forwardPort(
        { log: silentLogger },
        "grafana",
        { hostIp: "127.0.0.1", hostPort: port, containerPort: 3000 },
        () => undefined,
      ),
      (err: Error) =>
        err instanceof FailedPreconditionError &&
        err.message ===
          `cannot publish port 127.0.0.1:${port} of service "grafana": the address is in use`,
    );
  } finally {
    await new Promise((r) => server.close(r));
  }
});
