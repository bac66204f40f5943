// Over from External Secrets Operator, on the real control plane with moto:
// a Secret shaped exactly as ESO writes it (owner reference to a real
// ExternalSecret object, ESO's labels and annotation), the ExternalSecret
// converted by `secretsync convert` and applied. The converted ManagedSecret
// is Ready with zero writes to the Secret (same resourceVersion, ESO still its
// owner), through a forced second pass too; annotated to take over, one write
// replaces ESO's owner reference and bookkeeping with ours, values unchanged;
// deleting the ExternalSecret then leaves the Secret alone.
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { expect } from 'chai';
import { parseAllDocuments, stringify } from 'yaml';
import { API_VERSION, type ManagedSecret } from '../../../src/api/types.js';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseManifests } from '../../../src/cli/commands/convert.js';
import { main } from '../../../src/cli/main.js';
import { convertEso, type ConvertedObject } from '../../../src/convert/eso.js';
import type { SecretObject } from '../../../src/secrets/desired.js';
import { ANNOTATION_ADOPT_FROM_ESO } from '../../../src/secrets/eso-adoption.js';
import { sleep, waitFor } from '../../../tools/testenv/index.js';
import { captureIo } from '../../unit/helpers/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, sharedMoto, uniqueName } from '../env.js';
import {
  adminClient,
  decoded,
  ensureNamespace,
  getManagedSecret,
  getSecret,
  readyOf,
  startOperator,
  waitForReady,
  type RunningOperator,
} from '../operator.js';

const CRD_PATH = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
const ES_GROUP = 'external-secrets.io';

/** ESO's ExternalSecret CRD, cut to what an owner needs: the kind, served at v1, any spec. */
const EXTERNAL_SECRET_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `externalsecrets.${ES_GROUP}` },
  spec: {
    group: ES_GROUP,
    scope: 'Namespaced',
    names: {
      plural: 'externalsecrets',
      singular: 'externalsecret',
      kind: 'ExternalSecret',
      listKind: 'ExternalSecretList',
    },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
    ],
  },
};

