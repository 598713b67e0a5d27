import assert from "node:assert/strict";
import { parseCron } from "../../../src/gateway/cron_expression.ts";
import { InvalidArgumentError } from "../../../src/errors.ts";

// 2026-01-01 is a Thursday.
Deno.test("next() finds the first due time after a given time", async (t) => {
  const cases = [
    { expr: "*/5 * * * *", after: "2026-01-01T00:00:00Z", want: "2026-01-01T00:05:00Z" },
    { expr: "*/5 * * * *", after: "2026-01-01T00:07:30Z", want: "2026-01-01T00:10:00Z" },
    { expr: "*/5 * * * *", after: "2026-01-01T23:55:00Z", want: "2026-01-02T00:00:00Z" },
    { expr: "* * * * *", after: "2026-01-01T00:00:59.999Z", want: "2026-01-01T00:01:00Z" },
    { expr: "0 * * * *", after: "2026-01-01T00:00:00Z", want: "2026-01-01T01:00:00Z" },
    { expr: "30 2 * * *", after: "2026-01-01T03:00:00Z", want: "2026-01-02T02:30:00Z" },
    { expr: "1-30/10 * * * *", after: "2026-01-01T00:21:00Z", want: "2026-01-01T01:01:00Z" },
    { expr: "5/15 * * * *", after: "2026-01-01T00:50:00Z", want: "2026-01-01T01:05:00Z" },
    { expr: "0,30 9-17/4 * * *", after: "2026-01-01T09:30:00Z", want: "2026-01-01T13:00:00Z" },
    { expr: "0 9 * * mon-fri", after: "2026-01-02T10:00:00Z", want: "2026-01-05T09:00:00Z" },
    { expr: "0 0 1 * *", after: "2026-01-15T00:00:00Z", want: "2026-02-01T00:00:00Z" },
    { expr: "0 12 31 * *", after: "2026-02-01T00:00:00Z", want: "2026-03-31T12:00:00Z" },
    { expr: "0 0 29 2 *", after: "2026-01-01T00:00:00Z", want: "2028-02-29T00:00:00Z" },
    { expr: "59 23 31 12 *", after: "2026-12-31T23:59:00Z", want: "2027-12-31T23:59:00Z" },
    { expr: "15 10 * jan,JUL *", after: "2026-02-01T00:00:00Z", want: "2026-07-01T10:15:00Z" },
    { expr: "0 0 * * 7", after: "2026-01-01T00:00:00Z", want: "2026-01-04T00:00:00Z" },
    { expr: "0 0 * * 0", after: "2026-01-01T00:00:00Z", want: "2026-01-04T00:00:00Z" },
    { expr: "0 0 * JAN SUN", after: "2026-01-01T00:00:00Z", want: "2026-01-04T00:00:00Z" },
    { expr: "0 0 * * 5-7", after: "2026-01-01T00:00:00Z", want: "2026-01-02T00:00:00Z" },
    // Both day fields restricted: either one matching is enough (Vixie cron).
    { expr: "0 0 13 * 5", after: "2026-01-01T00:00:00Z", want: "2026-01-02T00:00:00Z" },
    { expr: "0 0 13 * 5", after: "2026-01-09T00:00:00Z", want: "2026-01-13T00:00:00Z" },
    // A day field starting with "*" is unrestricted: odd days that are Fridays.
    { expr: "0 0 */2 * 5", after: "2026-01-01T00:00:00Z", want: "2026-01-09T00:00:00Z" },
    { expr: "0 0 ? * fri", after: "2026-01-01T00:00:00Z", want: "2026-01-02T00:00:00Z" },
    { expr: "@hourly", after: "2026-01-01T00:59:59Z", want: "2026-01-01T01:00:00Z" },
    { expr: "@daily", after: "2026-12-31T12:00:00Z", want: "2027-01-01T00:00:00Z" },
    { expr: "@midnight", after: "2026-01-01T00:00:00Z", want: "2026-01-02T00:00:00Z" },
    { expr: "@weekly", after: "2026-01-01T00:00:00Z", want: "2026-01-04T00:00:00Z" },
    { expr: "@monthly", after: "2026-01-01T00:00:00Z", want: "2026-02-01T00:00:00Z" },
    { expr: "@yearly", after: "2026-01-01T00:00:00Z", want: "2027-01-01T00:00:00Z" },
    { expr: "@every 30s", after: "2026-01-01T00:00:10Z", want: "2026-01-01T00:00:40Z" },
    { expr: "@every 1h30m", after: "2026-01-01T00:00:00Z", want: "2026-01-01T01:30:00Z" },
    // The seconds extension: six fields, seconds first.
    { expr: "*/2 * * * * *", after: "2026-01-01T00:00:00.500Z", want: "2026-01-01T00:00:02Z" },
    { expr: "*/2 * * * * *", after: "2026-01-01T00:00:58Z", want: "2026-01-01T00:01:00Z" },
    { expr: "30 0 0 1 1 *", after: "2026-01-01T00:00:30Z", want: "2027-01-01T00:00:30Z" },
    { expr: "  */5   *  * * *  ", after: "2026-01-01T00:00:00Z", want: "2026-01-01T00:05:00Z" },
  ];
  for (const c of cases) {
    await t.step(`${c.expr} after ${c.after}`, () => {
      assert.equal(
        parseCron(c.expr).next(new Date(c.after)).toISOString(),
        new Date(c.want).toISOString(),
      );
    });
  }
});

