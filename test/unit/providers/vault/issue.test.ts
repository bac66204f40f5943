// Unit tests of the Vault issuer (src/providers/vault/issue.ts): the requests
// it makes and how Vault's answers become IssuedCredentials. The HTTP client
// is a stand-in for our own VaultHttp.request; certificates are real (made
// with openssl: a root, an intermediate and a leaf). The real Vault is in
// test/integration/vault/issued.test.ts.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyNotFoundError } from '../../../../src/providers/provider.js';
import { VaultFailure, VaultRequestError } from '../../../../src/providers/vault/errors.js';
import type { VaultRequestOptions } from '../../../../src/providers/vault/http.js';
import { VaultIssuer } from '../../../../src/providers/vault/issue.js';
import { rejectionOf } from '../../helpers/index.js';

interface Sent {
  method: string;
  path: string;
  opts: VaultRequestOptions;
}

function issuer(answer: (sent: Sent) => unknown) {
  const sent: Sent[] = [];
  const http = {
    request: <T>(method: string, path: string, opts: VaultRequestOptions = {}): Promise<T> => {
      const s = { method, path, opts };
      sent.push(s);
      try {
        return Promise.resolve(answer(s) as T);
      } catch (err) {
        return Promise.reject(err as Error);
      }
    },
  };
  return { issuer: new VaultIssuer(http, 'SecretStore app/vault'), sent };
}

const refused = (status: number, errors: string[]) =>
  new VaultRequestError(
    `Vault PUT v1/sys/leases/renew: refused (HTTP ${status})`,
    status,
    errors,
    new VaultFailure('x', status, false),
  );

