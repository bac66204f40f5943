import { expect } from 'chai';
import {
  DEFAULT_MIN_REFRESH_INTERVAL_MS,
  effectiveIntervalMs,
  fetchTtl,
  formatDuration,
  nextCronTime,
  nextRefreshDelay,
  parseDuration,
  refreshFloorNote,
  refreshPhase,
  refreshWindow,
} from '../../../src/controller/schedule.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`threw a non-Error: ${String(err)}`);
  }
  throw new Error('expected an error, but none was thrown');
}

describe('schedule', () => {
  describe('parseDuration', () => {
    const cases: [string, number][] = [
      ['0', 0],
      ['0s', 0],
      ['30s', 30_000],
      ['15m', 15 * MINUTE],
      ['1h', HOUR],
      ['1h30m', HOUR + 30 * MINUTE],
      ['2h45m10s', 2 * HOUR + 45 * MINUTE + 10_000],
      ['500ms', 500],
      ['1m500ms', MINUTE + 500],
      ['1.5h', 1.5 * HOUR],
      ['0.5s', 500],
      [' 45s ', 45_000],
    ];
    for (const [text, ms] of cases) {
      it(`parses ${JSON.stringify(text)} as ${ms}ms`, () => {
        expect(parseDuration(text)).to.equal(ms);
      });
    }

    const invalid = ['ten minutes', '1d', '', '   ', '5', '1h 30m', 'h', 'ms', '30s5', '-5s', '1.s', '5 s', '1w'];
    for (const text of invalid) {
      it(`rejects ${JSON.stringify(text)}, quoting it`, () => {
        const err = errorOf(() => parseDuration(text));
        expect(err.message).to.include(`"${text}"`);
        expect(err.message).to.include('is not a duration');
      });
    }
  });

  describe('nextCronTime', () => {
    const from = new Date('2024-03-05T10:02:30Z');

    it('finds the next */5 minute', () => {
      expect(nextCronTime('*/5 * * * *', from).toISOString()).to.equal('2024-03-05T10:05:00.000Z');
    });

    it('fires strictly after `from`, even when `from` is on a match', () => {
      expect(nextCronTime('*/5 * * * *', new Date('2024-03-05T10:05:00Z')).toISOString()).to.equal(
        '2024-03-05T10:10:00.000Z',
      );
    });

    it('understands @hourly', () => {
      expect(nextCronTime('@hourly', from, 'UTC').toISOString()).to.equal('2024-03-05T11:00:00.000Z');
    });

    it('follows the given time zone', () => {
      // 10:02:30Z is 15:32:30 in India (UTC+5:30): the next full hour there is 10:30Z.
      expect(nextCronTime('@hourly', from, 'Asia/Kolkata').toISOString()).to.equal('2024-03-05T10:30:00.000Z');
      // 09:00 in New York is 14:00Z in winter (EST, UTC-5) ...
      expect(nextCronTime('0 9 * * *', from, 'America/New_York').toISOString()).to.equal('2024-03-05T14:00:00.000Z');
      // ... and 13:00Z once daylight saving time began (02:00 local on 2024-03-10).
      expect(nextCronTime('0 9 * * *', new Date('2024-03-10T12:00:00Z'), 'America/New_York').toISOString()).to.equal(
        '2024-03-10T13:00:00.000Z',
      );
      expect(nextCronTime('0 9 * * *', from, 'UTC').toISOString()).to.equal('2024-03-06T09:00:00.000Z');
    });

    it('explains an out-of-range field, naming the expression', () => {
      const err = errorOf(() => nextCronTime('61 * * * *', from));
      expect(err.message).to.include('refreshSchedule "61 * * * *" is not a valid cron expression');
      expect(err.message).to.match(/61/);
      expect(err.message).to.match(/0-59/);
    });

    it('rejects an expression that is not cron at all', () => {
      const err = errorOf(() => nextCronTime('every tuesday', from));
      expect(err.message).to.include('refreshSchedule "every tuesday" is not a valid cron expression');
    });
  });

  describe('nextRefreshDelay', () => {
    const now = Date.parse('2024-03-05T10:02:30Z');

    it('refreshes on the interval grid: the next multiple of the interval after the last check', () => {
      // 10:02:30 → the next 15-minute slot is 10:15:00.
      expect(nextRefreshDelay({ refreshInterval: '15m' }, now - MINUTE, now)).to.equal(12.5 * MINUTE);
      // Checked at 09:57:30: the 10:00:00 slot has passed, so it is due now.
      expect(nextRefreshDelay({ refreshInterval: '15m' }, now - 5 * MINUTE, now)).to.equal(0);
      expect(nextRefreshDelay({ refreshInterval: '15m' }, now, now)).to.equal(12.5 * MINUTE);
    });

    it('is 0, never negative, when the refresh is overdue', () => {
      expect(nextRefreshDelay({ refreshInterval: '30s' }, now - HOUR, now)).to.equal(0);
    });

    it('never waits longer than the interval after a check, whatever the phase', () => {
      for (const phase of [0, 0.25, 0.5, 0.999]) {
        for (let back = 0; back < 2 * HOUR; back += 7 * MINUTE + 13_000) {
          const delay = nextRefreshDelay({ refreshInterval: '1h' }, now - back, now - back, phase) as number;
          expect(delay).to.be.greaterThan(0);
          expect(delay).to.be.at.most(HOUR);
        }
      }
    });

    it('defaults to one hour, on the hour plus the phase inside the refresh window', () => {
      // Window for 1h: min(24m, 0.8 × 5m) = 4m; phase 0.5 → 2m past the hour.
      expect(nextRefreshDelay({}, now, now)).to.equal(57.5 * MINUTE);
      expect(nextRefreshDelay({}, now, now, 0.5)).to.equal(57.5 * MINUTE + 2 * MINUTE);
      // Checked at 09:42:30: its slot (10:02:00) has passed, so it is due now.
      expect(nextRefreshDelay({}, now - 20 * MINUTE, now, 0.5)).to.equal(0);
    });

    it('puts every ManagedSecret of one interval inside the fetch TTL of the first read of a cycle', () => {
      const interval = 10_000;
      const ids = Array.from({ length: 500 }, (_, i) => `uid-${i}`);
      const slots = ids.map(
        (id) => now + (nextRefreshDelay({ refreshInterval: '10s' }, now, now, refreshPhase(id)) as number),
      );
      const first = Math.min(...slots);
      const last = Math.max(...slots);
      expect(last - first).to.be.below(fetchTtl(interval));
      expect(last - first).to.be.at.most(refreshWindow(interval));
      // Spread, not bunched: the phases cover most of the window.
      expect(last - first).to.be.above(0.9 * refreshWindow(interval));
    });

    it('is undefined for refreshInterval 0 (sync once)', () => {
      expect(nextRefreshDelay({ refreshInterval: '0' }, now, now)).to.equal(undefined);
      expect(nextRefreshDelay({ refreshInterval: '0s' }, now - HOUR, now)).to.equal(undefined);
    });

    it('follows refreshSchedule instead of the interval when both are set', () => {
      // Next */5 after 10:02:30 is 10:05:00: 2m30s away, whatever the interval.
      expect(nextRefreshDelay({ refreshSchedule: '*/5 * * * *' }, now, now)).to.equal(150_000);
      expect(nextRefreshDelay({ refreshSchedule: '*/5 * * * *', refreshInterval: '0' }, now, now)).to.equal(150_000);
      expect(nextRefreshDelay({ refreshSchedule: '*/5 * * * *', refreshInterval: '1s' }, now, now)).to.equal(150_000);
    });

    it('makes a scheduled refresh due once the slot after the last check has come (measured from the check, not from now)', () => {
      const spec = { refreshSchedule: '*/5 * * * *' };
      // Checked at 10:02:30; at 10:04:59 the 10:05 slot is 1 s away; at 10:05:00 and after it is due.
      expect(nextRefreshDelay(spec, now, now + 149_000)).to.equal(1_000);
      expect(nextRefreshDelay(spec, now, now + 150_000)).to.equal(0);
      expect(nextRefreshDelay(spec, now, now + 151_000)).to.equal(0);
      // A check long ago: overdue at once.
      expect(nextRefreshDelay(spec, now - 10 * HOUR, now)).to.equal(0);
    });

    it('throws for an invalid interval or schedule', () => {
      expect(() => nextRefreshDelay({ refreshInterval: '1d' }, now, now)).to.throw(/not a duration/);
      expect(() => nextRefreshDelay({ refreshSchedule: '61 * * * *' }, now, now)).to.throw(/not a valid cron/);
    });
  });

  describe('the refresh floor (--min-refresh-interval)', () => {
    const now = Date.parse('2024-03-05T10:02:30Z');
    const floor = DEFAULT_MIN_REFRESH_INTERVAL_MS;

    it('is 10 s by default', () => {
      expect(floor).to.equal(10_000);
    });

    it('raises a shorter interval to the floor and leaves longer ones, 0 (sync once) and the default alone', () => {
      expect(effectiveIntervalMs({ refreshInterval: '1s' }, floor)).to.equal(10_000);
      expect(effectiveIntervalMs({ refreshInterval: '1ms' }, floor)).to.equal(10_000);
      expect(effectiveIntervalMs({ refreshInterval: '15m' }, floor)).to.equal(15 * MINUTE);
      expect(effectiveIntervalMs({ refreshInterval: '0' }, floor)).to.equal(0);
      expect(effectiveIntervalMs({}, floor)).to.equal(HOUR);
      expect(effectiveIntervalMs({ refreshInterval: '1s' })).to.equal(1_000);
      expect(() => effectiveIntervalMs({ refreshInterval: '1d' }, floor)).to.throw(/not a duration/);
    });

    it('puts the next refresh of a too-short interval on the floor’s grid', () => {
      expect(nextRefreshDelay({ refreshInterval: '1s' }, now, now)).to.equal(1_000);
      expect(nextRefreshDelay({ refreshInterval: '1s' }, now, now, 0, floor)).to.equal(10_000);
      expect(nextRefreshDelay({ refreshInterval: '0' }, now, now, 0, floor)).to.equal(undefined);
    });

    it('never refreshes a 1 ms interval more often than the floor, whatever the phase', () => {
      for (const phase of [0, 0.3, 0.999]) {
        let check = now;
        for (let cycle = 0; cycle < 50; cycle++) {
          const delay = nextRefreshDelay({ refreshInterval: '1ms' }, check, check, phase, floor) as number;
          expect(delay, `phase ${phase} cycle ${cycle}`).to.be.at.least(cycle === 0 ? 0 : floor);
          expect(delay).to.be.at.most(floor);
          check += delay;
        }
      }
    });

    it('moves a schedule’s next firing to the first one at least the floor after the last check', () => {
      const fiveMinutes = 5 * MINUTE;
      // Every minute: the next firing after 10:02:30 is 10:03:00 ...
      expect(nextRefreshDelay({ refreshSchedule: '* * * * *' }, now, now)).to.equal(30_000);
      // ... but with a 5 minute floor, the first after 10:07:30 (10:08:00).
      expect(nextRefreshDelay({ refreshSchedule: '* * * * *' }, now, now, 0, fiveMinutes)).to.equal(5.5 * MINUTE);
      // A check long ago does not hold a schedule back: overdue at once.
      expect(nextRefreshDelay({ refreshSchedule: '* * * * *' }, now - HOUR, now, 0, fiveMinutes)).to.equal(0);
      // A schedule slower than the floor is untouched.
      expect(nextRefreshDelay({ refreshSchedule: '@hourly' }, now, now, 0, fiveMinutes)).to.equal(57.5 * MINUTE);
    });

    it('explains a clamped interval or schedule for the Ready message, and says nothing otherwise', () => {
      expect(refreshFloorNote({ refreshInterval: '1s' }, floor, now)).to.equal(
        "refreshInterval 1s is below the operator's minimum refresh interval; refreshing every 10s",
      );
      expect(refreshFloorNote({ refreshInterval: '15m' }, floor, now)).to.equal(undefined);
      expect(refreshFloorNote({ refreshInterval: '0' }, floor, now)).to.equal(undefined);
      expect(refreshFloorNote({}, floor, now)).to.equal(undefined);
      expect(refreshFloorNote({ refreshInterval: '1s' }, 0, now)).to.equal(undefined);
      expect(refreshFloorNote({ refreshSchedule: '* * * * *' }, 5 * MINUTE, now)).to.match(
        /refreshSchedule fires more often than the operator's minimum refresh interval \(5m\)/,
      );
      expect(refreshFloorNote({ refreshSchedule: '0,1 * * * *' }, 5 * MINUTE, now)).to.match(/more often/);
      expect(refreshFloorNote({ refreshSchedule: '@hourly' }, 5 * MINUTE, now)).to.equal(undefined);
    });

    it('formats durations the way parseDuration reads them', () => {
      for (const ms of [500, 10_000, 90_000, HOUR + 30 * MINUTE + 1_500, 2 * HOUR]) {
        expect(parseDuration(formatDuration(ms))).to.equal(ms);
      }
      expect(formatDuration(90_000)).to.equal('1m30s');
      expect(formatDuration(0)).to.equal('0');
    });
  });
});
