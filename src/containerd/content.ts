/** containerd's content store: blobs (layers, manifests, configs) addressed by digest. */

import { collectBytes } from "../bytes.ts";
import { AlreadyExistsError, InvalidArgumentError } from "../errors.ts";
import type { CallOptions, Rpc } from "./rpc.ts";
import { fromTimestamp, labelMask, labelsToSet, type WireTimestamp } from "./types.ts";

const SVC = "containerd.services.content.v1.Content";

/** containerd's reads and the Go client's writes use 1 MiB chunks; so do we. */
export const CHUNK_SIZE = 1024 * 1024;

/** A blob's metadata. */
export interface ContentInfo {
  digest: string;
  size: number;
  labels: Record<string, string>;
  createdAt?: Date;
  updatedAt?: Date;
}

/** What to write: the blob's identity and where its bytes come from. */
export interface WriteRequest {
  /** Ingest reference; the Go client uses `layer-<digest>`, `manifest-<digest>`, … */
  ref: string;
  /**
   * The expected digest; containerd refuses to commit anything else. Leave it out (with `size`)
   * to store a stream whose digest is learned from the data (tarball import); the ref must then
   * be unique.
   */
  digest?: string;
  size?: number;
  labels?: Record<string, string>;
  /** Called with the offset to start from (non-zero when resuming an interrupted ingest). */
  data: (offset: number) => AsyncIterable<Uint8Array> | Iterable<Uint8Array>;
}

interface WireInfo {
  digest: string;
  size: string;
  labels: Record<string, string>;
  created_at?: WireTimestamp;
  updated_at?: WireTimestamp;
}

interface WriteReply {
  action: "STAT" | "WRITE" | "COMMIT";
  offset: string;
  total: string;
  digest: string;
}

type Opts = Pick<CallOptions, "signal" | "timeoutMs" | "lease">;

/** Content service client; every call names its namespace. */
export class Content {
  constructor(private readonly rpc: Rpc) {}

  /** Gets a blob's info; NotFoundError when this namespace does not have it. */
  async info(namespace: string, digest: string, opts: Opts = {}): Promise<ContentInfo> {
    const res = await this.rpc.unary<{ info: WireInfo }>(SVC, "Info", { digest }, {
      ...opts,
      namespace,
    });
    return toInfo(res.info);
  }

  /** Merges labels into a blob's labels (GC references, `containerd.io/uncompressed`, …). */
  async setLabels(
    namespace: string,
    digest: string,
    labels: Record<string, string>,
    opts: Opts = {},
  ): Promise<ContentInfo> {
    const res = await this.rpc.unary<{ info: WireInfo }>(SVC, "Update", {
      info: { digest, labels: labelsToSet(labels) },
      update_mask: labelMask("labels", labels),
    }, { ...opts, namespace });
    return toInfo(res.info);
  }

  /** Lists blobs, optionally filtered. */
  async list(namespace: string, filters: string[] = [], opts: Opts = {}): Promise<ContentInfo[]> {
    const out: ContentInfo[] = [];
    const stream = this.rpc.serverStream<{ info: WireInfo[] }>(SVC, "List", { filters }, {
      ...opts,
      namespace,
    });
    for await (const page of stream) out.push(...page.info.map(toInfo));
    return out;
  }

  /** Deletes a blob from this namespace. */
  async delete(namespace: string, digest: string, opts: Opts = {}): Promise<void> {
    await this.rpc.unary(SVC, "Delete", { digest }, { ...opts, namespace });
  }

  /** Streams a blob's bytes, from `offset`, `size` bytes (0 = to the end). */
  async *read(
    namespace: string,
    digest: string,
    { offset = 0, size = 0, ...opts }: Opts & { offset?: number; size?: number } = {},
  ): AsyncGenerator<Uint8Array> {
    const stream = this.rpc.serverStream<{ data: Uint8Array }>(
      SVC,
      "Read",
      { digest, offset: String(offset), size: String(size) },
      { ...opts, namespace },
    );
    for await (const chunk of stream) yield chunk.data;
  }

