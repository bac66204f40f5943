// Fuzzing the duration parser and the cron wrapper (src/controller/schedule.ts):
// refreshInterval, rotation.interval, refreshSchedule and rotation.schedule are
// written by any namespace, flags by the administrator. parseDuration reads back
// what formatDuration writes, agrees with the CRD's pattern, and refuses
// anything else (and anything too long to be a date) with its own bounded
// error; nextCronTime answers a time strictly after `from`, or its own bounded
// error, quickly, for any text and time zone. And a delay parsed from a valid
// duration is one the work queue keeps, however long.
import { expect } from 'chai';
import fc from 'fast-check';
import { DURATION_PATTERN } from '../../../src/api/schemas.js';
import { MAX_DURATION_MS, formatDuration, nextCronTime, parseDuration } from '../../../src/controller/schedule.js';
import { WorkQueue } from '../../../src/controller/workqueue.js';
import { assertTypedError, runs, thrownBy, timeoutFor } from './fuzz.js';

const durationPattern = new RegExp(DURATION_PATTERN);
const unit = fc.constantFrom('ms', 's', 'm', 'h');
const number = fc.oneof(
  fc.nat({ max: 1_000 }).map(String),
  fc.tuple(fc.nat({ max: 99 }), fc.nat({ max: 999 })).map(([a, b]) => `${a}.${b}`),
  fc.stringMatching(/^[0-9]{1,22}$/),
);
/** Go-style durations, valid by the CRD's pattern (some too long for a date). */
const validDuration = fc.oneof(
  fc.constant('0'),
  fc
    .array(
      fc.tuple(number, unit).map(([n, u]) => n + u),
      { minLength: 1, maxLength: 4 },
    )
    .map((p) => p.join('')),
);
/** Near misses: valid durations with one character changed, added or removed, and any text. */
const anyDuration = fc.oneof(
  validDuration,
  fc
    .tuple(
      validDuration,
      fc.nat(),
      fc.constantFrom('', ' ', '-', '.', 'd', 'µ', 'us', '0', 'e5', '+', '\n', 'Infinity'),
    )
    .map(([d, at, s]) => d.slice(0, at % (d.length + 1)) + s + d.slice((at % (d.length + 1)) + (s === '' ? 1 : 0))),
  fc.string({ maxLength: 30 }),
  fc.string({ maxLength: 200, unit: 'binary' }),
);

function parsed(text: string): { ms?: number; err?: unknown } {
  let ms: number | undefined;
  const err = thrownBy(() => (ms = parseDuration(text)));
  return { ms, err };
}

function assertDurationError(err: unknown): void {
  assertTypedError(err, [Error]);
  expect((err as Error).message).to.match(/ is not a duration such as | is longer than the longest duration/);
}

