// A restarted operator (or a replica taking over a shard) resumes each
// ManagedSecret's refresh schedule from what status vouches for, instead of
// reading every backend again at once (issue 18: a restart at 50,000 read
// 50,000 values). What status cannot vouch for is still read at once: a Secret
// changed by hand, a spec changed, a force-sync asked for, and a store with an
// event source (a change made while no operator listened would be missed).
import { expect } from 'chai';
import type { Counter } from 'prom-client';
import { API_VERSION, ANNOTATION_FORCE_SYNC } from '../../../src/api/types.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  getManagedSecret,
  getSecret,
  startOperator,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';

/** A counter's total over all its label sets. */
const total = async (counter: Counter) => (await counter.get()).values.reduce((sum, v) => sum + v.value, 0);

describe('restart: the refresh schedule resumes from status', function () {
  this.timeout(120_000);
  const namespace = uniqueName('restart');
  const client = () => adminClient(sharedCluster());
  let plain: LocalStoreFixture;
  let watched: LocalStoreFixture;
  let operator: RunningOperator | undefined;
  const msPath = (name: string) => `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/${name}`;

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    plain = await createLocalStore(client(), namespace);
    watched = await createLocalStore(client(), namespace, 'watched-key');
    await createSecretStore(client(), namespace, 'plain', plain.dir);
    await client().request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name: 'watched' },
        spec: {
          provider: {
            local: { path: watched.dir, masterKeySecretRef: { name: 'watched-key' }, events: { watch: true } },
          },
        },
      },
    });
    for (const name of ['kept', 'edited', 'respecced', 'forced', 'once'])
      await plain.store.put(`k/${name}`, { v: 'one' });
    for (const name of ['watched', 'watched-once']) await watched.store.put(`k/${name}`, { v: 'one' });
    const spec = (store: string, key: string, refreshInterval = '1h') => ({
      storeRef: { name: store },
      refreshInterval,
      data: [{ secretKey: 'v', remoteRef: { key, property: 'v' } }],
    });
    for (const name of ['kept', 'edited', 'respecced', 'forced'])
      await createManagedSecret(client(), namespace, { metadata: { name }, spec: spec('plain', `k/${name}`) });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'watched' },
      spec: spec('watched', 'k/watched'),
    });
    // refreshInterval 0 (sync once; with an event source, on each change): the same rule as any other.
    await createManagedSecret(client(), namespace, { metadata: { name: 'once' }, spec: spec('plain', 'k/once', '0') });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'watched-once' },
      spec: spec('watched', 'k/watched-once', '0'),
    });

    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
    for (const name of ['kept', 'edited', 'respecced', 'forced', 'watched', 'once', 'watched-once']) {
      await waitForReady(client(), namespace, name, 'True', 'Synced');
      await waitForSecretData(client(), namespace, name, (d) => d.v === 'one');
    }
    await operator.stop();
    operator = undefined;
  });

  after(async () => {
    await operator?.stop();
    plain?.cleanup();
    watched?.cleanup();
  });

  it('verifies what status vouches for without a read, and reads what it cannot vouch for', async () => {
    // While no operator runs: every backend value changes, and some objects change too.
    for (const name of ['kept', 'edited', 'respecced', 'forced', 'once'])
      await plain.store.put(`k/${name}`, { v: 'two' });
    for (const name of ['watched', 'watched-once']) await watched.store.put(`k/${name}`, { v: 'two' });
    const edited = await getSecret(client(), namespace, 'edited');
    if (!edited?.data) throw new Error('Secret edited missing');
    edited.data.v = Buffer.from('by hand').toString('base64');
    await client().request('PUT', `/api/v1/namespaces/${namespace}/secrets/edited`, { body: edited });
    await client().request('PATCH', msPath('respecced'), {
      body: {
        spec: {
          data: [
            { secretKey: 'v', remoteRef: { key: 'k/respecced', property: 'v' } },
            { secretKey: 'w', remoteRef: { key: 'k/respecced', property: 'v' } },
          ],
        },
      },
      contentType: 'application/merge-patch+json',
    });
    await client().request('PATCH', msPath('forced'), {
      body: { metadata: { annotations: { [ANNOTATION_FORCE_SYNC]: 'now' } } },
      contentType: 'application/merge-patch+json',
    });
    const keptBefore = await getManagedSecret(client(), namespace, 'kept');

    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
    const op = operator;
    // Read at once: the hand edit (drift), the new spec, the force-sync, the store with an event source (also
    // with refreshInterval 0: a change made while no operator listened is a change all the same).
    await waitForSecretData(client(), namespace, 'edited', (d) => d.v === 'two', 15_000);
    await waitForSecretData(client(), namespace, 'respecced', (d) => d.v === 'two' && d.w === 'two', 15_000);
    await waitForSecretData(client(), namespace, 'forced', (d) => d.v === 'two', 15_000);
    await waitForSecretData(client(), namespace, 'watched', (d) => d.v === 'two', 15_000);
    await waitForSecretData(client(), namespace, 'watched-once', (d) => d.v === 'two', 15_000);

    // Verified from status: Ready for this generation, the Secret holds what status recorded, the refresh
    // is an hour away (or never, with refreshInterval 0): no read, so the value changed in the store arrives
    // with the next refresh, not now.
    const deadline = Date.now() + 15_000;
    while ((await total(op.metrics.verifiedFromStatus)) < 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(await total(op.metrics.verifiedFromStatus)).to.equal(2);
    for (const name of ['kept', 'once']) {
      const secret = await getSecret(client(), namespace, name);
      expect(Buffer.from(secret?.data?.v ?? '', 'base64').toString(), name).to.equal('one');
    }
    const keptAfter = await getManagedSecret(client(), namespace, 'kept');
    expect(keptAfter.metadata.resourceVersion, 'no status write for the verified one').to.equal(
      keptBefore.metadata.resourceVersion,
    );
    const wrote = (await op.metrics.syncs.get()).values.filter((v) => v.labels.result === 'synced');
    expect(
      wrote.reduce((sum, v) => sum + v.value, 0),
      'five writes: edited, respecced, forced, watched, watched-once',
    ).to.equal(5);

    // The schedule still holds it: a force-sync reads it now.
    await client().request('PATCH', msPath('kept'), {
      body: { metadata: { annotations: { [ANNOTATION_FORCE_SYNC]: 'now' } } },
      contentType: 'application/merge-patch+json',
    });
    await waitForSecretData(client(), namespace, 'kept', (d) => d.v === 'two', 15_000);
  });
});
