/** Byte helpers shared by the modules that collect streamed data. */

import { InvalidArgumentError } from "./errors.ts";

/**
 * Reads a stream of chunks into one array; InvalidArgumentError naming `what` when it grows
 * past `limit` bytes.
 */
export async function collectBytes(
  chunks: AsyncIterable<Uint8Array>,
  opts: { limit?: number; what?: string } = {},
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const p of chunks) {
    total += p.length;
    if (opts.limit !== undefined && total > opts.limit) {
      throw new InvalidArgumentError(`${opts.what ?? "data"} is larger than ${opts.limit} bytes`);
    }
    parts.push(p);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
