// Unit tests of the issued-credentials decisions (src/controller/issued.ts):
// keep, renew, re-issue, issue paths, the finalizer and revocation on
// deletion. The provider client and the Kubernetes client are stand-ins for
// our own interfaces (ProviderClient, KubeClient.request); the real Vault and
// control plane are exercised by test/integration/vault/issued.test.ts.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  API_VERSION,
  FINALIZER_REVOKE_LEASES,
  type ClusterSecretStore,
  type ManagedSecret,
  type SecretStore,
} from '../../../src/api/types.js';
import {
  certificateSerial,
  checkIssuePath,
  IssuedCredentials,
  issuePathAllowed,
  MAX_REVOKE_ATTEMPTS,
  specHash,
  issuingSources,
} from '../../../src/controller/issued.js';
import { createLogger } from '../../../src/observability/logger.js';
import {
  KeyNotFoundError,
  type IssueRequest,
  type IssuedCredential,
  type ProviderClient,
} from '../../../src/providers/provider.js';
import { b64, type SecretObject } from '../../../src/secrets/desired.js';
import { rejectionOf } from '../helpers/index.js';

const T0 = Date.parse('2026-12-05T08:00:00Z');

function store(issuePaths?: string[], kind: 'SecretStore' | 'ClusterSecretStore' = 'SecretStore') {
  const spec = { provider: { vault: { server: 'http://127.0.0.1:8200', ...(issuePaths ? { issuePaths } : {}) } } };
  return {
    apiVersion: API_VERSION,
    kind,
    metadata: kind === 'SecretStore' ? { name: 'v', namespace: 'app' } : { name: 'v' },
    spec,
  } as unknown as SecretStore | ClusterSecretStore;
}

function managedSecret(dataFrom: ManagedSecret['spec']['dataFrom']): ManagedSecret {
  return {
    apiVersion: API_VERSION,
    kind: 'ManagedSecret',
    metadata: { name: 'creds', namespace: 'app', uid: 'uid-1', generation: 1 },
    spec: { storeRef: { name: 'v' }, dataFrom },
  };
}

const dynamic = (extra: Record<string, unknown> = {}) =>
  managedSecret([{ dynamic: { path: 'aws/creds/app', ...extra } }]);

interface Calls {
  log: string[];
  issued: IssueRequest[];
  renewed: { leaseId: string; increment: number }[];
  revoked: string[];
}

/** A provider client that issues numbered credentials and records every call. */
function fakeClient(
  opts: {
    lease?: number;
    renewable?: boolean;
    grant?: (asked: number) => number;
    renewError?: Error;
    revokeError?: Error;
  } = {},
): ProviderClient & { calls: Calls } {
  const calls: Calls = { log: [], issued: [], renewed: [], revoked: [] };
  let n = 0;
  return {
    calls,
    getValue: () => Promise.reject(new Error('not used')),
    getProperties: () => Promise.reject(new Error('not used')),
    find: () => Promise.reject(new Error('not used')),
    check: () => Promise.resolve(),
    close: () => Promise.resolve(),
    issue(req: IssueRequest): Promise<IssuedCredential> {
      n++;
      calls.log.push(`issue ${req.path}`);
      calls.issued.push(req);
      return Promise.resolve({
        properties: { access_key: `AKIA${n}`, secret_key: `secret-${n}` },
        leaseId: `${req.path}/lease-${n}`,
        renewable: opts.renewable ?? true,
        leaseSeconds: opts.lease ?? 300,
      });
    },
    renewLease(leaseId: string, increment: number) {
      calls.log.push(`renew ${leaseId}`);
      calls.renewed.push({ leaseId, increment });
      if (opts.renewError) return Promise.reject(opts.renewError);
      return Promise.resolve({ leaseSeconds: (opts.grant ?? ((a) => a))(increment), renewable: true });
    },
    revokeLease(leaseId: string) {
      calls.log.push(`revoke ${leaseId}`);
      if (opts.revokeError) return Promise.reject(opts.revokeError);
      calls.revoked.push(leaseId);
      return Promise.resolve();
    },
  };
}

