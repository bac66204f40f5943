import { CronExpressionParser } from 'cron-parser';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

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
    throw new Error(`"${text}" is not a duration such as 30s, 15m, 1h or 0`);
  }
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
    throw new Error(
      `refreshSchedule "${expression}" is not a valid cron expression: ${err instanceof Error ? err.message : String(err)}`,
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

/** Values fetched for a refresh are shared this long: below the interval that asked for them, at most 5 minutes. */
export function fetchTtl(intervalMs: number): number {
  return intervalMs > 0 ? Math.min(intervalMs / 2, 5 * 60_000) : 60_000;
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
 * Milliseconds until the next refresh after a check at `lastCheck`, or
 * undefined when the ManagedSecret syncs once (`refreshInterval: 0` and no schedule).
 * Interval refreshes fall on a grid (multiples of the interval since the epoch,
 * plus `phase` of the refresh window) so ManagedSecrets that share keys refresh
 * together and share reads; the gap after a check is never longer than the interval.
 */
export function nextRefreshDelay(
  spec: { refreshInterval?: string; refreshSchedule?: string },
  lastCheck: number,
  now: number = Date.now(),
  phase = 0,
): number | undefined {
  // The first slot after the last check, not after now: measured from now, the slot would always be ahead
  // and a scheduled refresh would never fall due.
  if (spec.refreshSchedule)
    return Math.max(0, nextCronTime(spec.refreshSchedule, new Date(lastCheck)).getTime() - now);
  const interval = parseDuration(spec.refreshInterval ?? '1h');
  if (interval === 0) return undefined;
  const offset = phase * refreshWindow(interval);
  const slot = (Math.floor((lastCheck - offset) / interval) + 1) * interval + offset;
  return Math.max(0, slot - now);
}