Deno.test("bad expressions are InvalidArgumentError naming the field", async (t) => {
  const cases = [
    { expr: "", want: /has 1 fields, want 5/ },
    { expr: "* * * *", want: /has 4 fields/ },
    { expr: "* * * * * * *", want: /has 7 fields/ },
    { expr: "60 * * * *", want: /minute field "60" has 60, outside 0-59/ },
    { expr: "* 24 * * *", want: /hour field "24" has 24, outside 0-23/ },
    { expr: "* * 0 * *", want: /day-of-month field "0" has 0, outside 1-31/ },
    { expr: "* * * 13 *", want: /month field "13" has 13, outside 1-12/ },
    { expr: "* * * * 8", want: /day-of-week field "8" has 8, outside 0-7/ },
    { expr: "60 * * * * *", want: /second field "60"/ },
    { expr: "*/0 * * * *", want: /minute field "\*\/0" has step "0"/ },
    { expr: "*/x * * * *", want: /minute field "\*\/x" has step "x"/ },
    {
      expr: "5-1 * * * *",
      want: /minute field "5-1" has range "5-1" whose start is after its end/,
    },
    { expr: "1-2-3 * * * *", want: /minute field "1-2-3" has a malformed range/ },
    { expr: "* * * foo *", want: /month field "foo" has "foo", which is not a number or a name/ },
    { expr: "* * * * fri-mon", want: /day-of-week field "fri-mon" has range/ },
    { expr: "1,,2 * * * *", want: /minute field "1,,2" has an empty list item/ },
    { expr: "? * * * *", want: /minute field "\?" uses "\?"/ },
    { expr: "0 0 30 2 *", want: /day-of-month "30" never occurs in month "2"/ },
    { expr: "0 0 31 apr,jun *", want: /day-of-month "31" never occurs/ },
    { expr: "@reboot", want: /unknown shortcut "@reboot"/ },
    { expr: "@every 0s", want: /@every needs a duration of at least 1s/ },
    { expr: "@every soon", want: /@every needs a duration/ },
  ];
  for (const c of cases) {
    await t.step(JSON.stringify(c.expr), () => {
      assert.throws(() => parseCron(c.expr), (err: Error) => {
        assert.ok(err instanceof InvalidArgumentError, String(err));
        assert.match(err.message, c.want);
        assert.ok(err.message.includes(`"${c.expr}"`), "the message quotes the expression");
        return true;
      });
    });
  }
});

Deno.test("next() agrees with a minute-by-minute search on a table of expressions", () => {
  // An independent, slow definition of "matches" to check the field-skipping search against.
  const exprs = ["*/7 */5 * * *", "0 0 1,15 * 1", "0 12 * feb-apr sat", "13 13 13 * *"];
  const start = Date.parse("2026-01-30T22:00:00Z");
  for (const expr of exprs) {
    const schedule = parseCron(expr);
    const [min, hour, dom, month, dow] = expr.split(" ");
    const set = (f: string, lo: number, hi: number, names: string[] = []) => {
      const out = new Set<number>();
      for (const part of f.split(",")) {
        const [range, step = "1"] = part.split("/");
        const v = (s: string) => names.includes(s) ? names.indexOf(s) + (lo === 1 ? 1 : 0) : +s;
        const [a, b] = range === "*" ? [lo, hi] : range.split("-").map(v);
        for (let i = a; i <= (b ?? a); i += +step) out.add(i);
      }
      return out;
    };
    const months = ["jan", "feb", "mar", "apr"];
    const days = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    const sets = [set(min, 0, 59), set(hour, 0, 23), set(dom, 1, 31), set(month, 1, 12, months)];
    const weekdays = set(dow, 0, 6, days);
    const matches = (d: Date) => {
      const domOk = sets[2].has(d.getUTCDate());
      const dowOk = weekdays.has(d.getUTCDay());
      const day = dom === "*" ? dowOk : dow === "*" ? domOk : domOk || dowOk;
      return sets[0].has(d.getUTCMinutes()) && sets[1].has(d.getUTCHours()) &&
        sets[3].has(d.getUTCMonth() + 1) && day;
    };
    let after = new Date(start);
    for (let n = 0; n < 5; n++) {
      let want = after.getTime() + 60_000;
      while (!matches(new Date(want))) want += 60_000;
      const got = schedule.next(after);
      assert.equal(
        got.toISOString(),
        new Date(want).toISOString(),
        `${expr} after ${after.toISOString()}`,
      );
      after = got;
    }
  }
});