function harness() {
  let now = T0;
  const requests: { method: string; path: string; body: unknown }[] = [];
  const events: { type: string; reason: string; message: string }[] = [];
  const log = new PassThrough();
  const logged: string[] = [];
  log.on('data', (d: Buffer) => logged.push(d.toString()));
  const issued = new IssuedCredentials({
    client: {
      request: <T>(method: string, path: string, opts: { body?: unknown } = {}) => {
        requests.push({ method, path, body: opts.body });
        return Promise.resolve({} as T);
      },
    },
    events: { emit: (_t, type, reason, message) => void events.push({ type, reason, message }) },
    eventTarget: (ms) => ({
      apiVersion: API_VERSION,
      kind: 'ManagedSecret',
      namespace: ms.metadata.namespace ?? '',
      name: ms.metadata.name,
    }),
    log: createLogger('info', log),
    now: () => now,
  });
  return {
    issued,
    requests,
    events,
    logged,
    advance: (ms: number) => (now += ms),
    at: () => now,
  };
}

/** The Secret the controller would have written with these values. */
function secretWith(values: Record<string, string>): SecretObject {
  return {
    metadata: { name: 'creds', namespace: 'app' },
    data: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, b64(v)])),
  };
}

describe('issued credentials (src/controller/issued.ts)', () => {
  describe('issue paths', () => {
    it('matches prefixes with a slash or star, and exact paths with what is under them', () => {
      expect(issuePathAllowed('pki/issue/web', ['pki/issue/'])).to.equal(true);
      expect(issuePathAllowed('pki/issue/web', ['pki/iss*'])).to.equal(true);
      expect(issuePathAllowed('database/creds/app', ['database/creds/app'])).to.equal(true);
      expect(issuePathAllowed('database/creds/app/x', ['database/creds/app'])).to.equal(true);
      expect(issuePathAllowed('database/creds/app2', ['database/creds/app'])).to.equal(false);
      expect(issuePathAllowed('pki/sign/web', ['pki/issue/'])).to.equal(false);
    });

    it('never allows empty, . or .. segments, nor an absolute path', () => {
      for (const path of ['pki/issue/../../sys/raw', 'pki/issue/./web', 'pki//issue/web', '/pki/issue/web'])
        expect(issuePathAllowed(path, ['*']), path).to.equal(false);
    });

    it('refuses everything on a ClusterSecretStore without issuePaths, and nothing on a SecretStore without them', () => {
      const [src] = issuingSources(dynamic());
      if (!src) throw new Error('no source');
      expect(() => checkIssuePath(store(undefined, 'ClusterSecretStore'), src)).to.throw(/allows no issue paths/);
      expect(() => checkIssuePath(store(undefined, 'SecretStore'), src)).not.to.throw();
      const err = (() => {
        try {
          checkIssuePath(store(['database/creds/']), src);
        } catch (e) {
          return e as { reason: string; retry: string };
        }
        return undefined;
      })();
      expect(err?.reason).to.equal('IssuePathNotAllowed');
      expect(err?.retry).to.equal('terminal');
    });

    it('refuses a path outside issuePaths before calling the store', async () => {
      const h = harness();
      const client = fakeClient();
      const err = await rejectionOf(
        h.issued.prepare(dynamic(), store(['database/creds/']), client, undefined, false, {}),
      );
      expect((err as { reason?: string }).reason).to.equal('IssuePathNotAllowed');
      expect(client.calls.log).to.deep.equal([]);
    });
  });

  describe('prepare', () => {
    it('adds the finalizer before the first lease is issued, and records the lease without its values', async () => {
      const h = harness();
      const client = fakeClient({ lease: 300 });
      const ms = dynamic();
      const order: string[] = [];
      const request = h.issued['deps'].client.request;
      h.issued['deps'].client.request = (<T>(method: string, path: string, opts?: object) => {
        order.push(`kube ${method}`);
        return request<T>(method, path, opts);
      }) as typeof request;
      client.issue = ((orig) => (req: IssueRequest) => {
        order.push('issue');
        return orig(req);
      })(client.issue!.bind(client));
      const out = await h.issued.prepare(ms, store(), client, undefined, false, {});
      expect(order).to.deep.equal(['kube PATCH', 'issue']);
      const patch = h.requests[0];
      expect(patch?.path).to.equal(`/apis/${API_VERSION}/namespaces/app/managedsecrets/creds`);
      expect(patch?.body).to.deep.include({ kind: 'ManagedSecret' });
      expect((patch?.body as { metadata: { finalizers: string[] } }).metadata.finalizers).to.deep.equal([
        FINALIZER_REVOKE_LEASES,
      ]);
      expect(ms.metadata.finalizers).to.deep.equal([FINALIZER_REVOKE_LEASES]);
      expect(out?.values).to.deep.equal({ access_key: 'AKIA1', secret_key: 'secret-1' });
      expect(out?.entries).to.deep.equal([
        {
          source: 'dataFrom[0]',
          leaseId: 'aws/creds/app/lease-1',
          keys: ['access_key', 'secret_key'],
          issuedAt: '2026-12-05T08:00:00Z',
          expiresAt: '2026-12-05T08:05:00Z',
          // 66% of 300 s: 198 s.
          renewAt: '2026-12-05T08:03:18Z',
          renewable: true,
          leaseSeconds: 300,
          specHash: specHash(issuingSources(ms)[0]!),
        },
      ]);
      expect(JSON.stringify(out?.entries)).not.to.include('secret-1');
      expect(h.logged.join('')).not.to.include('secret-1');
      expect(h.events.map((e) => e.reason)).to.deep.equal(['Issued']);
      expect(h.events.map((e) => e.message).join('')).not.to.match(/secret-1|lease-1/);
    });

    it('adds no finalizer with onDelete: Orphan', async () => {
      const h = harness();
      await h.issued.prepare(dynamic({ onDelete: 'Orphan' }), store(), fakeClient(), undefined, false, {});
      expect(h.requests).to.deep.equal([]);
    });

    it('keeps the values (memory) before the renewal point: no second issue', async () => {
      const h = harness();
      const client = fakeClient();
      const ms = dynamic();
      const first = await h.issued.prepare(ms, store(), client, undefined, false, {});
      h.advance(100_000);
      const second = await h.issued.prepare(ms, store(), client, undefined, false, {});
      expect(client.calls.issued).to.have.length(1);
      expect(second).to.deep.equal(first);
    });

    it('keeps the values from a trusted Secret after a restart, and not from a drifted one', async () => {
      const ms = dynamic();
      const first = await harness().issued.prepare(ms, store(), fakeClient(), undefined, false, {});
      ms.status = { issued: first!.entries };
      const secret = secretWith(first!.values);
      // A new operator process: nothing in memory.
      const h = harness();
      const client = fakeClient();
      const kept = await h.issued.prepare(ms, store(), client, secret, true, {});
      expect(client.calls.issued).to.have.length(0);
      expect(kept?.values).to.deep.equal(first!.values);
      const again = await harness().issued.prepare(ms, store(), client, secret, false, {});
      expect(client.calls.issued).to.have.length(1);
      expect(again?.values.access_key).to.equal('AKIA1');
    });

    it('renews the lease at the renewal point: same lease and values, later expiry', async () => {
      const h = harness();
      const client = fakeClient({ lease: 300 });
      const ms = dynamic();
      const first = await h.issued.prepare(ms, store(), client, undefined, false, {});
      h.advance(200_000);
      const renewed = await h.issued.prepare(ms, store(), client, undefined, false, {});
      expect(client.calls.renewed).to.deep.equal([{ leaseId: 'aws/creds/app/lease-1', increment: 300 }]);
      expect(client.calls.issued).to.have.length(1);
      expect(renewed?.values).to.deep.equal(first?.values);
      expect(renewed?.entries[0]?.leaseId).to.equal('aws/creds/app/lease-1');
      expect(renewed?.entries[0]?.expiresAt).to.equal('2026-12-05T08:08:20Z');
      expect(renewed?.entries[0]?.renewAt).to.equal('2026-12-05T08:06:38Z');
      expect(h.issued.nextRenewal({ ...ms, status: { issued: renewed!.entries } })).to.equal(
        Date.parse('2026-12-05T08:06:38Z'),
      );
    });

    it('issues again when the renewed lifetime ends before the next renewal point (max_ttl)', async () => {
      const h = harness();
      // max_ttl left: 150 s of the 300 asked, less than 66% of 300.
      const client = fakeClient({ lease: 300, grant: () => 150 });
      const ms = dynamic();
      await h.issued.prepare(ms, store(), client, undefined, false, {});
      h.advance(200_000);
      const out = await h.issued.prepare(ms, store(), client, undefined, false, {});
      expect(client.calls.log).to.deep.equal([
        'issue aws/creds/app',
        'renew aws/creds/app/lease-1',
        'issue aws/creds/app',
      ]);
      expect(out?.entries[0]?.leaseId).to.equal('aws/creds/app/lease-2');
      expect(out?.values.access_key).to.equal('AKIA2');
      // The replaced lease is left to expire: not revoked.
      expect(client.calls.revoked).to.deep.equal([]);
    });

    it('issues again when the lease is gone, or not renewable', async () => {
      const h = harness();
      const gone = fakeClient({ renewError: new KeyNotFoundError('lease not found', 'x') });
      const ms = dynamic();
      await h.issued.prepare(ms, store(), gone, undefined, false, {});
      h.advance(250_000);
      await h.issued.prepare(ms, store(), gone, undefined, false, {});
      expect(gone.calls.issued).to.have.length(2);

      const h2 = harness();
      const fixed = fakeClient({ renewable: false });
      const ms2 = dynamic();
      await h2.issued.prepare(ms2, store(), fixed, undefined, false, {});
      h2.advance(250_000);
      await h2.issued.prepare(ms2, store(), fixed, undefined, false, {});
      expect(fixed.calls.renewed).to.deep.equal([]);
      expect(fixed.calls.issued).to.have.length(2);
    });

    it('passes other renewal errors on (retried with back-off; the Secret is left as it is)', async () => {
      const h = harness();
      const client = fakeClient({ renewError: new Error('connection refused') });
      const ms = dynamic();
      await h.issued.prepare(ms, store(), client, undefined, false, {});
      h.advance(250_000);
      expect((await rejectionOf(h.issued.prepare(ms, store(), client, undefined, false, {}))).message).to.equal(
        'connection refused',
      );
    });

    it('issues again when the source spec changes', async () => {
      const h = harness();
      const client = fakeClient();
      const ms = dynamic();
      await h.issued.prepare(ms, store(), client, undefined, false, {});
      ms.spec.dataFrom = [{ dynamic: { path: 'aws/creds/app', parameters: { ttl: '10m' } } }];
      await h.issued.prepare(ms, store(), client, undefined, false, {});
      expect(client.calls.issued).to.have.length(2);
      expect(client.calls.issued[1]).to.deep.equal({
        kind: 'dynamic',
        path: 'aws/creds/app',
        method: 'GET',
        parameters: { ttl: '10m' },
      });
    });

    it('issues nothing new when only renewAtPercent or onDelete changes; Orphan to Revoke adds the finalizer', async () => {
      const h = harness();
      const client = fakeClient();
      const ms = dynamic({ onDelete: 'Orphan' });
      await h.issued.prepare(ms, store(), client, undefined, false, {});
      expect(h.requests).to.deep.equal([]);
      ms.spec.dataFrom = [{ dynamic: { path: 'aws/creds/app', onDelete: 'Revoke', renewAtPercent: 80 } }];
      const out = await h.issued.prepare(ms, store(), client, undefined, false, {});
      expect(client.calls.issued).to.have.length(1);
      expect(out?.entries[0]?.leaseId).to.equal('aws/creds/app/lease-1');
      expect(h.requests).to.have.length(1);
      expect(ms.metadata.finalizers).to.deep.equal([FINALIZER_REVOKE_LEASES]);
    });

    it('refuses a store that cannot issue', async () => {
      const client = fakeClient();
      delete client.issue;
      const err = await rejectionOf(harness().issued.prepare(dynamic(), store(), client, undefined, false, {}));
      expect((err as { reason?: string }).reason).to.equal('IssueNotSupported');
    });
  });

  describe('certificates', () => {
    let dir: string;
    let pem: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'issued-'));
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-subj',
          '/CN=app.example.com',
          '-days',
          '1',
          '-set_serial',
          '0x3a4b5c',
          '-keyout',
          join(dir, 'k.pem'),
          '-out',
          join(dir, 'c.pem'),
        ],
        { stdio: 'ignore' },
      );
      pem = readFileSync(join(dir, 'c.pem'), 'utf8');
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    const certMs = () =>
      managedSecret([{ certificate: { path: 'pki/issue/web', commonName: 'app.example.com', ttl: '60s' } }]);
    const certClient = (notAfter: number) => {
      const client = fakeClient();
      client.issue = (req) => {
        client.calls.issued.push(req);
        return Promise.resolve({
          properties: { 'tls.crt': pem, 'tls.key': 'KEY', 'ca.crt': pem },
          renewable: false,
          leaseSeconds: 0,
          serialNumber: '3a:4b:5c',
          notAfter: new Date(notAfter),
        });
      };
      return client;
    };

    it('re-issues at renewAtPercent of the lifetime from issuance, with a new key', async () => {
      const h = harness();
      const client = certClient(T0 + 60_000);
      const ms = certMs();
      const out = await h.issued.prepare(ms, store(), client, undefined, false, {});
      expect(out?.entries[0]).to.deep.include({
        serialNumber: '3a:4b:5c',
        expiresAt: '2026-12-05T08:01:00Z',
        renewAt: '2026-12-05T08:00:39Z',
        keys: ['ca.crt', 'tls.crt', 'tls.key'],
      });
      // A certificate holds no lease: no finalizer.
      expect(h.requests).to.deep.equal([]);
      h.advance(30_000);
      await h.issued.prepare(ms, store(), client, undefined, false, {});
      expect(client.calls.issued).to.have.length(1);
      h.advance(10_000);
      await h.issued.prepare(ms, store(), client, undefined, false, {});
      expect(client.calls.issued).to.have.length(2);
      expect(client.calls.renewed).to.deep.equal([]);
    });

    it('keeps a certificate from the Secret only when it is the one status names', async () => {
      expect(certificateSerial(pem)).to.equal('3A4B5C');
      const ms = certMs();
      const first = await harness().issued.prepare(ms, store(), certClient(T0 + 60_000), undefined, false, {});
      ms.status = { issued: first!.entries };
      const client = certClient(T0 + 60_000);
      await harness().issued.prepare(ms, store(), client, secretWith(first!.values), true, {});
      expect(client.calls.issued).to.have.length(0);
      ms.status = { issued: [{ ...first!.entries[0]!, serialNumber: '01:02' }] };
      await harness().issued.prepare(ms, store(), client, secretWith(first!.values), true, {});
      expect(client.calls.issued).to.have.length(1);
    });
  });

  describe('finalize', () => {
    const deleting = (ms: ManagedSecret) => {
      ms.metadata.deletionTimestamp = '2026-12-05T08:10:00Z';
      ms.metadata.finalizers = [FINALIZER_REVOKE_LEASES];
      return ms;
    };

    it('revokes the leases, then releases the finalizer', async () => {
      const h = harness();
      const client = fakeClient();
      const ms = dynamic();
      const out = await h.issued.prepare(ms, store(), client, undefined, false, {});
      ms.status = { issued: out!.entries };
      h.requests.length = 0;
      const result = await h.issued.finalize(deleting(ms), () => Promise.resolve({ store: store(), client }), {});
      expect(result).to.equal('released');
      expect(client.calls.revoked).to.deep.equal(['aws/creds/app/lease-1']);
      expect(h.requests).to.have.length(1);
      expect((h.requests[0]?.body as { metadata: { finalizers: string[] } }).metadata.finalizers).to.deep.equal([]);
      expect(h.events.at(-1)?.reason).to.equal('LeaseRevoked');
    });

    it('does not revoke Orphan sources', async () => {
      const h = harness();
      const client = fakeClient();
      const ms = dynamic({ onDelete: 'Orphan' });
      const out = await h.issued.prepare(ms, store(), client, undefined, false, {});
      ms.status = { issued: out!.entries };
      expect(await h.issued.finalize(deleting(ms), () => Promise.resolve({ store: store(), client }), {})).to.equal(
        'released',
      );
      expect(client.calls.revoked).to.deep.equal([]);
    });

    it('retries while the store refuses, then releases after the bounded attempts with a Warning', async () => {
      const h = harness();
      const ms = dynamic();
      const out = await h.issued.prepare(ms, store(), fakeClient({ lease: 3600 }), undefined, false, {});
      ms.status = { issued: out!.entries };
      deleting(ms);
      h.requests.length = 0;
      const refusing = fakeClient({ revokeError: new Error('permission denied') });
      for (let i = 1; i < MAX_REVOKE_ATTEMPTS; i++)
        expect(await h.issued.finalize(ms, () => Promise.resolve({ store: store(), client: refusing }), {})).to.equal(
          'retry',
        );
      expect(h.requests).to.deep.equal([]);
      expect(await h.issued.finalize(ms, () => Promise.resolve({ store: store(), client: refusing }), {})).to.equal(
        'released',
      );
      expect(h.requests).to.have.length(1);
      const last = h.events.at(-1);
      expect(last?.type).to.equal('Warning');
      expect(last?.reason).to.equal('RevokeFailed');
      expect(last?.message).to.include('left to expire (it expires at 2026-12-05T09:00:00Z)');
    });

    it('releases at once when the store is gone and the leases have expired by themselves', async () => {
      const h = harness();
      const ms = dynamic();
      const out = await h.issued.prepare(ms, store(), fakeClient({ lease: 60 }), undefined, false, {});
      ms.status = { issued: out!.entries };
      h.advance(61_000);
      const result = await h.issued.finalize(
        deleting(ms),
        () => Promise.resolve({ reason: 'StoreNotFound', message: 'SecretStore app/v not found' }),
        {},
      );
      expect(result).to.equal('released');
      expect(h.events.at(-1)?.message).to.include('expired by themselves');
    });
  });
});
