/** containerd image records: a name pointing at a root descriptor (index or manifest). */

import type { CallOptions, Rpc } from "./rpc.ts";
import {
  type Descriptor,
  fromTimestamp,
  fromWireDescriptor,
  toWireDescriptor,
  type WireDescriptor,
  type WireTimestamp,
} from "./types.ts";

const SVC = "containerd.services.images.v1.Images";

/** An image record. */
export interface Image {
  name: string;
  labels: Record<string, string>;
  target: Descriptor;
  createdAt?: Date;
  updatedAt?: Date;
}

interface WireImage {
  name: string;
  labels: Record<string, string>;
  target: WireDescriptor;
  created_at?: WireTimestamp;
  updated_at?: WireTimestamp;
}

type Opts = Pick<CallOptions, "signal" | "timeoutMs" | "lease">;

/** Images service client; every call names its namespace. */
export class Images {
  constructor(private readonly rpc: Rpc) {}

  /** Gets an image by its full name; NotFoundError when missing. */
  async get(namespace: string, name: string, opts: Opts = {}): Promise<Image> {
    const res = await this.rpc.unary<{ image: WireImage }>(SVC, "Get", { name }, {
      ...opts,
      namespace,
    });
    return toImage(res.image);
  }

  /** Lists images, optionally filtered (`name~="^docker.io/"`). */
  async list(namespace: string, filters: string[] = [], opts: Opts = {}): Promise<Image[]> {
    const res = await this.rpc.unary<{ images: WireImage[] }>(SVC, "List", { filters }, {
      ...opts,
      namespace,
    });
    return res.images.map(toImage);
  }

  /** Creates an image record; AlreadyExistsError when the name is taken. */
  async create(
    namespace: string,
    image: { name: string; target: Descriptor; labels?: Record<string, string> },
    opts: Opts = {},
  ): Promise<Image> {
    const res = await this.rpc.unary<{ image: WireImage }>(SVC, "Create", {
      image: {
        name: image.name,
        labels: image.labels ?? {},
        target: toWireDescriptor(image.target),
      },
    }, { ...opts, namespace });
    return toImage(res.image);
  }

  /** Points an existing image at a new target (a re-pull that found a new digest). */
  async setTarget(
    namespace: string,
    name: string,
    target: Descriptor,
    opts: Opts = {},
  ): Promise<Image> {
    const res = await this.rpc.unary<{ image: WireImage }>(SVC, "Update", {
      image: { name, target: toWireDescriptor(target) },
      update_mask: { paths: ["target"] },
    }, { ...opts, namespace });
    return toImage(res.image);
  }

  /** Deletes an image record; with `sync` containerd collects garbage before answering. */
  async delete(namespace: string, name: string, sync = false, opts: Opts = {}): Promise<void> {
    await this.rpc.unary(SVC, "Delete", { name, sync }, { ...opts, namespace });
  }
}

function toImage(i: WireImage): Image {
  return {
    name: i.name,
    labels: i.labels ?? {},
    target: fromWireDescriptor(i.target),
    createdAt: fromTimestamp(i.created_at),
    updatedAt: fromTimestamp(i.updated_at),
  };
}
