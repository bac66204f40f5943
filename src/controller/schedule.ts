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
 * Milliseconds until the next refresh after a check at `lastCheck`, or
 * undefined when the ManagedSecret syncs once (`refreshInterval: 0` and no schedule).
 */
export function nextRefreshDelay(
  spec: { refreshInterval?: string; refreshSchedule?: string },
  lastCheck: number,
  now: number = Date.now(),
): number | undefined {
  if (spec.refreshSchedule) return Math.max(0, nextCronTime(spec.refreshSchedule, new Date(now)).getTime() - now);
  const interval = parseDuration(spec.refreshInterval ?? '1h');
  if (interval === 0) return undefined;
  return Math.max(0, lastCheck + interval - now);
}
