// Attack (and plain bad luck): another controller adds things to a Secret
// that secretsync wrote: an annotation, a label, a finalizer, a data key. If
// secretsync took any of that for drift and wrote the Secret back, and the
// other party put its addition back, the two would write the Secret in a loop
// (the issue saw its resourceVersion climb by hundreds in 15 s with a
// service-account-token Secret and the token controller). The drift policy:
// only what secretsync writes is compared, what others add is kept. So for a
// minute after the other party's last write, with the ManagedSecret refreshed
// every second, the operator writes the Secret not once.
import { expect } from 'chai';
import type { SecretObject } from '../../../src/secrets/desired.js';
import { sleep } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  decoded,
  ensureNamespace,
  getSecret,
  startOperator,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';

const WATCH_MS = 60_000;

/** What the other controller adds, one at a time; each is put back whenever it is missing. */
const ADDITIONS: { what: string; present(s: SecretObject): boolean; patch: object }[] = [
  {
    what: 'an annotation',
    present: (s) => s.metadata.annotations?.['reloader.example.com/last-seen'] === 'yes',
    patch: { metadata: { annotations: { 'reloader.example.com/last-seen': 'yes' } } },
  },
  {
    what: 'a label',
    present: (s) => s.metadata.labels?.['backup.example.com/include'] === 'true',
    patch: { metadata: { labels: { 'backup.example.com/include': 'true' } } },
  },
  {
    what: 'a finalizer',
    present: (s) => ((s.metadata.finalizers as string[] | undefined) ?? []).includes('backup.example.com/keep'),
    patch: { metadata: { finalizers: ['backup.example.com/keep'] } },
  },
  {
    what: 'a data key',
    present: (s) => s.data?.['injected.crt'] !== undefined,
    patch: { data: { 'injected.crt': Buffer.from('other-party').toString('base64') } },
  },
];

/** The sum of a counter's series whose labels contain `labels` (Prometheus text format). */
function counter(metrics: string, name: string, labels: string): number {
  return metrics
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && l.includes(labels))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

describe('security: another controller adds to a Secret secretsync wrote', function () {
  this.timeout(WATCH_MS + 60_000);
  const client = () => adminClient(sharedCluster());
  const namespace = uniqueName('loop');
  const secretPath = `/api/v1/namespaces/${namespace}/secrets/looped`;
  let fixture: LocalStoreFixture;
  let operator: RunningOperator;

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    fixture = await createLocalStore(client(), namespace);
    await fixture.store.put('db', { password: 'p1' });
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
  });

  after(async () => {
    await operator?.stop();
    // The finalizer would keep the Secret (and the namespace) forever.
    await client()
      .request('PATCH', secretPath, {
        body: { metadata: { finalizers: null } },
        contentType: 'application/merge-patch+json',
      })
      .catch(() => undefined);
    fixture?.cleanup();
  });

  it('keeps what others add and never writes the Secret back over a minute of refreshes', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'looped' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1s',
        data: [{ secretKey: 'password', remoteRef: { key: 'db', property: 'password' } }],
      },
    });
    await waitForSecretData(client(), namespace, 'looped', (d) => d.password === 'p1');
    const before = await operator.scrape();

    // The other controller: every 100 ms it looks at the Secret and adds (back) what it wants there,
    // one addition per look, the next one only once the earlier ones are in place.
    const started = Date.now();
    let partyWrites = 0;
    let lastPartyWrite = { at: Date.now(), resourceVersion: '' };
    const versionsAfterParty = new Set<string>();
    while (Date.now() - started < WATCH_MS) {
      const secret = await getSecret(client(), namespace, 'looped');
      if (!secret) throw new Error('the Secret is gone');
      const missing = ADDITIONS.find((a) => !a.present(secret));
      if (missing) {
        const written = await client().request<SecretObject>('PATCH', secretPath, {
          body: missing.patch,
          contentType: 'application/merge-patch+json',
        });
        partyWrites++;
        lastPartyWrite = { at: Date.now(), resourceVersion: written.metadata.resourceVersion ?? '' };
        versionsAfterParty.clear();
      } else {
        versionsAfterParty.add(secret.metadata.resourceVersion ?? '');
      }
      await sleep(100);
    }
    const after = await operator.scrape();
    const operatorWrites =
      counter(after, 'secretsync_kube_writes_total', 'resource="secrets"') -
      counter(before, 'secretsync_kube_writes_total', 'resource="secrets"');
    const passes =
      counter(after, 'secretsync_syncs_total', 'result=') - counter(before, 'secretsync_syncs_total', 'result=');
    const final = await getSecret(client(), namespace, 'looped');
    const summary =
      `other party wrote ${partyWrites} times (last ${Math.round((Date.now() - lastPartyWrite.at) / 1000)} s ago), ` +
      `the operator ${operatorWrites} times in ${WATCH_MS / 1000} s (${passes} sync passes); ` +
      `Secret at resourceVersion ${final?.metadata.resourceVersion ?? '-'}`;

    // The operator looked (a refresh every second) and wrote nothing; the other party had to add each thing once.
    expect(passes, summary).to.be.at.least(20);
    expect(operatorWrites, summary).to.equal(0);
    expect(partyWrites, summary).to.equal(ADDITIONS.length);
    expect([...versionsAfterParty], summary).to.deep.equal([lastPartyWrite.resourceVersion]);
    expect(final?.metadata.resourceVersion, summary).to.equal(lastPartyWrite.resourceVersion);
    // Ours and theirs, side by side.
    expect(decoded(final)).to.deep.equal({ password: 'p1', 'injected.crt': 'other-party' });
    for (const addition of ADDITIONS) expect(addition.present(final as SecretObject), addition.what).to.equal(true);
  });
});
