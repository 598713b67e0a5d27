/** `/function/NAME[.NAMESPACE][/path]` and `/async-function/…` parsed in one place. */

import { DEFAULT_NAMESPACE } from "./types.ts";

/** A function addressed by a request path. */
export interface FunctionTarget {
  name: string;
  namespace: string;
  /** The rest of the path (at least `/`), without the query. */
  path: string;
}

const PATTERN = /^\/(function|async-function)\/([^/.]+)(?:\.([^/]+))?(\/.*)?$/;

/** Parses `pathname` when it starts with `/${prefix}/`; undefined otherwise. */
export function parseFunctionPath(
  prefix: "function" | "async-function",
  pathname: string,
): FunctionTarget | undefined {
  const m = pathname.match(PATTERN);
  if (!m || m[1] !== prefix) return undefined;
  return { name: m[2], namespace: m[3] ?? DEFAULT_NAMESPACE, path: m[4] ?? "/" };
}
