/** Parses `WWW-Authenticate` challenges from registries (RFC 7235 auth-params). */

/** One challenge: its scheme (lower case) and parameters (`realm`, `service`, `scope`). */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a header such as `Bearer realm="https://auth.example/token",service="reg",
 * scope="repository:x:pull"` or `Basic realm="Registry"`. Several challenges may be listed.
 */
export function parseChallenges(header: string | null): Challenge[] {
  if (!header) return [];
  const out: Challenge[] = [];
  const re = /\s*([A-Za-z][\w-]*)\s*(=\s*("((?:[^"\\]|\\.)*)"|[^,\s]*))?\s*,?/gy;
  let current: Challenge | undefined;
  let m: RegExpExecArray | null;
  while (re.lastIndex < header.length && (m = re.exec(header))) {
    if (m[0] === "") break;
    const [, token, hasValue, , quoted] = m;
    if (hasValue === undefined) {
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
      continue;
    }
    if (!current) continue;
    const raw = quoted !== undefined ? quoted.replace(/\\(.)/g, "$1") : m[3];
    current.params[token.toLowerCase()] = raw;
  }
  return out;
}
