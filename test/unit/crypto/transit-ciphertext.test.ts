import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { ManagedSecret } from '../../../src/api/types.js';
import { canonicalContext, encryptionContext } from '../../../src/crypto/ciphertext.js';
import {
  formatTransitCiphertext,
  parseTransitCiphertext,
  transitContext,
} from '../../../src/crypto/transit-ciphertext.js';
import { DecryptError } from '../../../src/providers/provider.js';

const VAULT = `vault:v3:${Buffer.alloc(40, 1).toString('base64')}`;

describe('crypto/transit-ciphertext', () => {
  it('writes the documented text form and reads it back', () => {
    const text = formatTransitCiphertext({ scope: 'namespace', key: 'team-a.key_1', vault: VAULT });
    expect(text).to.equal(`secretsync:v1:transit:namespace:team-a.key_1:${VAULT}`);
    expect(parseTransitCiphertext(`  ${text}\n`)).to.deep.equal({
      scope: 'namespace',
      key: 'team-a.key_1',
      keyVersion: 3,
      vault: VAULT,
    });
  });

  it('binds with the same context as KMS, base64 of its canonical JSON', () => {
    const binding = { namespace: 'team-a', managedSecret: 'db', secretKey: 'password' };
    for (const scope of ['strict', 'namespace', 'cluster'] as const) {
      const context = Buffer.from(transitContext(scope, binding), 'base64');
      expect(context.equals(canonicalContext(encryptionContext(scope, binding))), scope).to.equal(true);
    }
    expect(Buffer.from(transitContext('namespace', binding), 'base64').toString()).to.equal(
      '[["secretsync.io/namespace","team-a"],["secretsync.io/scope","namespace"]]',
    );
    expect(() => transitContext('strict', { namespace: 'team-a' })).to.throw(
      DecryptError,
      'needs a ManagedSecret name',
    );
  });

  it('refuses what it would not write: leading zeros, non-canonical base64, short bodies, odd key names', () => {
    const body = Buffer.alloc(40, 1).toString('base64');
    for (const text of [
      `secretsync:v1:transit:strict:k:vault:v01:${body}`,
      `secretsync:v1:transit:strict:k:vault:v0:${body}`,
      `secretsync:v1:transit:strict:k:vault:v1:${body.replace(/=+$/, '')}`,
      `secretsync:v1:transit:strict:k:vault:v1:${Buffer.alloc(20).toString('base64')}`,
      `secretsync:v1:transit:strict:-k:vault:v1:${body}`,
      `secretsync:v1:transit:strict:k/x:vault:v1:${body}`,
      `secretsync:v1:transit:Strict:k:vault:v1:${body}`,
      `secretsync:v1:transit:strict:k:vault:v1:${body} x`,
    ]) {
      expect(() => parseTransitCiphertext(text), text).to.throw(DecryptError);
    }
  });

  it('parses the ciphertext in examples/vault-transit.yaml', () => {
    const docs = parseAllDocuments(
      readFileSync(new URL('../../../examples/vault-transit.yaml', import.meta.url), 'utf8'),
    );
    const ms = docs.map((d) => d.toJS() as ManagedSecret).find((d) => d.kind === 'ManagedSecret');
    const c = parseTransitCiphertext(ms?.spec.data?.[0]?.ciphertext ?? '');
    expect(c).to.include({ scope: 'strict', key: 'secretsync' });
  });
});