describe('taking over Secrets External Secrets Operator wrote', function () {
  this.timeout(120_000);
  const namespace = uniqueName('eso');
  const client = () => adminClient(sharedCluster());
  const password = `pw-${uniqueName('eso')}`;
  const esPath = `/apis/${ES_GROUP}/v1/namespaces/${namespace}/externalsecrets`;
  let operator: RunningOperator | undefined;
  let esUid = '';

  const esoManifests = () => [
    {
      apiVersion: `${ES_GROUP}/v1`,
      kind: 'SecretStore',
      metadata: { name: 'aws', namespace },
      spec: {
        provider: {
          aws: {
            service: 'SecretsManager',
            region: sharedMoto().region,
            auth: {
              secretRef: {
                accessKeyIDSecretRef: { name: 'aws-creds', key: 'access-key-id' },
                secretAccessKeySecretRef: { name: 'aws-creds', key: 'secret-access-key' },
              },
            },
          },
        },
      },
    },
    {
      apiVersion: `${ES_GROUP}/v1`,
      kind: 'ExternalSecret',
      metadata: { name: 'db', namespace },
      spec: {
        refreshInterval: '1h',
        secretStoreRef: { name: 'aws', kind: 'SecretStore' },
        target: { name: 'db-credentials', creationPolicy: 'Owner' },
        data: [
          { secretKey: 'username', remoteRef: { key: 'eso/db', property: 'username' } },
          { secretKey: 'password', remoteRef: { key: 'eso/db', property: 'password' } },
        ],
      },
    },
  ];

  before(async () => {
    await installCrds(sharedCluster());
    const created = await sharedCluster().adminRequest('POST', CRD_PATH, EXTERNAL_SECRET_CRD);
    if (created.status !== 201 && created.status !== 409) throw new Error(`ExternalSecret CRD: HTTP ${created.status}`);
    await waitFor(
      'the ExternalSecret CRD to be served',
      async () =>
        (await sharedCluster().adminRequest('GET', `/apis/${ES_GROUP}/v1/externalsecrets`)).status === 200
          ? true
          : undefined,
      30_000,
    );
    await ensureNamespace(client(), namespace);
    await client().request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'aws-creds' },
        stringData: { 'access-key-id': 'testing', 'secret-access-key': 'testing' },
      },
    });
    await new SecretsManagerClient(sharedMoto().clientConfig()).send(
      new CreateSecretCommand({ Name: 'eso/db', SecretString: JSON.stringify({ username: 'app', password }) }),
    );
    // The ExternalSecret exists (so the garbage collector sees a live owner) and the Secret is as ESO wrote it.
    const es = await client().request<{ metadata: { uid: string } }>('POST', esPath, { body: esoManifests()[1] });
    esUid = es.metadata.uid;
    await client().request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: 'db-credentials',
          labels: {
            'reconcile.external-secrets.io/managed': 'true',
            'reconcile.external-secrets.io/created-by': 'c0ffee',
          },
          annotations: { 'reconcile.external-secrets.io/data-hash': 'ab12cd34' },
          ownerReferences: [
            {
              apiVersion: `${ES_GROUP}/v1`,
              kind: 'ExternalSecret',
              name: 'db',
              uid: esUid,
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        type: 'Opaque',
        data: { username: Buffer.from('app').toString('base64'), password: Buffer.from(password).toString('base64') },
      },
    });
  });

  after(async () => {
    await operator?.stop();
    // Cluster-scoped: later tests share this cluster.
    await sharedCluster().adminRequest('DELETE', `${CRD_PATH}/${EXTERNAL_SECRET_CRD.metadata.name}`);
  });

  it('converts every kind of the unit fixture into objects the API server admits (schemas and CEL rules)', async () => {
    const fixture = readFileSync(
      fileURLToPath(new URL('../../unit/convert/fixtures/eso-v1.yaml', import.meta.url)),
      'utf8',
    );
    const { objects } = convertEso(parseManifests(fixture, 'fixture'));
    expect(objects).to.have.length(5);
    const plural = {
      SecretStore: 'secretstores',
      ClusterSecretStore: 'clustersecretstores',
      ManagedSecret: 'managedsecrets',
    };
    for (const object of objects) {
      // Into this test's namespace (the fixture's do not exist here); a dry run admits or refuses without storing.
      const ns = object.kind === 'ClusterSecretStore' ? undefined : namespace;
      const body = { ...object, metadata: { ...object.metadata, ...(ns ? { namespace: ns } : {}) } };
      const path = `/apis/${API_VERSION}/${ns ? `namespaces/${ns}/` : ''}${plural[object.kind]}`;
      await client().request('POST', path, { body, query: { dryRun: 'All' } });
    }
  });

  it('converts, syncs with zero writes, and takes over only when told to', async () => {
    // Convert, as a user would: ESO YAML on stdin, secretsync YAML on stdout.
    const io = captureIo(
      esoManifests()
        .map((d) => stringify(d))
        .join('---\n'),
    );
    expect(await main(['node', 'secretsync', 'convert'], io)).to.equal(0);
    expect(io.errLines.at(-1)).to.match(/^converted 2 objects; 0 skipped, 0 fields dropped/);
    const converted = parseAllDocuments(io.outLines.join('\n')).map((d) => d.toJS() as ConvertedObject);
    for (const object of converted) {
      const plural = object.kind === 'SecretStore' ? 'secretstores' : 'managedsecrets';
      // ESO reaches AWS through its default endpoints; this store is pointed at moto.
      const body =
        object.kind === 'SecretStore'
          ? {
              ...object,
              spec: {
                provider: {
                  awsSecretsManager: { ...object.spec.provider.awsSecretsManager, endpoint: sharedMoto().endpoint },
                },
              },
            }
          : object;
      await client().request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/${plural}`, { body });
    }
    const before = (await getSecret(client(), namespace, 'db-credentials')) as SecretObject;
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });

    // 1. Ready, zero writes: the Secret is exactly as ESO left it.
    const ready = await waitForReady(client(), namespace, 'db', 'True', 'Synced', 30_000);
    expect(readyOf(ready)?.message).to.include('written by ExternalSecret db').and.include('makes no write');
    expect(readyOf(ready)?.message).not.to.include(password);
    // A forced pass reads the values again and still writes nothing.
    const unchangedSyncs = async () =>
      Number(
        /secretsync_syncs_total\{result="unchanged",reason="Synced"\} (\d+)/.exec(
          (await operator?.scrape()) ?? '',
        )?.[1] ?? 0,
      );
    const passes = await unchangedSyncs();
    await client().request('PATCH', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/db`, {
      body: { metadata: { annotations: { 'secretsync.io/force-sync': 'once' } } },
      contentType: 'application/merge-patch+json',
    });
    await waitFor('the forced pass', async () => ((await unchangedSyncs()) > passes ? true : undefined), 20_000);
    const untouched = (await getSecret(client(), namespace, 'db-credentials')) as SecretObject;
    expect(untouched.metadata.resourceVersion).to.equal(before.metadata.resourceVersion);
    expect(untouched.metadata.ownerReferences).to.deep.equal(before.metadata.ownerReferences);
    expect(await operator.scrape()).not.to.match(/secretsync_kube_writes_total\{resource="secrets"/);

    // 2. Told to take over: one write; ESO's owner and bookkeeping replaced by ours, values unchanged.
    const ms = await getManagedSecret(client(), namespace, 'db');
    await client().request('PATCH', `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/db`, {
      body: { metadata: { annotations: { [ANNOTATION_ADOPT_FROM_ESO]: 'true' } } },
      contentType: 'application/merge-patch+json',
    });
    const taken = await waitFor(
      'the Secret to be taken over',
      async () => {
        const s = await getSecret(client(), namespace, 'db-credentials');
        return s?.metadata.ownerReferences?.some((r) => r.kind === 'ManagedSecret') ? s : undefined;
      },
      20_000,
    );
    expect(taken.metadata.ownerReferences).to.deep.equal([
      {
        apiVersion: API_VERSION,
        kind: 'ManagedSecret',
        name: 'db',
        uid: ms.metadata.uid,
        controller: true,
        blockOwnerDeletion: false,
      },
    ]);
    expect(
      Object.keys({ ...taken.metadata.labels, ...taken.metadata.annotations }).filter((k) =>
        k.includes('external-secrets'),
      ),
    ).to.deep.equal([]);
    expect(taken.metadata.labels).to.include({ 'secretsync.io/managed': 'true' });
    expect(taken.metadata.uid).to.equal(before.metadata.uid);
    expect(decoded(taken)).to.deep.equal({ username: 'app', password });
    // The counter moves when the operator has the write's answer, which can be a moment after the test sees
    // the Secret: wait for one update, then make sure no second follows.
    const updates = /secretsync_kube_writes_total\{resource="secrets",verb="update"\} (\d+)\b/;
    const running = operator;
    await waitFor(
      'the update counted',
      async () => ((await running.scrape()).match(updates) ? true : undefined),
      5_000,
    );
    await sleep(500);
    expect((await operator.scrape()).match(updates)?.[1]).to.equal('1');
    const after = await waitForReady(client(), namespace, 'db', 'True', 'Synced');
    expect(readyOf(after as ManagedSecret)?.message).to.include('in sync');

    // 3. ESO's object can go: the Secret no longer depends on it.
    await client().request('DELETE', `${esPath}/db`, { body: { propagationPolicy: 'Background' } });
    await waitFor(
      'the ExternalSecret to be gone',
      async () => ((await sharedCluster().adminRequest('GET', `${esPath}/db`)).status === 404 ? true : undefined),
      20_000,
    );
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await getSecret(client(), namespace, 'db-credentials'))?.metadata.uid).to.equal(before.metadata.uid);
  });
});
