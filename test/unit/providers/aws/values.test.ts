import { expect } from 'chai';
import { versionSelector } from '../../../../src/providers/aws-secrets-manager/index.js';
import { parameterSelector } from '../../../../src/providers/aws-parameter-store/index.js';
import {
  chunks,
  compileNameRegexp,
  mapLimit,
  selectProperty,
  toProperties,
  utf8,
} from '../../../../src/providers/aws/values.js';
import { KeyNotFoundError, ProviderError } from '../../../../src/providers/provider.js';

describe('aws values', () => {
  describe('Secrets Manager version: id or staging label', () => {
    it('defaults to AWSCURRENT', () => {
      expect(versionSelector(undefined)).to.deep.equal({ VersionStage: 'AWSCURRENT' });
      expect(versionSelector('')).to.deep.equal({ VersionStage: 'AWSCURRENT' });
    });

    it('treats UUIDs (what AWS and moto generate) as version ids, in either case', () => {
      for (const id of ['5f1c8a2e-3b4d-4c6e-9f0a-1b2c3d4e5f60', 'A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D']) {
        expect(versionSelector(id)).to.deep.equal({ VersionId: id });
      }
    });

    it('treats everything else as a staging label', () => {
      for (const stage of ['AWSPREVIOUS', 'AWSPENDING', 'blue', '5f1c8a2e-3b4d-4c6e-9f0a', 'v2']) {
        expect(versionSelector(stage)).to.deep.equal({ VersionStage: stage });
      }
    });
  });

  it('Parameter Store versions and labels become name selectors', () => {
    expect(parameterSelector('/app/db', undefined)).to.equal('/app/db');
    expect(parameterSelector('/app/db', '3')).to.equal('/app/db:3');
    expect(parameterSelector('/app/db', 'prod')).to.equal('/app/db:prod');
  });

  describe('selectProperty', () => {
    const doc = JSON.stringify({
      username: 'app',
      port: 5432,
      'dotted.name': 'as is',
      db: { password: 'pw', replicas: [{ host: 'r0' }, { host: 'r1' }] },
      a: { 'b.c': 'deep' },
      nothing: null,
    });

    it('picks fields, nested paths and array items; non-strings as JSON', () => {
      expect(selectProperty(doc, 'username', 'secret "k"', 'k')).to.equal('app');
      expect(selectProperty(doc, 'port', 'secret "k"', 'k')).to.equal('5432');
      expect(selectProperty(doc, 'dotted.name', 'secret "k"', 'k')).to.equal('as is');
      expect(selectProperty(doc, 'db.password', 'secret "k"', 'k')).to.equal('pw');
      expect(selectProperty(doc, 'db.replicas.1.host', 'secret "k"', 'k')).to.equal('r1');
      expect(selectProperty(doc, 'a.b.c', 'secret "k"', 'k')).to.equal('deep');
      expect(selectProperty(doc, 'db', 'secret "k"', 'k')).to.equal(
        JSON.stringify({ password: 'pw', replicas: [{ host: 'r0' }, { host: 'r1' }] }),
      );
      expect(selectProperty(doc, 'nothing', 'secret "k"', 'k')).to.equal('null');
    });

    it('a missing property is a KeyNotFoundError naming key and property, not the value', () => {
      for (const [text, property] of [
        [doc, 'password'],
        [doc, 'db.user'],
        [doc, 'db.replicas.7.host'],
        [doc, 'toString'],
        ['plain s3cret text', 'password'],
        ['["s3cret"]', '0'],
      ] as const) {
        let err: unknown;
        try {
          selectProperty(text, property, 'secret "app/db"', 'app/db');
        } catch (e) {
          err = e;
        }
        expect(err).to.be.instanceOf(KeyNotFoundError);
        const e = err as KeyNotFoundError;
        expect(e.key).to.equal('app/db');
        expect(e.message).to.contain('secret "app/db"').and.contain(`"${property}"`).and.not.contain('s3cret');
      }
    });
  });

  it('toProperties: JSON objects field by field, anything else as { value }', () => {
    expect(toProperties('{"a":"1","b":2,"c":{"d":true}}')).to.deep.equal({ a: '1', b: '2', c: '{"d":true}' });
    expect(toProperties('plain')).to.deep.equal({ value: 'plain' });
    expect(toProperties('[1,2]')).to.deep.equal({ value: '[1,2]' });
    expect(toProperties('42')).to.deep.equal({ value: '42' });
    expect(toProperties('{not json')).to.deep.equal({ value: '{not json' });
    expect(toProperties('')).to.deep.equal({ value: '' });
  });

  it('binary values only as valid UTF-8', () => {
    expect(utf8(Buffer.from('héllo'), 'secret "k"')).to.equal('héllo');
    expect(() => utf8(Buffer.from([0xff, 0xfe, 0x00]), 'secret "k"')).to.throw(
      ProviderError,
      'secret "k" is binary and not valid UTF-8 text',
    );
  });

  it('chunks, bounded concurrency and regexps', async () => {
    expect(chunks([1, 2, 3, 4, 5], 2)).to.deep.equal([[1, 2], [3, 4], [5]]);
    let inFlight = 0;
    let most = 0;
    const out = await mapLimit([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 2));
      inFlight--;
      return n * 2;
    });
    expect(out).to.deep.equal([2, 4, 6, 8, 10, 12, 14]);
    expect(most).to.equal(3);
    expect(compileNameRegexp(undefined)).to.equal(undefined);
    expect(compileNameRegexp('^app/')?.test('app/x')).to.equal(true);
    expect(() => compileNameRegexp('(')).to.throw('find.nameRegexp "(" is not a valid RE2 regular expression');
  });
});
