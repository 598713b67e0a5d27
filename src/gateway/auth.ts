/** HTTP basic auth for `/system/*` and `/ui/`, compared in constant time. */

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Credentials } from "../install/credentials.ts";

/**
 * Returns a checker for `Authorization` headers. Both sides are HMAC'd with a per-process key
 * first, so the comparison takes the same time whatever the length or content of the guess.
 */
export function basicAuthChecker(creds: Credentials): (header: string | null) => boolean {
  const key = randomBytes(32);
  const mac = (s: string) => createHmac("sha256", key).update(s).digest();
  const want = mac(`${creds.user}:${creds.password}`);
  return (header) => {
    const m = header?.match(/^Basic\s+([A-Za-z0-9+/=]+)\s*$/i);
    const given = m ? Buffer.from(m[1], "base64").toString("utf8") : "";
    // Always compare, even with no header, so a missing header costs the same as a wrong one.
    return timingSafeEqual(mac(given), want) && m !== null;
  };
}

/** The 401 answer, with the realm OpenFaaS clients expect. */
export function unauthorized(): Response {
  return new Response("Unauthorized\n", {
    status: 401,
    headers: { "www-authenticate": 'Basic realm="Restricted"', "content-type": "text/plain" },
  });
}
