import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { dataHmac } from '../../../src/secrets/hmac.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('dataHmac', () => {
  const key = randomBytes(32);
  const data = { username: b64('app'), password: b64('hunter2-correct-horse') };

  it('has the form hmac-sha256:<32 hex digits>', () => {
    expect(dataHmac(key, 'Opaque', data)).to.match(/^hmac-sha256:[0-9a-f]{32}$/);
  });

  it('is stable for the same input, whatever the order of the keys', () => {
    const reversed = { password: data.password, username: data.username };
    expect(dataHmac(key, 'Opaque', data)).to.equal(dataHmac(key, 'Opaque', data));
    expect(dataHmac(key, 'Opaque', reversed)).to.equal(dataHmac(key, 'Opaque', data));
    expect(dataHmac(Buffer.from(key), 'Opaque', { ...data })).to.equal(dataHmac(key, 'Opaque', data));
  });

  it('differs with the HMAC key', () => {
    expect(dataHmac(randomBytes(32), 'Opaque', data)).to.not.equal(dataHmac(key, 'Opaque', data));
  });

  it('differs with the Secret type', () => {
    expect(dataHmac(key, 'kubernetes.io/basic-auth', data)).to.not.equal(dataHmac(key, 'Opaque', data));
  });

  it('differs with a value', () => {
    expect(dataHmac(key, 'Opaque', { ...data, password: b64('hunter3-correct-horse') })).to.not.equal(
      dataHmac(key, 'Opaque', data),
    );
  });

  it('differs with a key name, an added key or a removed key', () => {
    const base = dataHmac(key, 'Opaque', data);
    expect(dataHmac(key, 'Opaque', { user: data.username, password: data.password })).to.not.equal(base);
    expect(dataHmac(key, 'Opaque', { ...data, extra: '' })).to.not.equal(base);
    expect(dataHmac(key, 'Opaque', { username: data.username })).to.not.equal(base);
  });

  it('does not confuse where one key or value ends and the next begins', () => {
    expect(dataHmac(key, 'Opaque', { ab: 'c' })).to.not.equal(dataHmac(key, 'Opaque', { a: 'bc' }));
    expect(dataHmac(key, 'Opaque', { a: 'b', c: 'd' })).to.not.equal(dataHmac(key, 'Opaque', { a: 'bcd' }));
  });

  it('differs between empty data and data with an empty value', () => {
    expect(dataHmac(key, 'Opaque', {})).to.not.equal(dataHmac(key, 'Opaque', { a: '' }));
  });

  it('never contains a value or its base64', () => {
    // Values long enough that they cannot turn up in 32 hex digits by chance.
    for (const value of ['deadbeefcafe0123456789abcdef', 'correct horse battery staple']) {
      for (const stored of [b64(value), value]) {
        const out = dataHmac(key, 'Opaque', { password: stored });
        expect(out).to.not.include(value);
        expect(out).to.not.include(b64(value));
        expect(out).to.not.include(Buffer.from(value).toString('hex').slice(0, 16));
      }
    }
  });
});