describe('Vault issuer (src/providers/vault/issue.ts)', () => {
  let dir: string;
  const pem: Record<'root' | 'inter' | 'leaf' | 'key', string> = { root: '', inter: '', leaf: '', key: '' };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'vault-issue-'));
    const f = (n: string) => join(dir, n);
    const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
    writeFileSync(f('ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    ssl('req', '-x509', ...ec, '-subj', '/CN=root', '-days', '2', '-keyout', f('root.key'), '-out', f('root.pem'));
    ssl('req', ...ec, '-subj', '/CN=inter', '-keyout', f('inter.key'), '-out', f('inter.csr'));
    ssl(
      'x509',
      '-req',
      '-in',
      f('inter.csr'),
      '-CA',
      f('root.pem'),
      '-CAkey',
      f('root.key'),
      '-days',
      '2',
      '-extfile',
      f('ca.ext'),
      '-set_serial',
      '2',
      '-out',
      f('inter.pem'),
    );
    ssl('req', ...ec, '-subj', '/CN=web.example.com', '-keyout', f('leaf.key'), '-out', f('leaf.csr'));
    ssl(
      'x509',
      '-req',
      '-in',
      f('leaf.csr'),
      '-CA',
      f('inter.pem'),
      '-CAkey',
      f('inter.key'),
      '-days',
      '1',
      '-set_serial',
      '0x1f2e',
      '-out',
      f('leaf.pem'),
    );
    pem.root = readFileSync(f('root.pem'), 'utf8');
    pem.inter = readFileSync(f('inter.pem'), 'utf8');
    pem.leaf = readFileSync(f('leaf.pem'), 'utf8');
    pem.key = readFileSync(f('leaf.key'), 'utf8');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('issues a certificate: POST with common_name, alt_names, ip_sans, ttl; tls.crt without the root', async () => {
    const { issuer: v, sent } = issuer(() => ({
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      data: {
        certificate: pem.leaf,
        issuing_ca: pem.inter,
        ca_chain: [pem.inter, pem.root],
        private_key: pem.key,
        private_key_type: 'ec',
        serial_number: '1f:2e',
        expiration: 1,
      },
    }));
    const cred = await v.issue({
      kind: 'certificate',
      path: 'pki/issue/web',
      commonName: 'web.example.com',
      altNames: ['a.example.com', 'b.example.com'],
      ipSans: ['10.0.0.1'],
      ttl: '1h',
    });
    expect(sent).to.have.length(1);
    expect(sent[0]?.method).to.equal('POST');
    expect(sent[0]?.path).to.equal('pki/issue/web');
    expect(sent[0]?.opts.body).to.deep.equal({
      common_name: 'web.example.com',
      alt_names: 'a.example.com,b.example.com',
      ip_sans: '10.0.0.1',
      ttl: '1h',
    });
    expect(cred.properties['tls.crt']).to.equal(`${pem.leaf.trim()}\n${pem.inter.trim()}\n`);
    expect(cred.properties['tls.crt']).not.to.include(pem.root.trim());
    expect(cred.properties['ca.crt']).to.equal(pem.inter);
    expect(cred.properties['tls.key']).to.equal(pem.key);
    expect(cred.serialNumber).to.equal('1f:2e');
    expect(cred.leaseId).to.equal(undefined);
    // Validity from the certificate itself, not from `expiration`.
    expect(cred.notAfter!.getTime()).to.be.greaterThan(Date.now() + 23 * 3600_000);
  });

  it('reads a dynamic secret: GET with query parameters, or POST with a body; lease fields; non-string data as JSON', async () => {
    const answer = {
      lease_id: 'database/creds/app/abc',
      renewable: true,
      lease_duration: 3600,
      data: { username: 'v-app-1', password: 'pw', extra: { a: 1 }, empty: null },
    };
    const { issuer: v, sent } = issuer(() => answer);
    const got = await v.issue({ kind: 'dynamic', path: 'database/creds/app', method: 'GET', parameters: { x: '1' } });
    expect(sent[0]).to.deep.include({ method: 'GET', path: 'database/creds/app' });
    expect(sent[0]?.opts.query).to.deep.equal({ x: '1' });
    expect(got).to.deep.equal({
      properties: { username: 'v-app-1', password: 'pw', extra: '{"a":1}' },
      leaseId: 'database/creds/app/abc',
      renewable: true,
      leaseSeconds: 3600,
    });
    await v.issue({ kind: 'dynamic', path: 'aws/sts/app', method: 'POST', parameters: { ttl: '15m' } });
    expect(sent[1]).to.deep.include({ method: 'POST', path: 'aws/sts/app' });
    expect(sent[1]?.opts.body).to.deep.equal({ ttl: '15m' });
  });

  it('percent-encodes path segments (a path is never a second query string)', async () => {
    const { issuer: v, sent } = issuer(() => ({ data: { a: 'b' } }));
    await v.issue({ kind: 'dynamic', path: 'kv/a b?c', method: 'GET' });
    expect(sent[0]?.path).to.equal('kv/a%20b%3Fc');
  });

  it('renews with sys/leases/renew and reports what Vault granted', async () => {
    const { issuer: v, sent } = issuer(() => ({ lease_id: 'l', renewable: true, lease_duration: 7 }));
    expect(await v.renewLease('aws/creds/app/x', 10)).to.deep.equal({ leaseSeconds: 7, renewable: true });
    expect(sent[0]).to.deep.include({ method: 'PUT', path: 'sys/leases/renew' });
    expect(sent[0]?.opts.body).to.deep.equal({ lease_id: 'aws/creds/app/x', increment: 10 });
  });

  it('turns a lease Vault no longer knows into KeyNotFoundError, and passes other refusals on', async () => {
    const gone = issuer(() => {
      throw refused(400, ['lease not found']);
    });
    expect(await rejectionOf(gone.issuer.renewLease('x', 10))).to.be.instanceOf(KeyNotFoundError);
    const other = issuer(() => {
      throw refused(400, ['something else']);
    });
    const err = await rejectionOf(other.issuer.renewLease('x', 10));
    expect(err).to.be.instanceOf(VaultRequestError);
    expect(err).not.to.be.instanceOf(KeyNotFoundError);
  });

  it('revokes with sys/leases/revoke; an unknown lease counts as revoked', async () => {
    const { issuer: v, sent } = issuer(() => undefined);
    await v.revokeLease('aws/creds/app/x');
    expect(sent[0]).to.deep.include({ method: 'PUT', path: 'sys/leases/revoke' });
    expect(sent[0]?.opts.body).to.deep.equal({ lease_id: 'aws/creds/app/x' });
    const unknown = issuer(() => {
      throw refused(400, ['invalid lease']);
    });
    await unknown.issuer.revokeLease('nope');
    const denied = issuer(() => {
      throw refused(400, ['other']);
    });
    expect(await rejectionOf(denied.issuer.revokeLease('x'))).to.be.instanceOf(VaultRequestError);
  });

  it("quotes Vault's reason when it refuses to issue (IssueRefused, retried)", async () => {
    const { issuer: v } = issuer(() => {
      throw refused(400, ['common name bad.invalid not allowed by this role']);
    });
    const err = (await rejectionOf(
      v.issue({ kind: 'certificate', path: 'pki/issue/web', commonName: 'bad.invalid' }),
    )) as Error & { reason?: string; retry?: string };
    expect(err.reason).to.equal('IssueRefused');
    expect(err.retry).to.equal('transient');
    expect(err.message).to.include('common name bad.invalid not allowed by this role');
  });

  it('says nothing of the value when an answer lacks the certificate', async () => {
    const { issuer: v } = issuer(() => ({ data: { private_key: 'SECRET-KEY' } }));
    const err = await rejectionOf(v.issue({ kind: 'certificate', path: 'pki/issue/web', commonName: 'x' }));
    expect(err.message).to.include('without a certificate');
    expect(err.message).not.to.include('SECRET-KEY');
  });
});
