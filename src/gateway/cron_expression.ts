/**
 * Cron expressions, our own parser: the five classic fields (minute hour day-of-month month
 * day-of-week) with `*`, lists, ranges, steps (`1-30/10`, `5/15`, or `/5` after a `*`), month
 * and weekday names and `7` for Sunday; Vixie cron's rule that a day matches either day field when both are
 * restricted; the shortcuts `@yearly` … `@hourly` and `@every <duration>`; and, as an extension,
 * a sixth, leading, seconds field (`0/2 * * * * *` fires every two seconds). Times are UTC, as in the OpenFaaS
 * cron-connector's container.
 */

import { InvalidArgumentError } from "../errors.ts";

/** A parsed schedule. */
export interface CronSchedule {
  /** The expression as written. */
  readonly source: string;
  /** The first time strictly after `after` that the schedule fires. */
  next(after: Date): Date;
}

interface Field {
  name: string;
  min: number;
  max: number;
  names?: string[];
}

const SECOND: Field = { name: "second", min: 0, max: 59 };
const MINUTE: Field = { name: "minute", min: 0, max: 59 };
const HOUR: Field = { name: "hour", min: 0, max: 23 };
const DAY_OF_MONTH: Field = { name: "day-of-month", min: 1, max: 31 };
const MONTH: Field = {
  name: "month",
  min: 1,
  max: 12,
  names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
};
// 7 is Sunday too; it is folded into 0 after parsing.
const DAY_OF_WEEK: Field = {
  name: "day-of-week",
  min: 0,
  max: 7,
  names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

const SHORTCUTS: Record<string, string> = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};

// The days each month can have (February in a leap year), to reject dates that never occur.
const MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Parses a cron expression; InvalidArgumentError names the field that is wrong. */
export function parseCron(expression: string): CronSchedule {
  const source = expression;
  const text = expression.trim().replace(/\s+/g, " ");
  if (text.startsWith("@every")) return every(source, text.slice("@every".length).trim());
  const expanded = text.startsWith("@") ? SHORTCUTS[text.toLowerCase()] : text;
  if (expanded === undefined) {
    throw new InvalidArgumentError(
      `invalid cron expression "${source}": unknown shortcut "${text}" (use @yearly, @monthly, @weekly, @daily, @hourly or @every <duration>)`,
    );
  }
  const parts = expanded.split(" ");
  if (parts.length !== 5 && parts.length !== 6) {
    throw new InvalidArgumentError(
      `invalid cron expression "${source}": it has ${parts.length} fields, want 5 (minute hour day-of-month month day-of-week) or 6 (with seconds first)`,
    );
  }
  const withSeconds = parts.length === 6;
  const [sec, min, hour, dom, month, dow] = withSeconds ? parts : ["0", ...parts];
  const field = (f: Field, s: string) => parseField(source, f, s);
  const days = field(DAY_OF_MONTH, dom);
  const months = field(MONTH, month);
  const weekdays = field(DAY_OF_WEEK, dow);
  if (weekdays.has(7)) weekdays.add(0);
  const spec: Spec = {
    seconds: field(SECOND, sec),
    minutes: field(MINUTE, min),
    hours: field(HOUR, hour),
    days,
    months,
    weekdays,
    // Vixie cron: when both day fields are restricted (neither starts with "*"), a day matching
    // either one is due; otherwise it must match both.
    domStar: dom.startsWith("*") || dom === "?",
    dowStar: dow.startsWith("*") || dow === "?",
  };
  // Unless the weekday alone may match, some chosen month must have some chosen day
  // ("0 0 30 2 *" never fires).
  if (
    (spec.dowStar || spec.domStar) &&
    ![...months].some((m) => [...days].some((d) => d <= MONTH_DAYS[m - 1]))
  ) {
    throw new InvalidArgumentError(
      `invalid cron expression "${source}": day-of-month "${dom}" never occurs in month "${month}"`,
    );
  }
  return { source, next: (after) => nextTime(spec, after, withSeconds) };
}

interface Spec {
  seconds: Set<number>;
  minutes: Set<number>;
  hours: Set<number>;
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  domStar: boolean;
  dowStar: boolean;
}

