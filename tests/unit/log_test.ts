import assert from "node:assert/strict";
import { createLogger } from "../../src/log.ts";

function capture(level?: "debug" | "info" | "warn" | "error") {
  const lines: string[] = [];
  const log = createLogger({
    level,
    write: (l) => lines.push(l),
    now: () => new Date("2026-01-02T03:04:05Z"),
  });
  return { log, events: () => lines.map((l) => JSON.parse(l)) };
}

Deno.test("the logger writes one JSON object per event with the child's component", () => {
  const { log, events } = capture();
  log.child({ component: "provider" }).info("deployed", { function: "figlet" });
  assert.deepEqual(events(), [{
    time: "2026-01-02T03:04:05.000Z",
    level: "info",
    msg: "deployed",
    component: "provider",
    function: "figlet",
  }]);
});

Deno.test("the logger drops events below its level", () => {
  const { log, events } = capture("warn");
  log.debug("a");
  log.info("b");
  log.warn("c");
  log.error("d");
  assert.deepEqual(events().map((e) => e.msg), ["c", "d"]);
});

Deno.test("the logger never writes secret-looking fields", () => {
  const { log, events } = capture();
  log.info("login", {
    password: "hunter2",
    authorization: "Basic eA==",
    token: "t",
    user: "admin",
  });
  const [e] = events();
  assert.equal(e.password, "[redacted]");
  assert.equal(e.authorization, "[redacted]");
  assert.equal(e.token, "[redacted]");
  assert.equal(e.user, "admin");
  assert.doesNotMatch(JSON.stringify(e), /hunter2/);
});

Deno.test("the logger serialises errors with name, message and cause", () => {
  const { log, events } = capture();
  log.error("failed", { err: new TypeError("bad", { cause: new Error("root") }) });
  const [e] = events();
  assert.equal(e.err.name, "TypeError");
  assert.equal(e.err.message, "bad");
  assert.equal(e.err.cause.message, "root");
  assert.ok(typeof e.err.stack === "string");
});