  /** Reads a whole (small) blob, such as a manifest or config, into memory. */
  readAll(namespace: string, digest: string, opts: Opts = {}): Promise<Uint8Array> {
    return collectBytes(this.read(namespace, digest, opts));
  }

  /**
   * Writes a blob with the STAT → WRITE… → COMMIT protocol and returns its digest. A blob this
   * namespace already has counts as written; one held by another namespace is committed without
   * sending data; an interrupted ingest resumes at containerd's offset. containerd verifies the
   * size and digest at commit and the ingest is aborted when anything fails.
   */
  async write(namespace: string, req: WriteRequest, opts: Opts = {}): Promise<string> {
    const call = this.rpc.duplex<object, WriteReply>(SVC, "Write", { ...opts, namespace });
    const what = req.digest ?? req.ref;
    const size = req.size;
    let committed = false;
    // containerd reports the running digest of what it has received; for a write without an
    // expected digest that is the blob's digest.
    let seen = req.digest ?? "";
    try {
      call.send({
        action: "STAT",
        ref: req.ref,
        total: String(size ?? 0),
        expected: req.digest ?? "",
      });
      const stat = await this.#reply(call, what);
      let offset = Number(stat.offset);
      if (size !== undefined && offset > size) {
        throw new InvalidArgumentError(
          `cannot write blob ${what}: containerd already holds ${offset} bytes, more than its size ${size}`,
        );
      }
      if (size === undefined || offset < size) {
        // Sources hand over small chunks (fetch bodies arrive in about 64 KiB); each WRITE is a
        // round trip, so chunks are gathered into 1 MiB messages first.
        const buffer = new Uint8Array(CHUNK_SIZE);
        let filled = 0;
        const flush = async () => {
          if (filled === 0) return;
          call.send({
            action: "WRITE",
            ref: req.ref,
            offset: String(offset),
            data: buffer.slice(0, filled),
          });
          filled = 0;
          const r = await this.#reply(call, what);
          offset = Number(r.offset);
          if (r.digest) seen = r.digest;
        };
        for await (const chunk of req.data(offset)) {
          for (let i = 0; i < chunk.length;) {
            const n = Math.min(CHUNK_SIZE - filled, chunk.length - i);
            buffer.set(chunk.subarray(i, i + n), filled);
            filled += n;
            i += n;
            if (filled === CHUNK_SIZE) await flush();
          }
        }
        await flush();
      }
      call.send({
        action: "COMMIT",
        ref: req.ref,
        total: String(size ?? offset),
        offset: String(offset),
        expected: req.digest ?? "",
        labels: req.labels ?? {},
      });
      const done = await this.#reply(call, what);
      committed = true;
      call.end();
      // containerd re-sends the COMMIT reply; drain until the stream ends.
      while (await call.next()) { /* drain */ }
      return done.digest || seen;
    } catch (err) {
      call.cancel();
      if (err instanceof AlreadyExistsError && seen) {
        if (!req.digest) await this.abort(namespace, req.ref, opts).catch(() => {});
        return seen;
      }
      if (!committed) await this.abort(namespace, req.ref, opts).catch(() => {});
      throw err;
    }
  }

  /** Abandons an in-progress ingest. */
  async abort(namespace: string, ref: string, opts: Opts = {}): Promise<void> {
    await this.rpc.unary(SVC, "Abort", { ref }, { ...opts, namespace });
  }

  async #reply(
    call: { next(): Promise<WriteReply | undefined> },
    what: string,
  ): Promise<WriteReply> {
    const r = await call.next();
    if (!r) throw new Error(`containerd ended the write of ${what} early`);
    return r;
  }
}

function toInfo(i: WireInfo): ContentInfo {
  return {
    digest: i.digest,
    size: Number(i.size),
    labels: i.labels ?? {},
    createdAt: fromTimestamp(i.created_at),
    updatedAt: fromTimestamp(i.updated_at),
  };
}
