/**
 * Publishes a service's TCP port on the host: a listener on HOST_IP:HOST_PORT in the appliance
 * that connects each accepted connection to the service's current IP. Chosen over the CNI
 * portmap plugin because it works the same for 127.0.0.1 (no route_localnet, no DNAT in OUTPUT),
 * fails at once with a clear error when the port is taken, follows the service across restarts
 * (its IP is looked up per connection) and leaves no iptables rules behind after a crash.
 */

import { createConnection, createServer, type Server, type Socket } from "node:net";
import { FailedPreconditionError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { PortSpec } from "./compose.ts";

/** A listening forwarder; `close()` stops accepting and drops open connections. */
export interface Forwarder {
  port: PortSpec;
  /** The port it listens on (the one asked for, or the kernel's pick for port 0). */
  address(): number;
  close(): Promise<void>;
}

/** Listens on `port.hostIp:port.hostPort` and forwards to `target()`'s IP (refused while undefined). */
export async function forwardPort(
  deps: { log: Logger },
  service: string,
  port: PortSpec,
  target: () => string | undefined,
): Promise<Forwarder> {
  const open = new Set<Socket>();
  // Half-open on both sides: a client that shuts down its sending side after the request (nc,
  // some HTTP/1.0 clients) must still get the whole answer; `pipe` carries each FIN across.
  const server: Server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (client) => {
    const ip = target();
    if (!ip) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: ip, port: port.containerPort, allowHalfOpen: true });
    open.add(client);
    open.add(upstream);
    const done = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on("error", done).on("close", done);
    upstream.on("error", done).on("close", done);
    upstream.once("connect", () => {
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      reject(
        new FailedPreconditionError(
          `cannot publish port ${port.hostIp}:${port.hostPort} of service "${service}": ${
            err.code === "EADDRINUSE" ? "the address is in use" : err.message
          }`,
          { cause: err },
        ),
      );
    });
    server.listen({ host: port.hostIp, port: port.hostPort }, () => resolve());
  });
  server.on(
    "error",
    (err) => deps.log.warn("port forwarder failed", { service, err: String(err) }),
  );
  return {
    port,
    address: () => (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}
