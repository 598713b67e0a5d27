import assert from "node:assert/strict";
import { InvalidArgumentError } from "../../../src/errors.ts";
import { startOrder } from "../../../src/supervisor/order.ts";

const svc = (name: string, ...dependsOn: string[]) => ({ name, dependsOn });
const names = (list: Array<{ name: string }>) => list.map((s) => s.name);

Deno.test("startOrder() starts dependencies first and keeps file order otherwise", async (t) => {
  const cases: Array<{ name: string; services: ReturnType<typeof svc>[]; order: string[] }> = [
    { name: "no dependencies", services: [svc("b"), svc("a")], order: ["b", "a"] },
    { name: "one dependency", services: [svc("web", "db"), svc("db")], order: ["db", "web"] },
    {
      name: "a chain",
      services: [svc("a", "b"), svc("b", "c"), svc("c")],
      order: ["c", "b", "a"],
    },
    {
      name: "a diamond",
      services: [svc("top", "l", "r"), svc("l", "base"), svc("r", "base"), svc("base")],
      order: ["base", "l", "r", "top"],
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => assert.deepEqual(names(startOrder(c.services)), c.order));
  }
});

Deno.test("startOrder() names a dependency cycle", async (t) => {
  const cases: Array<{ name: string; services: ReturnType<typeof svc>[]; cycle: string }> = [
    { name: "self", services: [svc("a", "a")], cycle: "a -> a" },
    { name: "two", services: [svc("a", "b"), svc("b", "a")], cycle: "a -> b -> a" },
    {
      name: "behind a chain",
      services: [svc("x", "a"), svc("a", "b"), svc("b", "c"), svc("c", "a")],
      cycle: "a -> b -> c -> a",
    },
  ];
  for (const c of cases) {
    await t.step(c.name, () => {
      assert.throws(() => startOrder(c.services), (err: Error) => {
        assert.ok(err instanceof InvalidArgumentError);
        assert.equal(err.message, `docker-compose.yaml: depends_on has a cycle: ${c.cycle}`);
        return true;
      });
    });
  }
});
