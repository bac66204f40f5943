import { expect } from 'chai';
import fc from 'fast-check';
import { SpecError } from '../../../src/api/errors.js';
import { entryValue, keysForFoundEntries, secretKeyForEntry, toSecretKey } from '../../../src/secrets/find-keys.js';
import type { Properties } from '../../../src/providers/provider.js';

const found = (entries: [string, Properties][]) => new Map(entries);

function specErrorOf(fn: () => unknown): SpecError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SpecError) return err;
    throw new Error(`expected a SpecError, got ${String(err)}`);
  }
  throw new Error('expected a SpecError, but none was thrown');
}

describe('keysForFoundEntries', () => {
  it('maps entry names onto Secret keys, without the prefix and leading slashes', () => {
    expect(
      keysForFoundEntries(
        found([
          ['/app/db/password', { value: 'pw' }],
          ['/app/db/user name', { value: 'app' }],
          ['/app/db/cfg', { a: '1', b: '2' }],
        ]),
        '/app/db',
      ),
    ).to.deep.equal({ password: 'pw', user_name: 'app', cfg: '{"a":"1","b":"2"}' });
    expect(keysForFoundEntries(found([['team/a', { v: 'x' }]]), undefined)).to.deep.equal({ team_a: 'x' });
    expect(secretKeyForEntry('other/x', 'team/')).to.equal('other_x');
    expect(toSecretKey('a+b=c/d é')).to.equal('a_b_c_d__');
    expect(entryValue({ only: 'v' })).to.equal('v');
  });

  it('refuses two entries that land in the same key, naming both, never a value (InvalidSpec)', () => {
    const err = specErrorOf(() =>
      keysForFoundEntries(
        found([
          ['app/a=b', { value: 'secret-one' }],
          ['app/a+b', { value: 'secret-two' }],
        ]),
        'app/',
      ),
    );
    expect(err.reason).to.equal('InvalidSpec');
    expect(err.retry).to.equal('terminal');
    expect(err.message).to.include('"app/a+b" and "app/a=b" both map to the Secret key "a_b"');
    expect(err.message).to.not.include('secret-');
  });

  it('is the same whatever order the backend listed the entries in', () => {
    const entries: [string, Properties][] = [
      ['x/a b', { value: '1' }],
      ['x/a_b', { value: '2' }],
      ['x/a/b', { value: '3' }],
    ];
    const messages = new Set<string>();
    for (const order of [
      [0, 1, 2],
      [2, 1, 0],
      [1, 2, 0],
    ]) {
      messages.add(specErrorOf(() => keysForFoundEntries(found(order.map((i) => entries[i]!)), 'x/')).message);
    }
    expect([...messages]).to.have.length(1);
    expect([...messages][0]).to.include('"x/a b" and "x/a/b"');

    fc.assert(
      fc.property(
        fc.uniqueArray(fc.stringMatching(/^[a-c/+=_]{1,4}$/), { maxLength: 8 }),
        fc.integer(),
        (names, seed) => {
          const shuffled = [...names].sort((a, b) => ((a.length * 31 + seed) % 7) - ((b.length * 17 + seed) % 5));
          const run = (list: string[]) => {
            try {
              return JSON.stringify(keysForFoundEntries(found(list.map((n) => [n, { value: n }])), undefined));
            } catch (err) {
              return (err as Error).message;
            }
          };
          expect(run(shuffled)).to.equal(run(names));
        },
      ),
      { seed: 12, numRuns: 300 },
    );
  });

  for (const [name, what] of [
    ['app/', 'empty'],
    ['app/.', '"."'],
    ['app/..', '".."'],
    [`app/${'k'.repeat(254)}`, 'over 253'],
  ] as const) {
    it(`refuses an entry whose key would be invalid (${what})`, () => {
      const err = specErrorOf(() => keysForFoundEntries(found([[name, { value: 'v' }]]), 'app/'));
      expect(err.message).to.include('which is not a valid key');
    });
  }

  it('keeps an entry named __proto__ as an own key', () => {
    const out = keysForFoundEntries(found([['__proto__', { value: 'v' }]]), undefined);
    expect(Object.keys(out)).to.deep.equal(['__proto__']);
    expect(Object.getPrototypeOf(out)).to.equal(Object.prototype);
  });
});
