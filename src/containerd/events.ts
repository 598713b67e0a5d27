/** containerd's event stream (task exits, container changes, …), decoded into plain objects. */

import { decodeAny, type ProtoApi } from "./proto.ts";
import type { Rpc } from "./rpc.ts";
import { fromTimestamp, type WireTimestamp } from "./types.ts";

const SVC = "containerd.services.events.v1.Events";

/** One event from containerd. */
export interface ContainerdEvent {
  timestamp?: Date;
  namespace: string;
  /** `/tasks/exit`, `/containers/delete`, … */
  topic: string;
  /** The event's type name, e.g. `containerd.events.TaskExit`. */
  type: string;
  /** The decoded event fields (snake_case, as in the API), or `{}` for a type we do not know. */
  payload: Record<string, unknown>;
}

interface WireEnvelope {
  timestamp?: WireTimestamp;
  namespace: string;
  topic: string;
  event: { type_url: string; value: Uint8Array } | null;
}

/** Events service client. */
export class Events {
  constructor(private readonly rpc: Rpc, private readonly api: ProtoApi) {}

  /**
   * Streams events until `signal` aborts, from every namespace unless the filters say
   * otherwise (`namespace==openfaas-fn,topic~="/tasks/"`). Aborting ends the iteration quietly.
   */
  async *subscribe(filters: string[], signal?: AbortSignal): AsyncGenerator<ContainerdEvent> {
    const stream = this.rpc.serverStream<WireEnvelope>(SVC, "Subscribe", { filters }, { signal });
    for await (const env of stream) {
      const decoded = env.event ? decodeAny(this.api, env.event) : undefined;
      yield {
        timestamp: fromTimestamp(env.timestamp),
        namespace: env.namespace,
        topic: env.topic,
        type: env.event?.type_url ?? "",
        payload: decoded?.value ?? {},
      };
    }
  }
}
