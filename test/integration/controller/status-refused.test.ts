// A status write that fails (the API server refuses it, a timeout, a conflict
// it cannot resolve) is not the end of the pass's record: nothing else would
// bring status back to the truth before the next refresh (an hour here), so
// the ManagedSecret is looked at again with back-off. The next pass finds the
// Secret ahead of status, writes nothing to the Secret, and records it. The
// refusal is a ValidatingAdmissionPolicy of the real API server.
import { expect } from 'chai';
import { API_VERSION, ANNOTATION_FORCE_SYNC } from '../../../src/api/types.js';
import { sleep, waitFor } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  kubeWritesOf,
  getManagedSecret,
  refuseStatusWrites,
  startOperator,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';

describe('a refused status write', function () {
  this.timeout(120_000);
  const namespace = uniqueName('status-refused');
  const client = () => adminClient(sharedCluster());
  let fixture: LocalStoreFixture;
  let operator: RunningOperator | undefined;
  let lift: (() => Promise<void>) | undefined;

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    fixture = await createLocalStore(client(), namespace);
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    await fixture.store.put('late', { v: 'one' });
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
  });

  after(async () => {
    await lift?.();
    await operator?.stop();
    fixture?.cleanup();
  });

  it('is retried with back-off: status catches up once the API accepts it, with no second Secret write', async () => {
    const op = operator!;
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'late' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1h',
        data: [{ secretKey: 'v', remoteRef: { key: 'late', property: 'v' } }],
      },
    });
    await waitForReady(client(), namespace, 'late', 'True', 'Synced', 30_000);
    const before = (await getManagedSecret(client(), namespace, 'late')).status?.syncedVersion;

    lift = await refuseStatusWrites(client(), namespace, 'late');
    await fixture.store.put('late', { v: 'two' });
    await client().request('PATCH', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/late`, {
      body: { metadata: { annotations: { [ANNOTATION_FORCE_SYNC]: String(Date.now()) } } },
      contentType: 'application/merge-patch+json',
    });
    await waitForSecretData(client(), namespace, 'late', (d) => d.v === 'two', 15_000);
    const secretWrites = await kubeWritesOf(op.metrics, 'secrets');
    // Refused for a few seconds: status still says what it said, and the operator says why in its log.
    await sleep(3_000);
    expect((await getManagedSecret(client(), namespace, 'late')).status?.syncedVersion).to.equal(before);
    expect(op.logs.some((l) => l.includes('could not write status') && l.includes('late'))).to.equal(true);

    const liftedAt = Date.now();
    await lift();
    lift = undefined;
    const caughtUp = await waitFor(
      'status to catch up',
      async () => {
        const ms = await getManagedSecret(client(), namespace, 'late');
        return ms.status?.syncedVersion !== before ? ms : undefined;
      },
      30_000,
      100,
    );
    console.log(`      status caught up ${Date.now() - liftedAt} ms after the refusal was lifted`);
    const ready = caughtUp.status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready?.status).to.equal('True');
    expect(ready?.observedGeneration).to.equal(caughtUp.metadata.generation);
    // The Secret was already right: the retried passes wrote status only.
    expect(await kubeWritesOf(op.metrics, 'secrets')).to.equal(secretWrites);
  });

  it('is retried for a ManagedSecret that writes no Secret (creationPolicy None), where no drift would bring it back', async () => {
    await fixture.store.put('unwritten', { v: 'one' });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'unwritten' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1h',
        target: { creationPolicy: 'None' },
        data: [{ secretKey: 'v', remoteRef: { key: 'unwritten', property: 'v' } }],
      },
    });
    await waitForReady(client(), namespace, 'unwritten', 'True', 'Synced', 30_000);
    const before = (await getManagedSecret(client(), namespace, 'unwritten')).status?.syncedVersion;

    lift = await refuseStatusWrites(client(), namespace, 'unwritten');
    const refusalsBefore = operator!.logs.filter((l) => l.includes('could not write status')).length;
    await fixture.store.put('unwritten', { v: 'two' });
    await client().request('PATCH', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/unwritten`, {
      body: { metadata: { annotations: { [ANNOTATION_FORCE_SYNC]: String(Date.now()) } } },
      contentType: 'application/merge-patch+json',
    });
    await waitFor(
      'a refused status write',
      async () =>
        operator!.logs.filter((l) => l.includes('could not write status')).length > refusalsBefore ? true : undefined,
      15_000,
      50,
    );
    await lift();
    lift = undefined;
    await waitFor(
      'status to catch up',
      async () =>
        (await getManagedSecret(client(), namespace, 'unwritten')).status?.syncedVersion !== before ? true : undefined,
      30_000,
      100,
    );
  });
});
