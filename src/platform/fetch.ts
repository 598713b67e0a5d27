/**
 * The runtime seam for HTTPS with a registry's own CA: Deno.createHttpClient under Deno; under
 * Node.js (the armhf bundle) only the system's trust store is available.
 */

import { NotImplementedError } from "../errors.ts";

interface DenoHttp {
  createHttpClient(opts: { caCerts?: string[] }): unknown;
}

/** A fetch that also trusts `caPem` (PEM text); the global fetch when none is given. */
export function fetchTrusting(caPem?: string): typeof fetch {
  if (!caPem) return fetch;
  const deno = (globalThis as { Deno?: DenoHttp }).Deno;
  if (!deno?.createHttpClient) {
    throw new NotImplementedError(
      "a registry CA file (ca_file in registries.yaml) needs the Deno build; under Node.js add the CA to the system trust store",
    );
  }
  const client = deno.createHttpClient({ caCerts: [caPem] });
  return ((input: RequestInfo | URL, init?: RequestInit) =>
    fetch(input, { ...init, client } as RequestInit)) as typeof fetch;
}
