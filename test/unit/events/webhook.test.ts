// The webhook's verifier and body parser: what is accepted is exactly a signed,
// fresh, well-formed notification; everything else is refused without throwing.
import { expect } from 'chai';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import {
  MAX_KEY_LENGTH,
  MAX_KEYS,
  parseNotification,
  ReplayGuard,
  signNotification,
  storeKeyOfNotification,
  verifySignature,
} from '../../../src/events/webhook.js';

const key = randomBytes(32);
const now = 1_780_000_000_000;
const ts = String(Math.floor(now / 1000));

describe('events webhook: signature and timestamp', () => {
  const body = Buffer.from('{"store":{"kind":"ClusterSecretStore","name":"s"},"keys":["a"]}');

  it('accepts the signature over timestamp "." body, made with the key', () => {
    expect(verifySignature(key, ts, signNotification(key, ts, body), body, now)).to.equal('ok');
  });

  it('refuses another key, another body, another timestamp or a malformed header', () => {
    const good = signNotification(key, ts, body);
    expect(verifySignature(randomBytes(32), ts, good, body, now)).to.equal('bad-signature');
    expect(verifySignature(key, ts, good, Buffer.concat([body, Buffer.from(' ')]), now)).to.equal('bad-signature');
    expect(verifySignature(key, String(Number(ts) + 1), good, body, now)).to.equal('bad-signature');
    expect(verifySignature(key, ts, good.toUpperCase(), body, now)).to.equal('bad-signature');
    expect(verifySignature(key, ts, good.slice(7), body, now)).to.equal('bad-signature');
    expect(verifySignature(key, ts, undefined, body, now)).to.equal('bad-signature');
  });

  it('refuses timestamps outside the 5-minute window, either way, and non-numeric ones', () => {
    for (const offset of [-301, 301, -86_400]) {
      const t = String(Number(ts) + offset);
      expect(verifySignature(key, t, signNotification(key, t, body), body, now), `${offset}`).to.equal('stale');
    }
    for (const t of [String(Number(ts) - 299), String(Number(ts) + 299)])
      expect(verifySignature(key, t, signNotification(key, t, body), body, now)).to.equal('ok');
    for (const t of [undefined, '', '1e9', '-5', ' 17', '12.5'])
      expect(verifySignature(key, t, signNotification(key, t ?? '', body), body, now), `${t}`).to.equal('stale');
  });

  it('remembers signatures for the window: a replay is refused, and a full guard refuses rather than forgets', () => {
    const guard = new ReplayGuard(1000, 2);
    expect(guard.firstTime('a', 0)).to.equal(true);
    expect(guard.firstTime('a', 500)).to.equal(false);
    expect(guard.firstTime('b', 600)).to.equal(true);
    expect(guard.firstTime('c', 700)).to.equal(false);
    // Once 'a' has expired it makes room.
    expect(guard.firstTime('c', 2_100)).to.equal(true);
  });
});

describe('events webhook: the notification body', () => {
  it('parses the documented shapes, and names the store as the controller does', () => {
    const ns = parseNotification(
      '{"store":{"kind":"SecretStore","name":"vault","namespace":"team-a"},"keys":["db/prod","db/prod","x"]}',
    );
    expect(ns).to.deep.equal({
      store: { kind: 'SecretStore', name: 'vault', namespace: 'team-a' },
      keys: ['db/prod', 'x'],
    });
    expect(storeKeyOfNotification(ns!)).to.equal('ss/team-a/vault');
    const cluster = parseNotification('{"store":{"kind":"ClusterSecretStore","name":"shared"},"keys":["k"]}');
    expect(storeKeyOfNotification(cluster!)).to.equal('css/shared');
  });

  it('refuses what is not exactly that shape', () => {
    for (const bad of [
      '',
      'null',
      '[]',
      '{"store":{"kind":"SecretStore","name":"v"},"keys":["k"]}',
      '{"store":{"kind":"ClusterSecretStore","name":"v","namespace":"a"},"keys":["k"]}',
      '{"store":{"kind":"ClusterSecretStore","name":"v"},"keys":[]}',
      '{"store":{"kind":"ClusterSecretStore","name":"v"},"keys":[""]}',
      '{"store":{"kind":"ClusterSecretStore","name":"v"},"keys":[1]}',
      '{"store":{"kind":"ClusterSecretStore","name":"V"},"keys":["k"]}',
      '{"store":{"kind":"Other","name":"v"},"keys":["k"]}',
      '{"store":{"kind":"ClusterSecretStore","name":"v"},"keys":["k"],"extra":1}',
      '{"store":{"kind":"ClusterSecretStore","name":"v","x":1},"keys":["k"]}',
      `{"store":{"kind":"ClusterSecretStore","name":"v"},"keys":["${'a'.repeat(MAX_KEY_LENGTH + 1)}"]}`,
      `{"store":{"kind":"ClusterSecretStore","name":"v"},"keys":${JSON.stringify(Array.from({ length: MAX_KEYS + 1 }, (_, i) => `k${i}`))}}`,
    ])
      expect(parseNotification(bad), bad.slice(0, 80)).to.equal(undefined);
  });

  it('never throws, and accepts only objects whose every part is valid (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.uint8Array({ maxLength: 256 }).map((a) => Buffer.from(a)),
        ),
        (input) => {
          const parsed = parseNotification(input);
          if (parsed === undefined) return true;
          return parsed.keys.length > 0 && parsed.keys.every((k) => typeof k === 'string' && k.length > 0);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('round-trips every valid notification (property)', () => {
    const name = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
    const entry = fc.string({ minLength: 1, maxLength: 64 });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.record({ kind: fc.constant('SecretStore' as const), name, namespace: name }),
          fc.record({ kind: fc.constant('ClusterSecretStore' as const), name }),
        ),
        fc.uniqueArray(entry, { minLength: 1, maxLength: 20 }),
        (store, keys) => {
          const parsed = parseNotification(JSON.stringify({ store, keys }));
          expect(parsed).to.deep.equal({ store, keys });
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses any body in which one field is broken (property)', () => {
    const valid = { store: { kind: 'SecretStore', name: 'vault', namespace: 'team-a' }, keys: ['a', 'b'] };
    const breakers: ((v: typeof valid) => unknown)[] = [
      (v) => ({ ...v, keys: 'a' }),
      (v) => ({ ...v, store: { ...v.store, namespace: undefined } }),
      (v) => ({ ...v, store: { ...v.store, name: 'Not_A_Name' } }),
      (v) => ({ ...v, store: { ...v.store, kind: 'secretstore' } }),
      (v) => ({ ...v, keys: [...v.keys, null] }),
      (v) => ({ ...v, surplus: true }),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...breakers),
        (breakIt) => parseNotification(JSON.stringify(breakIt(valid))) === undefined,
      ),
    );
  });
});
