/**
 * Friendly shapes for the values containerd's API passes around, and conversions from the wire
 * form (snake_case, int64 as strings, Timestamps) to them.
 */

/** A filesystem mount as containerd describes it (snapshot mounts, task rootfs). */
export interface Mount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** Wire form of google.protobuf.Timestamp with longs as strings. */
export interface WireTimestamp {
  seconds: string | number;
  nanos: number;
}

/** Wire form of containerd.types.Descriptor. */
export interface WireDescriptor {
  media_type: string;
  digest: string;
  size: string | number;
  annotations?: Record<string, string>;
}

/** Wire form of containerd.types.Mount. */
export interface WireMount {
  type: string;
  source: string;
  target?: string;
  options?: string[];
}

// Go's zero time.Time, which containerd sends for "never" (for example a running process's
// exited_at).
const GO_ZERO_SECONDS = -62135596800;

/** Converts a Timestamp; Go's zero time and a missing value become `undefined`. */
export function fromTimestamp(ts: WireTimestamp | null | undefined): Date | undefined {
  if (!ts) return undefined;
  const seconds = Number(ts.seconds);
  if (seconds === GO_ZERO_SECONDS || (seconds === 0 && !ts.nanos)) return undefined;
  return new Date(seconds * 1000 + Math.floor((ts.nanos ?? 0) / 1e6));
}

/** Converts a Date into a Timestamp. */
export function toTimestamp(d: Date): WireTimestamp {
  const ms = d.getTime();
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
}

/** Converts a wire Descriptor. */
export function fromWireDescriptor(d: WireDescriptor): Descriptor {
  const out: Descriptor = { mediaType: d.media_type, digest: d.digest, size: Number(d.size) };
  if (d.annotations && Object.keys(d.annotations).length > 0) out.annotations = d.annotations;
  return out;
}

/** Converts a Descriptor to the wire form. */
export function toWireDescriptor(d: Descriptor): WireDescriptor {
  return {
    media_type: d.mediaType,
    digest: d.digest,
    size: String(d.size),
    annotations: d.annotations ?? {},
  };
}

/** Converts a wire Mount. */
export function fromWireMount(m: WireMount): Mount {
  return {
    type: m.type,
    source: m.source,
    target: m.target || undefined,
    options: m.options ?? [],
  };
}

/** Converts a Mount to the wire form. */
export function toWireMount(m: Mount): WireMount {
  return { type: m.type, source: m.source, target: m.target ?? "", options: m.options };
}

/** A FieldMask that updates exactly the given labels (`labels.<key>` per key). */
export function labelMask(prefix: string, labels: Record<string, string>): { paths: string[] } {
  return { paths: Object.keys(labels).map((k) => `${prefix}.${k}`) };
}

/**
 * The labels to send with {@link labelMask}: containerd deletes a masked label that is absent
 * from the message, so empty values (our "delete this label") are left out.
 */
export function labelsToSet(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).filter(([, v]) => v !== ""));
}