describe('fuzz: durations and cron schedules', function () {
  this.timeout(timeoutFor(25_000));

  it('reads back every duration formatDuration writes', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: 0, max: MAX_DURATION_MS }),
          fc.integer({ min: 0, max: 100_000_000 }),
          fc.double({ min: -10, max: 1e12, noNaN: true }),
        ),
        (ms) => {
          const text = formatDuration(ms);
          expect(durationPattern.test(text), text).to.equal(true);
          expect(parseDuration(text)).to.equal(ms <= 0 ? 0 : Math.round(ms));
        },
      ),
      runs(51, 1_000),
    );
  });

  it('agrees with the CRD pattern, and gives a finite, non-negative number within the bound or its own error', () => {
    fc.assert(
      fc.property(anyDuration, (text) => {
        const { ms, err } = parsed(text);
        if (err !== undefined) {
          assertDurationError(err);
          // What the API server admits, the controller reads, unless it is longer than any date.
          if (durationPattern.test(text.trim())) expect((err as Error).message).to.include('longer than');
          return;
        }
        expect(durationPattern.test(text.trim()), `${JSON.stringify(text)} parsed`).to.equal(true);
        expect(Number.isFinite(ms) && (ms as number) >= 0 && (ms as number) <= MAX_DURATION_MS).to.equal(true);
        // A parsed duration is always a valid date offset.
        expect(Number.isNaN(new Date(Date.now() + (ms as number)).getTime())).to.equal(false);
        expect(parseDuration(formatDuration(ms as number))).to.equal(Math.round(ms as number));
      }),
      runs(52, 2_000),
    );
  });

  it('answers any cron text and time zone with a time strictly after `from`, or its own error, quickly', () => {
    const field = fc.oneof(
      fc.constantFrom(
        '*',
        '?',
        'L',
        '5L',
        '1W',
        '2#3',
        '5#5',
        'JAN',
        'mon-fri',
        'SUN',
        '*/0',
        '*/1',
        '0',
        '59',
        '31',
        '60',
        '-1',
        '1-',
        ',',
        '',
      ),
      fc.nat({ max: 100 }).map(String),
      fc.tuple(fc.nat({ max: 60 }), fc.nat({ max: 60 })).map(([a, b]) => `${a}-${b}`),
      fc.tuple(fc.constantFrom('*', '0', '1-30'), fc.nat({ max: 70 })).map(([a, b]) => `${a}/${b}`),
      fc.array(fc.nat({ max: 35 }), { minLength: 2, maxLength: 4 }).map((a) => a.join(',')),
    );
    const expression = fc.oneof(
      fc.array(field, { minLength: 5, maxLength: 5 }).map((f) => f.join(' ')),
      fc.array(field, { minLength: 1, maxLength: 7 }).map((f) => f.join(' ')),
      fc.constantFrom(
        '@hourly',
        '@daily',
        '@weekly',
        '@monthly',
        '@yearly',
        '@annually',
        '@reboot',
        '@every 5m',
        '0 0 30 2 *',
        '0 0 29 2 1',
      ),
      fc.string({ maxLength: 40 }),
    );
    const zone = fc.constantFrom(
      'UTC',
      'Europe/Berlin',
      'America/St_Johns',
      'Pacific/Chatham',
      'Australia/Lord_Howe',
      'Asia/Kathmandu',
      'Mars/Olympus',
      '',
      'utc',
      '+05:00',
    );
    const from = fc.date({
      min: new Date('1970-01-02T00:00:00Z'),
      max: new Date('2200-01-01T00:00:00Z'),
      noInvalidDate: true,
    });
    fc.assert(
      fc.property(expression, from, zone, (expr, at, tz) => {
        let next: Date | undefined;
        const started = performance.now();
        const err = thrownBy(() => (next = nextCronTime(expr, at, tz)));
        const elapsed = performance.now() - started;
        expect(elapsed, `${JSON.stringify(expr)} ${tz}: ${elapsed.toFixed(0)} ms`).to.be.lessThan(1_000);
        if (err !== undefined) {
          assertTypedError(err, [Error]);
          expect((err as Error).message).to.include('is not a valid cron expression');
          return;
        }
        expect(Number.isNaN(next?.getTime()), 'a valid date').to.equal(false);
        expect((next as Date).getTime(), `${JSON.stringify(expr)} ${tz} from ${at.toISOString()}`).to.be.greaterThan(
          at.getTime(),
        );
      }),
      runs(53, 600),
    );
  });

  it('keeps a delay parsed from any valid duration: the queue never hands the key out early', async () => {
    // Node runs a timer longer than 2^31-1 ms (24.8 days) after 1 ms: a 720h rotation interval used to
    // put the ManagedSecret back in the queue at once, and again after every pass.
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2_562_047 }), async (hours) => {
        const delay = parseDuration(`${hours}h`);
        const queue = new WorkQueue();
        try {
          queue.addAfter('ns/ms', delay);
          const got = await Promise.race([queue.get(), new Promise((r) => setTimeout(() => r('none'), 30))]);
          expect(got, `${hours}h`).to.equal('none');
        } finally {
          queue.shutDown();
        }
      }),
      runs(54, 20),
    );
  });
});

describe('fuzz findings: durations and cron schedules (fixed examples)', () => {
  for (const text of ['99999999999999h', '9'.repeat(400) + 'h', '2562048h']) {
    it(`refuses ${text.slice(0, 20)}… as longer than any duration instead of an Invalid Date or Infinity`, () => {
      const err = thrownBy(() => parseDuration(text));
      assertDurationError(err);
      expect((err as Error).message).to.include('longer than the longest duration');
    });
  }

  it('still reads the longest duration, and 720h', () => {
    expect(parseDuration('2562047h')).to.equal(2_562_047 * 3_600_000);
    expect(parseDuration('720h')).to.equal(720 * 3_600_000);
  });

  it('quotes a long or multi-line duration or cron text as one bounded line', () => {
    const flood = `${'1'.repeat(10_000)}\nforged`;
    for (const err of [thrownBy(() => parseDuration(flood)), thrownBy(() => nextCronTime(flood, new Date()))]) {
      assertTypedError(err, [Error]);
      expect((err as Error).message).to.not.include('1'.repeat(100));
    }
  });

  it('does not run a key scheduled 30 days out (a 720h rotation) before its time', async () => {
    const queue = new WorkQueue();
    try {
      queue.addAfter('ns/ms', parseDuration('720h'));
      const got = await Promise.race([queue.get(), new Promise((r) => setTimeout(() => r('none'), 100))]);
      expect(got).to.equal('none');
    } finally {
      queue.shutDown();
    }
  });
});

describe('fuzz findings: formatDuration (fixed examples)', () => {
  it('writes a duration below half a millisecond as 0, which parseDuration reads, not as empty text', () => {
    for (const ms of [5e-324, 0.2, 0.49]) {
      expect(formatDuration(ms)).to.equal('0');
      expect(parseDuration(formatDuration(ms))).to.equal(0);
    }
    expect(formatDuration(0.5)).to.equal('1ms');
  });
});
