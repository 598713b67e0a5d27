/**
 * The one seam between runtimes for serving HTTP: Deno.serve when running under Deno (source and
 * compiled binaries), node:http when the armhf bundle runs under Node.js. Handlers are
 * fetch-style `(Request) => Response` either way, so routes are tested without a socket.
 */

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Readable } from "node:stream";

/** A fetch-style request handler. */
export type Handler = (req: Request, info: { remoteAddr: string }) => Response | Promise<Response>;

/** Where to listen, and the signal that stops the server. */
export interface ServeOptions {
  hostname?: string;
  /** 0 picks a free port; the chosen one is in the returned `port`. */
  port: number;
  signal?: AbortSignal;
}

/** A running server. */
export interface Server {
  port: number;
  /** Resolves once the server has stopped after `signal` aborted. */
  finished: Promise<void>;
}

interface DenoServe {
  serve(
    opts: {
      hostname?: string;
      port: number;
      signal?: AbortSignal;
      onListen?: (addr: { port: number }) => void;
    },
    handler: (
      req: Request,
      info: { remoteAddr: { hostname: string } },
    ) => Response | Promise<Response>,
  ): { finished: Promise<void>; addr: { port: number } };
}

/** Starts serving `handler`; resolves when the socket is listening (at once if already stopped). */
export function serve(handler: Handler, opts: ServeOptions): Promise<Server> {
  // A signal that fired before the server started (SIGTERM during start-up) is never delivered
  // to it again, by Deno.serve or by node:http: nothing to serve, then.
  if (opts.signal?.aborted) {
    return Promise.resolve({ port: opts.port, finished: Promise.resolve() });
  }
  const deno = (globalThis as { Deno?: DenoServe }).Deno;
  if (deno?.serve) {
    const server = deno.serve(
      {
        hostname: opts.hostname ?? "0.0.0.0",
        port: opts.port,
        signal: opts.signal,
        onListen: () => {},
      },
      (req, info) => handler(req, { remoteAddr: info.remoteAddr.hostname }),
    );
    return Promise.resolve({ port: server.addr.port, finished: server.finished });
  }
  return serveNode(handler, opts);
}

function serveNode(handler: Handler, opts: ServeOptions): Promise<Server> {
  const server = createServer((req, res) => {
    void respond(handler, req, res);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.hostname ?? "0.0.0.0", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : opts.port;
      const finished = new Promise<void>((done) => server.once("close", () => done()));
      opts.signal?.addEventListener("abort", () => {
        server.close();
        server.closeIdleConnections();
      }, { once: true });
      resolve({ port, finished });
    });
  });
}

async function respond(handler: Handler, req: IncomingMessage, res: ServerResponse) {
  try {
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) {
      if (Array.isArray(v)) v.forEach((x) => headers.append(k, x));
      else if (v !== undefined) headers.set(k, v);
    }
    const request = new Request(`http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`, {
      method: req.method,
      headers,
      body: hasBody ? (Readable.toWeb(req) as ReadableStream<Uint8Array>) : undefined,
      // @ts-ignore: Node's fetch needs duplex for streaming request bodies.
      duplex: hasBody ? "half" : undefined,
    });
    const response = await handler(request, { remoteAddr: req.socket.remoteAddress ?? "" });
    res.writeHead(response.status, Object.fromEntries(response.headers));
    if (response.body) {
      for await (const chunk of response.body) res.write(chunk);
    }
    res.end();
  } catch (err) {
    if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
    res.end(res.headersSent ? undefined : `internal error: ${(err as Error).message}\n`);
  }
}
