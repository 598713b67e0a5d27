/**
 * Cross-site request forgery defence for the UI's form posts. Browsers send basic-auth
 * credentials with any request to this origin, including a form another site submits, so a
 * POST is accepted only when the browser says it came from one of our own pages.
 */

/**
 * Why a POST is refused, or undefined when it is same-origin: `Sec-Fetch-Site` (sent by current
 * browsers) must be `same-origin`; without it, `Origin` (sent by browsers on every cross-origin
 * POST) must name this host. A request with neither comes from a client that is not a browser
 * (curl, a script), which holds the credentials itself and cannot be forged.
 */
export function crossSiteReason(req: Request): string | undefined {
  const site = req.headers.get("sec-fetch-site");
  if (site !== null) return site === "same-origin" ? undefined : `Sec-Fetch-Site is "${site}"`;
  const origin = req.headers.get("origin");
  if (origin === null) return undefined;
  // Compared by host only: behind a TLS proxy the browser's origin is https while we see http.
  let host: string | undefined;
  try {
    host = new URL(origin).host;
  } catch {
    host = undefined;
  }
  const ours = req.headers.get("host") ?? new URL(req.url).host;
  return host && host === ours ? undefined : `Origin "${origin}" is not this site`;
}

/** The 403 answer to a cross-site POST (like `unauthorized()`, an HTTP-level refusal). */
export function crossSiteRefused(reason: string): Response {
  return new Response(
    `refused a form post from another site (${reason}); use the UI's own pages\n`,
    { status: 403, headers: { "content-type": "text/plain; charset=utf-8" } },
  );
}
