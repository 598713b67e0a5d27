/** Request body limits: 413 before a byte is read when Content-Length is too large, else while streaming. */

import { PayloadTooLargeError } from "../errors.ts";

/** Parses a size such as `20Mi`, `1G` or `4096` into bytes. */
export function parseSize(s: string): number | undefined {
  const m = s.match(/^(\d+)(Ki|Mi|Gi|k|M|G)?$/);
  if (!m) return undefined;
  const unit: Record<string, number> = {
    "": 1,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
  };
  return Number(m[1]) * unit[m[2] ?? ""];
}

/**
 * Runs `use` with `req` limited to `limit` body bytes: PayloadTooLargeError before anything runs
 * when Content-Length says the body is too large; for a chunked body, the stream fails once
 * `limit` bytes have passed, and whatever error that causes downstream (a proxy's failed upload,
 * say) becomes PayloadTooLargeError too.
 */
export async function withBodyLimit(
  req: Request,
  limit: number,
  use: (req: Request) => Promise<Response>,
): Promise<Response> {
  if (!req.body) return await use(req);
  const declared = req.headers.get("content-length");
  if (declared !== null) {
    if (Number(declared) > limit) throw tooLarge(limit);
    return await use(req);
  }
  let seen = 0;
  const counted = req.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, ctl) {
        seen += chunk.length;
        if (seen > limit) ctl.error(tooLarge(limit));
        else ctl.enqueue(chunk);
      },
    }),
  );
  try {
    return await use(new Request(req, { body: counted, duplex: "half" } as RequestInit));
  } catch (err) {
    throw seen > limit ? tooLarge(limit) : err;
  }
}

function tooLarge(limit: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`request body is larger than the limit of ${limit} bytes`);
}
