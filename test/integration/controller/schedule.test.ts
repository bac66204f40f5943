// refreshSchedule: a cron schedule brings a changed store value to the Secret
// at the next slot (5-field cron: the shortest slot is a minute, so this test
// waits up to one), and the status and metrics say when the last success was.
import { expect } from 'chai';
import { waitFor } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  getManagedSecret,
  startOperator,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';

describe('refreshSchedule (cron)', function () {
  this.timeout(150_000);
  let operator: RunningOperator;
  let fixture: LocalStoreFixture;
  const namespace = uniqueName('cron');
  const client = () => adminClient(sharedCluster());

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    fixture = await createLocalStore(client(), namespace);
    await fixture.store.put('cron/value', { v: 'first' });
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
  });

  after(async () => {
    await operator?.stop();
    fixture?.cleanup();
  });

  it('refreshes at the next slot: a value changed in the store reaches the Secret within a minute', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'every-minute' },
      spec: {
        storeRef: { name: 'local' },
        refreshSchedule: '* * * * *',
        data: [{ secretKey: 'v', remoteRef: { key: 'cron/value', property: 'v' } }],
      },
    });
    await waitForSecretData(client(), namespace, 'every-minute', (d) => d.v === 'first');
    const first = await waitForReady(client(), namespace, 'every-minute', 'True', 'Synced');
    const firstSuccess = first.status?.lastSuccessfulSyncTime;
    expect(firstSuccess, 'status.lastSuccessfulSyncTime').to.be.a('string');

    await fixture.store.put('cron/value', { v: 'second' });
    const changedAt = Date.now();
    await waitForSecretData(client(), namespace, 'every-minute', (d) => d.v === 'second', 75_000);
    expect(Date.now() - changedAt, 'at the next minute slot').to.be.lessThan(75_000);

    // The status patch follows the Secret write: wait for it rather than read in between.
    const after = await waitFor(
      'the second sync recorded',
      async () => {
        const ms = await getManagedSecret(client(), namespace, 'every-minute');
        return ms.status?.lastSuccessfulSyncTime !== firstSuccess ? ms : undefined;
      },
      10_000,
      50,
    );
    expect(Date.parse(after.status?.lastSuccessfulSyncTime ?? '')).to.be.greaterThan(Date.parse(firstSuccess ?? ''));
    const metrics = await operator.scrape();
    const line = metrics
      .split('\n')
      .find(
        (l) =>
          l.startsWith('secretsync_managedsecret_last_success_timestamp_seconds{') &&
          l.includes(`namespace="${namespace}"`) &&
          l.includes('name="every-minute"'),
      );
    expect(line, 'the per-ManagedSecret last-success metric').to.be.a('string');
    const seconds = Number(line?.split(' ').at(-1));
    expect(Date.now() / 1000 - seconds).to.be.lessThan(70);
  });
});
