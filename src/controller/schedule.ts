// When ManagedSecrets refresh: durations, cron schedules, the refresh grid that
// lets ManagedSecrets sharing keys share backend reads, and the administrator's
// floor (--min-refresh-interval) that keeps a namespace from asking for a
// refresh every few milliseconds.
import { CronExpressionParser } from 'cron-parser';
import { boundedText } from '../api/errors.js';

/** `--min-refresh-interval`'s default: no ManagedSecret refreshes more often than this. */
export const DEFAULT_MIN_REFRESH_INTERVAL_MS = 10_000;

type RefreshSpec = { refreshInterval?: string; refreshSchedule?: string };

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/**
 * The longest duration, Go's (2562047h47m16.854s, about 292 years). Longer ones
 * are refused as Go refuses them: `99999999999999h` would otherwise be a date
 * past the end of JavaScript's calendar (an Invalid Date, NaN delays) and
 * `1e400` digits Infinity.
 */
export const MAX_DURATION_MS = 9_223_372_036_854;

/** A text from a spec or a flag, quoted as it is when short and printable, else as one bounded line. */
const quoted = (text: string) => `"${/^[\x20-\x7e]{0,64}$/.test(text) ? text : boundedText(text, 64)}"`;

/** Parses a Go-style duration (`1h30m`, `45s`, `500ms`, `0`) into milliseconds. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (trimmed === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(trimmed)) !== null) {
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ''] ?? 0);
    matched = re.lastIndex;
  }
  if (matched === 0 || matched !== trimmed.length) {
    throw new Error(`${quoted(text)} is not a duration such as 30s, 15m, 1h or 0`);
  }
  if (!(total <= MAX_DURATION_MS)) throw new Error(`${quoted(text)} is longer than the longest duration, 2562047h`);
  return total;
}

/** When a cron schedule fires next after `from`; throws with the parser's reason when it is invalid. */
export function nextCronTime(expression: string, from: Date, timeZone = 'UTC'): Date {
  try {
    // UTC unless told otherwise: the operator's own TZ setting must not move schedules.
    const interval = CronExpressionParser.parse(expression, {
      currentDate: from,
      tz: timeZone,
    });
    return interval.next().toDate();
  } catch (err) {
    // The parser's message may quote the expression or the date: both are shown as bounded lines.
    throw new Error(
      `refreshSchedule ${quoted(expression)} is not a valid cron expression: ${boundedText(err instanceof Error ? err.message : String(err))}`,
    );
  }
}

/**
 * The refresh period a spec asks for: the interval, or for a cron schedule the
 * gap between its next two slots (so values fetched at one slot are not served
 * again at the next from the fetch cache).
 */
export function refreshPeriodMs(spec: { refreshInterval?: string; refreshSchedule?: string }, now: number): number {
  if (!spec.refreshSchedule) return parseDuration(spec.refreshInterval ?? '1h');
  const next = nextCronTime(spec.refreshSchedule, new Date(now));
  return nextCronTime(spec.refreshSchedule, next).getTime() - next.getTime();
}

/** The longest a fetched value is shared (see fetchTtl); the fetch cache drops what is older. */
export const MAX_FETCH_TTL_MS = 5 * 60_000;

/** Values fetched for a refresh are shared this long: below the interval that asked for them, at most 5 minutes. */
export function fetchTtl(intervalMs: number): number {
  return intervalMs > 0 ? Math.min(intervalMs / 2, MAX_FETCH_TTL_MS) : 60_000;
}

/**
 * The part of each interval in which ManagedSecrets refresh. It stays below the
 * fetch TTL, so every ManagedSecret that reads one key in a cycle shares one
 * backend read (fan-in: reads per interval = distinct keys).
 */
export function refreshWindow(intervalMs: number): number {
  return Math.min(intervalMs * 0.4, 0.8 * fetchTtl(intervalMs));
}

/** A stable place in [0, 1) for one ManagedSecret inside the refresh window, so refreshes are spread, not bunched. */
export function refreshPhase(id: string): number {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  return (h >>> 0) / 2 ** 32;
}

/**
 * The refresh interval in effect: `refreshInterval` (default 1h) raised to
 * `floorMs` when it is shorter. 0 stays 0 (sync once: never refreshes, so no
 * floor applies). Throws for an invalid duration. Ignores `refreshSchedule`.
 */
export function effectiveIntervalMs(spec: RefreshSpec, floorMs = 0): number {
  const interval = parseDuration(spec.refreshInterval ?? '1h');
  return interval === 0 ? 0 : Math.max(interval, floorMs);
}

/**
 * Why the refreshes of this spec are slower than asked, for the Ready
 * condition's message; undefined when the floor changes nothing. A schedule
 * counts as too frequent when two of its next few firings are closer than the
 * floor. Throws for an invalid interval or schedule.
 */
export function refreshFloorNote(spec: RefreshSpec, floorMs: number, now: number = Date.now()): string | undefined {
  if (floorMs <= 0) return undefined;
  const floor = formatDuration(floorMs);
  if (spec.refreshSchedule) {
    let previous = nextCronTime(spec.refreshSchedule, new Date(now)).getTime();
    for (let i = 0; i < 4; i++) {
      const next = nextCronTime(spec.refreshSchedule, new Date(previous)).getTime();
      if (next - previous < floorMs) {
        return `refreshSchedule fires more often than the operator's minimum refresh interval (${floor}); refreshes are at least ${floor} apart`;
      }
      previous = next;
    }
    return undefined;
  }
  const asked = parseDuration(spec.refreshInterval ?? '1h');
  if (asked === 0 || asked >= floorMs) return undefined;
  return `refreshInterval ${formatDuration(asked)} is below the operator's minimum refresh interval; refreshing every ${floor}`;
}

/** A duration in the form parseDuration reads back (`1h30m`, `10s`, `500ms`). */
export function formatDuration(ms: number): string {
  let rest = Math.round(ms);
  // Below half a millisecond rounds to nothing: that is "0", not an empty text parseDuration refuses.
  if (!(rest > 0)) return '0';
  let text = '';
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1_000],
    ['ms', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) text += `${n}${unit}`;
    rest -= n * size;
  }
  return text;
}

/**
 * Milliseconds until the next refresh after a check at `lastCheck`, or
 * undefined when the ManagedSecret syncs once (`refreshInterval: 0` and no schedule).
 * Interval refreshes fall on a grid (multiples of the interval since the epoch,
 * plus `phase` of the refresh window) so ManagedSecrets that share keys refresh
 * together and share reads; the gap after a check is never longer than the interval.
 * `floorMs` (--min-refresh-interval) raises a shorter interval to it, and a
 * schedule's next firing is the first at least `floorMs` after the last check.
 */
export function nextRefreshDelay(
  spec: RefreshSpec,
  lastCheck: number,
  now: number = Date.now(),
  phase = 0,
  floorMs = 0,
): number | undefined {
  if (spec.refreshSchedule) {
    // The first slot after the last check (plus the floor), not after now: measured from now, the slot would
    // always be ahead and a scheduled refresh would never fall due. Strictly after `from`: a firing exactly
    // `floorMs` after the check is skipped, one a millisecond later is not.
    const from = lastCheck + floorMs;
    return Math.max(0, nextCronTime(spec.refreshSchedule, new Date(from)).getTime() - now);
  }
  const interval = effectiveIntervalMs(spec, floorMs);
  if (interval === 0) return undefined;
  const offset = phase * refreshWindow(interval);
  const slot = (Math.floor((lastCheck - offset) / interval) + 1) * interval + offset;
  return Math.max(0, slot - now);
}
