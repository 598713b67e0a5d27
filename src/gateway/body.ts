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
 * Returns `req` unchanged when its body is known to fit (or absent), throws PayloadTooLargeError
 * when Content-Length says it does not, and otherwise (chunked) returns a request whose body
 * stream fails with PayloadTooLargeError once `limit` bytes have passed.
 */
export function limitBody(req: Request, limit: number): Request {
  if (!req.body) return req;
  const declared = req.headers.get("content-length");
  if (declared !== null) {
    if (Number(declared) > limit) throw tooLarge(limit);
    return req;
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
  return new Request(req, { body: counted, duplex: "half" } as RequestInit);
}

function tooLarge(limit: number): PayloadTooLargeError {
  return new PayloadTooLargeError(`request body is larger than the limit of ${limit} bytes`);
}