function parseField(source: string, f: Field, text: string): Set<number> {
  const fail = (why: string): never => {
    throw new InvalidArgumentError(
      `invalid cron expression "${source}": ${f.name} field "${text}" ${why}`,
    );
  };
  const out = new Set<number>();
  if (text === "") fail("is empty");
  for (const item of text.split(",")) {
    const m = item.match(/^([^/]+)(?:\/(.*))?$/);
    if (!m) return fail("has an empty list item or step");
    const [, range, stepText] = m;
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0) {
        fail(`has step "${stepText}", want a whole number of at least 1`);
      }
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (range === "*" || range === "?") {
      if (range === "?" && f !== DAY_OF_MONTH && f !== DAY_OF_WEEK) {
        fail(`uses "?", which only the day fields accept`);
      }
      lo = f.min;
      hi = f === DAY_OF_WEEK ? 6 : f.max;
    } else {
      const bounds = range.split("-");
      if (bounds.length > 2) fail(`has a malformed range "${range}"`);
      lo = value(f, bounds[0], fail);
      // "5/15" means from 5 to the end, stepping by 15.
      hi = bounds.length === 2 ? value(f, bounds[1], fail) : stepText !== undefined ? f.max : lo;
      if (lo > hi) fail(`has range "${range}" whose start is after its end`);
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return out;
}

function value(f: Field, text: string, fail: (why: string) => never): number {
  const lower = text.toLowerCase();
  const named = f.names?.indexOf(lower) ?? -1;
  if (named >= 0) return f === MONTH ? named + 1 : named;
  if (!/^\d+$/.test(text)) {
    return fail(`has "${text}", which is not a number${f.names ? " or a name" : ""}`);
  }
  const n = Number(text);
  if (n < f.min || n > f.max) return fail(`has ${n}, outside ${f.min}-${f.max}`);
  return n;
}

// Field by field from the largest unit: when a unit does not match, move to the start of the
// next one and look again. Five years covers every possible date (29 February on a weekday).
function nextTime(spec: Spec, after: Date, withSeconds: boolean): Date {
  const unit = withSeconds ? 1000 : 60_000;
  const t = new Date(Math.floor(after.getTime() / unit) * unit + unit);
  const limit = after.getTime() + 5 * 366 * 86_400_000;
  while (t.getTime() <= limit) {
    if (!spec.months.has(t.getUTCMonth() + 1)) {
      t.setUTCMonth(t.getUTCMonth() + 1, 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!dayMatches(spec, t)) {
      t.setUTCDate(t.getUTCDate() + 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!spec.hours.has(t.getUTCHours())) {
      t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
      continue;
    }
    if (!spec.minutes.has(t.getUTCMinutes())) {
      t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
      continue;
    }
    if (!spec.seconds.has(t.getUTCSeconds())) {
      t.setUTCSeconds(t.getUTCSeconds() + 1, 0);
      continue;
    }
    return t;
  }
  throw new InvalidArgumentError(`cron schedule never fires after ${after.toISOString()}`);
}

function dayMatches(spec: Spec, t: Date): boolean {
  const dom = spec.days.has(t.getUTCDate());
  const dow = spec.weekdays.has(t.getUTCDay());
  // A "*…" field's set still applies ("*/2" is odd days); only the OR is switched off.
  return spec.domStar || spec.dowStar ? dom && dow : dom || dow;
}

// "@every 30s": a fixed interval from the time asked about, in Go duration notation.
function every(source: string, text: string): CronSchedule {
  const ms = parseDuration(text);
  if (ms === undefined || ms < 1000) {
    throw new InvalidArgumentError(
      `invalid cron expression "${source}": @every needs a duration of at least 1s, like 30s, 5m or 1h30m`,
    );
  }
  return { source, next: (after) => new Date(after.getTime() + ms) };
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

function parseDuration(text: string): number | undefined {
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(text)) return undefined;
  let total = 0;
  for (const [, n, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(n) * DURATION_UNITS[unit];
  }
  return Math.round(total);
}
