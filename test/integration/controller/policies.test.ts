import { expect } from 'chai';
import { ANNOTATION_MERGE_FROM, API_VERSION } from '../../../src/api/types.js';
import { sleep, waitFor } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  decoded,
  ensureNamespace,
  getManagedSecret,
  getSecret,
  readyOf,
  startOperator,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
  type RunningOperator,
} from '../operator.js';

describe('ManagedSecret targets: creation and deletion policies, templates, extract and find', function () {
  this.timeout(150_000);
  let operator: RunningOperator;
  let fixture: LocalStoreFixture;
  const namespace = uniqueName('policy');
  const client = () => adminClient(sharedCluster());
  const msPath = (name: string) => `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/${name}`;

  before(async () => {
    await installCrds(sharedCluster());
    await ensureNamespace(client(), namespace);
    fixture = await createLocalStore(client(), namespace);
    await fixture.store.put('db', { host: 'db.internal', user: 'app', password: 'p1' });
    await fixture.store.put('team/alpha', { value: 'a' });
    await fixture.store.put('team/beta', { value: 'b' });
    await fixture.store.put('other/gamma', { value: 'g' });
    await createSecretStore(client(), namespace, 'local', fixture.dir);
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
  });

  after(async () => {
    await operator?.stop();
    fixture?.cleanup();
  });

  it('Owner: the Secret is deleted with its ManagedSecret', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'owned' },
      spec: {
        storeRef: { name: 'local' },
        target: { creationPolicy: 'Owner' },
        data: [{ secretKey: 'p', remoteRef: { key: 'db', property: 'password' } }],
      },
    });
    await waitForSecretData(client(), namespace, 'owned', (d) => d.p === 'p1');
    await client().request('DELETE', msPath('owned'));
    await waitFor(
      'the owned Secret to be garbage-collected',
      async () => ((await getSecret(client(), namespace, 'owned')) ? undefined : true),
      90_000,
      250,
    );
  });

  it('Orphan: the Secret stays after its ManagedSecret is deleted', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'orphan' },
      spec: {
        storeRef: { name: 'local' },
        target: { creationPolicy: 'Orphan', name: 'orphan-secret' },
        data: [{ secretKey: 'p', remoteRef: { key: 'db', property: 'password' } }],
      },
    });
    const secret = await waitForSecretData(client(), namespace, 'orphan-secret', (d) => d.p === 'p1');
    expect(secret.metadata.ownerReferences ?? []).to.have.length(0);
    await client().request('DELETE', msPath('orphan'));
    await sleep(2_000);
    expect(decoded(await getSecret(client(), namespace, 'orphan-secret'))).to.deep.equal({ p: 'p1' });
  });

  it('Merge: writes only our keys into an existing Secret and leaves the others untouched', async () => {
    await client().request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        // The Secret's owner lets ManagedSecret "merger" write into it.
        metadata: { name: 'shared', labels: { team: 'x' }, annotations: { [ANNOTATION_MERGE_FROM]: 'merger' } },
        stringData: { theirs: 'keep-me' },
      },
    });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'merger' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1s',
        target: { creationPolicy: 'Merge', name: 'shared' },
        data: [{ secretKey: 'ours', remoteRef: { key: 'db', property: 'user' } }],
      },
    });
    const secret = await waitForSecretData(client(), namespace, 'shared', (d) => d.ours === 'app');
    expect(decoded(secret).theirs).to.equal('keep-me');
    expect(secret.metadata.labels?.team).to.equal('x');
    expect(secret.metadata.ownerReferences ?? []).to.have.length(0);
    // A key of ours edited by hand comes back; theirs is never touched.
    secret.data = {
      ...secret.data,
      ours: Buffer.from('edited').toString('base64'),
      theirs: Buffer.from('changed-by-them').toString('base64'),
    };
    await client().request('PUT', `/api/v1/namespaces/${namespace}/secrets/shared`, { body: secret });
    await waitForSecretData(
      client(),
      namespace,
      'shared',
      (d) => d.ours === 'app' && d.theirs === 'changed-by-them',
      5_000,
    );
  });

  it('Merge: refuses a Secret that has not consented, saying which annotation to add, until it is added', async () => {
    const secretPath = `/api/v1/namespaces/${namespace}/secrets/no-consent`;
    await client().request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'no-consent' }, stringData: { theirs: 'keep-me' } },
    });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'uninvited' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1s',
        target: { creationPolicy: 'Merge', name: 'no-consent' },
        data: [{ secretKey: 'ours', remoteRef: { key: 'db', property: 'user' } }],
      },
    });
    const message = await waitFor(
      'ManagedSecret uninvited refused (MergeNotAllowed)',
      async () => {
        const ready = readyOf(await getManagedSecret(client(), namespace, 'uninvited'));
        return ready?.status === 'False' && ready.reason === 'MergeNotAllowed' ? ready.message : undefined;
      },
      15_000,
      100,
    );
    expect(message).to.contain(`add the annotation ${ANNOTATION_MERGE_FROM}: uninvited to the Secret`);
    expect(decoded(await getSecret(client(), namespace, 'no-consent'))).to.deep.equal({ theirs: 'keep-me' });
    // The owner consents: the keys are merged (the failure is retried with back-off).
    await client().request('PATCH', secretPath, {
      body: { metadata: { annotations: { [ANNOTATION_MERGE_FROM]: 'uninvited' } } },
      contentType: 'application/merge-patch+json',
    });
    await waitForSecretData(
      client(),
      namespace,
      'no-consent',
      (d) => d.ours === 'app' && d.theirs === 'keep-me',
      60_000,
    );
  });

  it('Owner: a key someone else adds to our Secret is kept and makes no write', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'shared-owned' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1s',
        data: [{ secretKey: 'p', remoteRef: { key: 'db', property: 'password' } }],
      },
    });
    const secret = await waitForSecretData(client(), namespace, 'shared-owned', (d) => d.p === 'p1');
    secret.data = { ...secret.data, 'added-by-others': Buffer.from('x').toString('base64') };
    const added = (await client().request('PUT', `/api/v1/namespaces/${namespace}/secrets/shared-owned`, {
      body: secret,
    })) as { metadata: { resourceVersion: string } };
    // Several refreshes later: still theirs, and not written again.
    await sleep(4_000);
    const after = await getSecret(client(), namespace, 'shared-owned');
    expect(decoded(after)).to.deep.equal({ p: 'p1', 'added-by-others': 'x' });
    expect(after?.metadata.resourceVersion).to.equal(added.metadata.resourceVersion);
  });

  it('Merge: reports TargetMissing when the Secret does not exist, and creates nothing', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'merge-missing' },
      spec: {
        storeRef: { name: 'local' },
        target: { creationPolicy: 'Merge', name: 'absent' },
        data: [{ secretKey: 'x', remoteRef: { key: 'db', property: 'user' } }],
      },
    });
    await waitForReady(client(), namespace, 'merge-missing', 'False', 'TargetMissing');
    expect(await getSecret(client(), namespace, 'absent')).to.equal(undefined);
  });

  it('None: writes no Secret and reports Ready in status', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'dry' },
      spec: {
        storeRef: { name: 'local' },
        target: { creationPolicy: 'None' },
        data: [{ secretKey: 'x', remoteRef: { key: 'db', property: 'user' } }],
      },
    });
    const ms = await waitForReady(client(), namespace, 'dry', 'True', 'Synced');
    expect(ms.status?.syncedVersion).to.match(/^hmac-sha256:/);
    expect(await getSecret(client(), namespace, 'dry')).to.equal(undefined);
  });

  it('refuses to take over a Secret it does not manage (SecretConflict), leaving it as it was', async () => {
    await client().request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'taken' }, stringData: { a: 'theirs' } },
    });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'taken' },
      spec: { storeRef: { name: 'local' }, data: [{ secretKey: 'a', remoteRef: { key: 'db', property: 'user' } }] },
    });
    const ms = await waitForReady(client(), namespace, 'taken', 'False', 'SecretConflict');
    expect(readyOf(ms)?.message).to.contain('Merge');
    expect(decoded(await getSecret(client(), namespace, 'taken'))).to.deep.equal({ a: 'theirs' });
  });

  it('renders templates, sets type, labels and annotations, and never copies Argo CD tracking metadata', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'templated' },
      spec: {
        storeRef: { name: 'local' },
        data: [
          { secretKey: 'user', remoteRef: { key: 'db', property: 'user' } },
          { secretKey: 'password', remoteRef: { key: 'db', property: 'password' } },
          { secretKey: 'host', remoteRef: { key: 'db', property: 'host' } },
        ],
        target: {
          type: 'secretsync.io/dsn',
          labels: { tier: 'db', 'app.kubernetes.io/instance': 'argo-app' },
          annotations: { note: 'from template', 'argocd.argoproj.io/tracking-id': 'app:/Secret:x' },
          template: { data: { dsn: 'postgres://{{user}}:{{password}}@{{host}}/app?sslmode=require&x=<y>' } },
        },
      },
    });
    const secret = await waitForSecretData(client(), namespace, 'templated', (d) => d.dsn !== undefined);
    expect(decoded(secret)).to.deep.equal({ dsn: 'postgres://app:p1@db.internal/app?sslmode=require&x=<y>' });
    expect(secret.type).to.equal('secretsync.io/dsn');
    expect(secret.metadata.labels?.tier).to.equal('db');
    expect(secret.metadata.annotations?.note).to.equal('from template');
    expect(secret.metadata.labels?.['app.kubernetes.io/instance']).to.equal(undefined);
    expect(secret.metadata.annotations?.['argocd.argoproj.io/tracking-id']).to.equal(undefined);
  });

  it('reports InvalidTemplate for a template that does not parse', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'bad-template' },
      spec: {
        storeRef: { name: 'local' },
        data: [{ secretKey: 'u', remoteRef: { key: 'db', property: 'user' } }],
        target: { template: { data: { x: '{{#open}} never closed' } } },
      },
    });
    const ms = await waitForReady(client(), namespace, 'bad-template', 'False', 'InvalidTemplate');
    expect(readyOf(ms)?.message).to.contain('"x"');
  });

  it('reports InvalidTemplate for a template naming a value that was not fetched, writing nothing', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'typo-template' },
      spec: {
        storeRef: { name: 'local' },
        data: [{ secretKey: 'user', remoteRef: { key: 'db', property: 'user' } }],
        target: { template: { data: { dsn: 'postgres://{{user}}:{{pasword}}@db/app' } } },
      },
    });
    const ms = await waitForReady(client(), namespace, 'typo-template', 'False', 'InvalidTemplate');
    expect(readyOf(ms)?.message).to.contain('"dsn"').and.contain('"pasword"');
    expect(readyOf(ms)?.message).to.not.contain('p1');
    expect(await getSecret(client(), namespace, 'typo-template')).to.equal(undefined);
  });

  it('dataFrom.extract takes every property of an entry', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'extracted' },
      spec: { storeRef: { name: 'local' }, dataFrom: [{ extract: { key: 'db' } }] },
    });
    const secret = await waitForSecretData(client(), namespace, 'extracted', (d) => Object.keys(d).length === 3);
    expect(decoded(secret)).to.deep.equal({ host: 'db.internal', user: 'app', password: 'p1' });
  });

  it('dataFrom.find by prefix and by regexp; Retain keeps a vanished entry, Delete drops it', async () => {
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'found-retain' },
      spec: { storeRef: { name: 'local' }, refreshInterval: '1s', dataFrom: [{ find: { prefix: 'team/' } }] },
    });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'found-delete' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1s',
        target: { deletionPolicy: 'Delete' },
        dataFrom: [{ find: { nameRegexp: '^(team|other)/(alpha|gamma)$' } }],
      },
    });
    await waitForSecretData(
      client(),
      namespace,
      'found-retain',
      (d) => d.alpha === 'a' && d.beta === 'b' && Object.keys(d).length === 2,
    );
    await waitForSecretData(
      client(),
      namespace,
      'found-delete',
      (d) => d['team_alpha'] === 'a' && d['other_gamma'] === 'g' && Object.keys(d).length === 2,
    );
    await fixture.store.delete('team/alpha');
    await waitForSecretData(
      client(),
      namespace,
      'found-delete',
      (d) => d['team_alpha'] === undefined && d['other_gamma'] === 'g',
      10_000,
    );
    await sleep(1_500);
    expect(decoded(await getSecret(client(), namespace, 'found-retain'))).to.deep.equal({ alpha: 'a', beta: 'b' });
    await fixture.store.put('team/alpha', { value: 'a' });
  });

  it('deletionPolicy Delete drops a data key whose entry is gone; Retain keeps the Secret and says KeyNotFound', async () => {
    await fixture.store.put('temp', { v: 'temp-value' });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'del-data' },
      spec: {
        storeRef: { name: 'local' },
        refreshInterval: '1s',
        target: { deletionPolicy: 'Delete' },
        data: [
          { secretKey: 'keep', remoteRef: { key: 'db', property: 'user' } },
          { secretKey: 'gone', remoteRef: { key: 'temp', property: 'v' } },
        ],
      },
    });
    await waitForSecretData(client(), namespace, 'del-data', (d) => d.gone === 'temp-value' && d.keep === 'app');
    await fixture.store.delete('temp');
    await waitForSecretData(client(), namespace, 'del-data', (d) => d.gone === undefined && d.keep === 'app', 10_000);
    await waitForReady(client(), namespace, 'del-data', 'True', 'Synced');
  });
});
