// Attack: `creationPolicy: Merge` into a Secret of the namespace that nobody
// offered: another tool's credentials, a TLS key. With the operator's right to
// write Secrets, a ManagedSecret could overwrite any key of any Secret it can
// name. Merge writes only into a Secret that consents with the annotation
// secretsync.io/merge-from naming the ManagedSecret; otherwise MergeNotAllowed,
// and the Secret is not touched at all (no key, no label, no annotation).
import { expect } from 'chai';
import { API_VERSION } from '../../../src/api/types.js';
import { sleep, waitFor } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  getSecret,
  startOperator,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';
import type { SecretObject } from '../../../src/secrets/desired.js';
import { eventsAbout, failureMessage, reconciled } from './input-fixtures.js';

/** The consent annotation, spelled out: it is the API a Secret's owner uses (and older code has no constant for it). */
const ANNOTATION_MERGE_FROM = 'secretsync.io/merge-from';

describe('security: creationPolicy Merge into a Secret that has not consented', function () {
  this.timeout(120_000);
  const client = () => adminClient(sharedCluster());
  const namespace = uniqueName('merge');
  const secretPath = `/api/v1/namespaces/${namespace}/secrets/shared`;
  const ours = `ours-${uniqueName('v')}`;
  let fixture: LocalStoreFixture;
  let operator: RunningOperator;

  /** The whole Secret as it is now, to compare with later (what a write would change). */
  const snapshot = async () => {
    const s = (await getSecret(client(), namespace, 'shared')) as SecretObject;
    return {
      resourceVersion: s.metadata.resourceVersion,
      data: s.data,
      labels: s.metadata.labels,
      annotations: s.metadata.annotations,
    };
  };
  /** The Secret's owner sets the consent annotation, and asks the ManagedSecret to sync now (not at its next back-off). */
  const annotate = async (value: string) => {
    await client().request('PATCH', secretPath, {
      body: { metadata: { annotations: { [ANNOTATION_MERGE_FROM]: value } } },
      contentType: 'application/merge-patch+json',
    });
    await client().request('PATCH', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/merger`, {
      body: { metadata: { annotations: { 'secretsync.io/force-sync': value } } },
      contentType: 'application/merge-patch+json',
    });
  };

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    fixture = await createLocalStore(client(), namespace);
    await fixture.store.put('db', { password: ours });
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    // Someone else's Secret.
    await client().request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'shared', labels: { app: 'theirs' } },
        stringData: { theirs: 'keep-me', password: 'their-password' },
      },
    });
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
  });

  after(async () => {
    await operator?.stop();
    fixture?.cleanup();
  });

  it('refuses without the annotation (MergeNotAllowed), then with one naming another ManagedSecret, and merges once it names this one', async () => {
    const untouched = await snapshot();
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'merger' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1s',
        target: { creationPolicy: 'Merge', name: 'shared' },
        // It would overwrite their password.
        data: [{ secretKey: 'password', remoteRef: { key: 'db', property: 'password' } }],
      },
    });
    const first = await reconciled(client(), namespace, 'merger');
    await sleep(3_000); // a few refreshes and retries
    expect(await snapshot(), 'the Secret without consent').to.deep.equal(untouched);
    expect(first.reason, first.message).to.equal('MergeNotAllowed');
    expect(first.message).to.contain(`add the annotation ${ANNOTATION_MERGE_FROM}: merger to the Secret`);
    expect(await eventsAbout(client(), namespace, 'merger', 'MergeNotAllowed')).to.have.length.greaterThan(0);

    // Consent for another ManagedSecret is not consent for this one.
    await annotate('someone-else');
    const forOther = await snapshot();
    // Its next message names the other ManagedSecret.
    await waitFor(
      'MergeNotAllowed naming the ManagedSecret the Secret consents to',
      async () =>
        (await failureMessage(client(), namespace, 'merger', 'MergeNotAllowed')).includes(
          'allows merging only from ManagedSecret "someone-else"',
        )
          ? true
          : undefined,
      15_000,
      100,
    );
    await sleep(2_000);
    expect(await snapshot(), 'the Secret consenting to another ManagedSecret').to.deep.equal(forOther);

    // Consent: merged, their keys kept.
    await annotate('merger');
    const merged = await waitForSecretData(client(), namespace, 'shared', (d) => d.password === ours, 15_000);
    expect(Buffer.from(merged.data?.theirs ?? '', 'base64').toString()).to.equal('keep-me');
    expect(merged.metadata.labels?.app).to.equal('theirs');
  });
});
