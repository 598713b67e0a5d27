/** The order services start in: every service after the services it depends on. */

import { InvalidArgumentError } from "../errors.ts";

/**
 * Sorts services so each comes after its dependencies, keeping file order where the
 * dependencies allow; a cycle is an InvalidArgumentError naming it (`a -> b -> a`).
 */
export function startOrder<T extends { name: string; dependsOn: string[] }>(services: T[]): T[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  const done = new Set<string>();
  const out: T[] = [];
  const visit = (s: T, path: string[]) => {
    if (done.has(s.name)) return;
    const at = path.indexOf(s.name);
    if (at >= 0) {
      throw new InvalidArgumentError(
        `docker-compose.yaml: depends_on has a cycle: ${[...path.slice(at), s.name].join(" -> ")}`,
      );
    }
    for (const dep of s.dependsOn) {
      const d = byName.get(dep);
      if (!d) {
        throw new InvalidArgumentError(
          `docker-compose.yaml: services.${s.name}.depends_on: unknown service "${dep}"`,
        );
      }
      visit(d, [...path, s.name]);
    }
    done.add(s.name);
    out.push(s);
  };
  for (const s of services) visit(s, []);
  return out;
}
