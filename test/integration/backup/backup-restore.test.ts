// `secretsync backup` from the shared cluster and `secretsync restore` into a
// second, empty cluster (real kube-apiservers), with a key file and with KMS
// (moto): same objects, same synced Secrets and local store entries, idempotent,
// tampered files refused with nothing applied, and no plaintext anywhere.
// A ReplicationTarget goes with them (spec only); the Secret holding its DR
// kubeconfig — here one secretsync itself syncs, so --include-synced would see
// it — is a credential and stays out, and restore says it is missing.
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBackup, readHeader, type BackupHeader } from '../../../src/backup/format.js';
import { BACKUP_KINDS } from '../../../src/backup/kinds.js';
import { API_VERSION, type ReplicationTarget } from '../../../src/api/types.js';
import type { EncryptDeps } from '../../../src/cli/commands/encrypt.js';
import { main, type CliIo } from '../../../src/cli/main.js';
import { isNotFound, type KubeClient, type KubeObject } from '../../../src/kube/client.js';
import { sdkKmsApi } from '../../../src/providers/aws-kms/kms-api.js';
import { LocalStore } from '../../../src/providers/local/store.js';
import { sleep, TestCluster } from '../../../tools/testenv/index.js';
import { installCrds } from '../crds.js';
import { sharedCluster, sharedMoto, uniqueName } from '../env.js';
import {
  adminClient,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  decoded,
  ensureNamespace,
  getSecret,
  startOperator,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
} from '../operator.js';

interface Run {
  code: number;
  out: string[];
  err: string[];
  /** What the command wrote as progress to a stderr that is not a terminal (a CI log). */
  progress: string[];
}

describe('secretsync backup and restore into another cluster', function () {
  this.timeout(240_000);
  const namespace = uniqueName('backup');
  const clusterStore = uniqueName('backup-css');
  // Distinctive values: every file and every line of CLI output is searched for them.
  const password = `pw-${randomBytes(8).toString('hex')}`;
  const apiToken = `tok-${randomBytes(8).toString('hex')}`;
  const drToken = `drtok-${randomBytes(8).toString('hex')}`;
  const plaintexts = [password, apiToken, drToken];
  /**
   * A ReplicationTarget reads its kubeconfig from a Secret in the operator's namespace. Here that namespace
   * (--operator-namespace) is the test's own, and the Secret is written by a ManagedSecret from the local
   * store, as one may keep a DR kubeconfig in a backend: a synced Secret, yet a credential. The operators
   * this test runs (startOperator: the Manager, no Replicator) never act on the target; the DR server is
   * a closed port anyway.
   */
  const replicationTarget = uniqueName('backup-rt');
  const kubeconfigSecret = 'dr-kubeconfig';
  const drKubeconfig = [
    'apiVersion: v1',
    'kind: Config',
    'clusters: [{name: dr, cluster: {server: "https://127.0.0.1:1"}}]',
    `users: [{name: dr, user: {token: ${drToken}}}]`,
    'contexts: [{name: dr, context: {cluster: dr, user: dr}}]',
    'current-context: dr',
    '',
  ].join('\n');
  const rtSpec = {
    kubeconfigSecretRef: { name: kubeconfigSecret, key: 'kubeconfig' },
    clusterStores: { selector: { matchLabels: { dr: 'replicate' } } },
    stores: { namespaces: [namespace] },
    managedSecrets: { namespaces: [namespace], selector: { matchLabels: { tier: 'critical' } } },
    includeCredentials: false,
    overrides: { aws: { region: 'us-west-2' } },
    prune: true,
    interval: '1m',
  };
  const kmsEndpoints: (string | undefined)[] = [];
  const allOutput: string[] = [];
  let target: TestCluster;
  let fixture: LocalStoreFixture;
  let tmp: string;
  let keyFile: string;
  let backupFile: string;
  let targetStoreDir: string;
  const source = () => adminClient(sharedCluster());
  const dest = () => adminClient(target);

  // moto through the real SDK client, built from the command's own --region/--endpoint.
  const kmsDeps: EncryptDeps = {
    kms({ region, endpoint }) {
      kmsEndpoints.push(endpoint);
      return sdkKmsApi(
        new KMSClient({
          region: region ?? sharedMoto().region,
          endpoint,
          credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
        }),
      );
    },
  };

  async function cli(...args: string[]): Promise<Run> {
    const out: string[] = [];
    const err: string[] = [];
    const progress: string[] = [];
    const io: CliIo = {
      out: (l) => out.push(l),
      err: (l) => err.push(l),
      readStdin: async () => Buffer.alloc(0),
      progressStream: { isTTY: false, write: (chunk: string) => progress.push(...chunk.split('\n').filter(Boolean)) },
    };
    const code = await main(['node', 'secretsync', ...args], io, kmsDeps);
    allOutput.push(...out, ...err, ...progress);
    return { code, out, err, progress };
  }

  /** The report line "VERB  WHAT" (verbs are padded to one width). */
  function expectLine(run: Run, verb: string, what: string): void {
    const found = run.out.some((l) => l.startsWith(verb) && l.slice(verb.length).trimStart() === what);
    expect(found, `no line "${verb} ${what}" in:\n${run.out.join('\n')}`).to.equal(true);
  }

  const restoreArgs = (file: string, ...extra: string[]) => [
    'restore',
    '--in',
    file,
    '--kubeconfig',
    target.kubeconfigPath,
    '--operator-namespace',
    namespace,
    ...extra,
  ];

  before(async () => {
    const started = TestCluster.start({ name: 'backup-target' });
    tmp = mkdtempSync(join(tmpdir(), 'secretsync-backup-it-'));
    keyFile = join(tmp, 'backup.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    backupFile = join(tmp, 'cluster.backup');
    targetStoreDir = join(tmp, 'restored-store');

    await installCrds(sharedCluster());
    await ensureNamespace(source(), namespace);
    fixture = await createLocalStore(source(), namespace);
    await fixture.store.put('db/prod', { password });
    await fixture.store.put('api', { token: apiToken });
    await fixture.store.put('dr/kubeconfig', { kubeconfig: drKubeconfig });
    await createSecretStore(source(), namespace, 'local', fixture.dir);
    await source().request('POST', `/apis/${API_VERSION}/clustersecretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'ClusterSecretStore',
        metadata: { name: clusterStore, labels: { team: 'platform' } },
        spec: {
          provider: { local: { path: fixture.dir, masterKeySecretRef: { name: 'master-key', namespace } } },
          conditions: [{ namespaces: [namespace] }],
        },
      },
    });
    await createManagedSecret(source(), namespace, {
      metadata: { name: 'db', annotations: { 'example.com/owner': 'team-a' } },
      spec: {
        storeRef: { name: 'local' },
        data: [{ secretKey: 'password', remoteRef: { key: 'db/prod', property: 'password' } }],
      },
    });
    await createManagedSecret(source(), namespace, {
      metadata: { name: 'api' },
      spec: {
        storeRef: { kind: 'ClusterSecretStore', name: clusterStore },
        target: { name: 'api-token', labels: { app: 'api' } },
        data: [{ secretKey: 'token', remoteRef: { key: 'api', property: 'token' } }],
      },
    });
    await createManagedSecret(source(), namespace, {
      metadata: { name: 'dr-kubeconfig' },
      spec: {
        storeRef: { name: 'local' },
        target: { name: kubeconfigSecret },
        data: [{ secretKey: 'kubeconfig', remoteRef: { key: 'dr/kubeconfig', property: 'kubeconfig' } }],
      },
    });
    // Cluster-scoped; with the things the source cluster assigns or its controllers write (finalizer, status),
    // which a restore must not carry over.
    await source().request('POST', `/apis/${API_VERSION}/replicationtargets`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'ReplicationTarget',
        metadata: {
          name: replicationTarget,
          labels: { site: 'dr' },
          annotations: { 'example.com/owner': 'platform' },
          finalizers: ['example.com/keep'],
        },
        spec: rtSpec,
      },
    });
    await source().request('PATCH', `/apis/${API_VERSION}/replicationtargets/${replicationTarget}/status`, {
      contentType: 'application/merge-patch+json',
      body: {
        status: {
          observedGeneration: 1,
          objectsInSync: 3,
          lagSeconds: 0,
          lastReplicationTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
          conditions: [
            {
              type: 'Ready',
              status: 'True',
              reason: 'Replicated',
              message: '3 object(s) in sync with the DR cluster',
              lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
              observedGeneration: 1,
            },
          ],
        },
      },
    });
    const operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
    try {
      await waitForSecretData(source(), namespace, 'db', (d) => d.password === password, 30_000);
      await waitForSecretData(source(), namespace, 'api-token', (d) => d.token === apiToken, 30_000);
      await waitForSecretData(source(), namespace, kubeconfigSecret, (d) => d.kubeconfig === drKubeconfig, 30_000);
    } finally {
      await operator.stop();
    }
    target = await started;
    await installCrds(target);
  });

  after(async () => {
    await source()
      .request('DELETE', `/apis/${API_VERSION}/clustersecretstores/${clusterStore}`)
      .catch(() => undefined);
    // Cluster-scoped: it would outlive the namespace and show up in other tests' replicators.
    await source()
      .request('PATCH', `/apis/${API_VERSION}/replicationtargets/${replicationTarget}`, {
        contentType: 'application/merge-patch+json',
        body: { metadata: { finalizers: null } },
      })
      .catch(() => undefined);
    await source()
      .request('DELETE', `/apis/${API_VERSION}/replicationtargets/${replicationTarget}`)
      .catch(() => undefined);
    await target?.stop();
    fixture?.cleanup();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  async function ours(client: KubeClient): Promise<Record<string, unknown>> {
    const get = async (path: string) => {
      try {
        const o = await client.get<KubeObject>(path);
        return { labels: o.metadata.labels, annotations: o.metadata.annotations, spec: o.spec };
      } catch (err) {
        if (isNotFound(err)) return undefined;
        throw err;
      }
    };
    const base = `/apis/${API_VERSION}`;
    return {
      css: await get(`${base}/clustersecretstores/${clusterStore}`),
      store: await get(`${base}/namespaces/${namespace}/secretstores/local`),
      db: await get(`${base}/namespaces/${namespace}/managedsecrets/db`),
      api: await get(`${base}/namespaces/${namespace}/managedsecrets/api`),
      rt: await get(`${base}/replicationtargets/${replicationTarget}`),
    };
  }

  /** What `ours` finds in a cluster where nothing of the backup was restored. */
  const NOTHING_OURS = { css: undefined, store: undefined, db: undefined, api: undefined, rt: undefined };

  /** A refused restore left the target as it was: no namespace, none of our objects, no store directory. */
  async function expectNothingRestored(): Promise<void> {
    expect(await namespaceExists(dest(), namespace)).to.equal(false);
    expect(await ours(dest())).to.deep.equal(NOTHING_OURS);
    expect(existsSync(targetStoreDir)).to.equal(false);
  }

  async function namespaceExists(client: KubeClient, name: string): Promise<boolean> {
    try {
      await client.get(`/api/v1/namespaces/${name}`);
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  it('backup with a key file: a header that says what and when, no plaintext in the file or the output', async () => {
    const before = Date.now();
    const run = await cli(
      'backup',
      '--out',
      backupFile,
      '--key-file',
      keyFile,
      '--kubeconfig',
      sharedCluster().kubeconfigPath,
      '--include-local-store',
      '--local-store-dir',
      fixture.dir,
      '--include-synced',
      '--operator-namespace',
      namespace,
    );
    expect(run.code, run.err.join('\n')).to.equal(0);
    const bytes = await readFile(backupFile);
    const header: BackupHeader = readHeader(bytes);
    expect(Date.parse(header.createdAt)).to.be.at.least(before - 1000);
    expect(header.source.server).to.equal(sharedCluster().kubeConfig().getCurrentCluster()?.server);
    expect(header.source.context).to.equal(sharedCluster().kubeConfig().getCurrentContext());
    expect(header.contents.localStoreEntries).to.equal(3);
    expect(run.progress).to.deep.equal([
      `backup: kinds listed ${BACKUP_KINDS.length}/${BACKUP_KINDS.length} (100%), done`,
      'backup: local store files read 3/3 (100%), done',
    ]);
    expect(header.contents.managedSecrets).to.be.at.least(2);
    expect(header.contents.secretStores).to.be.at.least(1);
    expect(header.contents.clusterSecretStores).to.be.at.least(1);
    expect(header.contents.syncedSecrets).to.be.at.least(2);
    expect(header.encryption.mode).to.equal('key-file');
    // installCrds installs every CRD: the ReplicationTarget kind is served, and ours is counted.
    expect(header.contents.replicationTargets).to.be.at.least(1);
    expect(run.out.join('\n')).to.match(/, [1-9]\d* ReplicationTarget, /);
    // The synced kubeconfig Secret is a credential: left out, and the output says so.
    expect(run.out).to.include(
      `skipped Secret ${namespace}/${kubeconfigSecret} (the kubeconfig of ReplicationTarget ${replicationTarget}; backups hold no credentials)`,
    );
    expect(run.out.at(-1)).to.match(/^wrote .*cluster\.backup \(\d+ bytes\)$/);
    const text = bytes.toString('latin1');
    for (const p of plaintexts) {
      expect(text).not.to.include(p);
      expect(text).not.to.include(Buffer.from(p).toString('base64'));
    }
    expect(text).not.to.include((await readFile(keyFile)).toString('base64'));

    // Inside: the ReplicationTarget as spec, name, labels and annotations only; no kubeconfig Secret, and no
    // trace of its token (the local store entry that holds it stays encrypted by the store's master key).
    const { payload } = await openBackup(bytes, { mode: 'key-file', keyFile: await readFile(keyFile) });
    const rts = payload.objects.filter((o) => o.kind === 'ReplicationTarget');
    expect(rts.length).to.equal(header.contents.replicationTargets);
    expect(rts.find((o) => o.metadata.name === replicationTarget)).to.deep.equal({
      apiVersion: API_VERSION,
      kind: 'ReplicationTarget',
      metadata: {
        name: replicationTarget,
        labels: { site: 'dr' },
        annotations: { 'example.com/owner': 'platform' },
      },
      spec: rtSpec,
    });
    const synced = (payload.syncedSecrets ?? []).map((x) => `${x.namespace}/${x.name}`);
    expect(synced).to.include.members([`${namespace}/db`, `${namespace}/api-token`]);
    expect(synced).not.to.include(`${namespace}/${kubeconfigSecret}`);
    expect(synced.length).to.equal(header.contents.syncedSecrets);
    const inside = JSON.stringify(payload);
    expect(inside).not.to.include(drToken);
    expect(inside).not.to.include(Buffer.from(drKubeconfig).toString('base64'));
    // An existing file is not overwritten without --force.
    const again = await cli(
      'backup',
      '--out',
      backupFile,
      '--key-file',
      keyFile,
      '--kubeconfig',
      sharedCluster().kubeconfigPath,
    );
    expect(again.code).to.equal(1);
    expect(again.err.join('\n')).to.include('exists; pass --force');
  });

  it('refuses a tampered file (payload or header) and applies nothing', async () => {
    const good = await readFile(backupFile);
    const payloadFlip = Buffer.from(good);
    const at = good.length - 40;
    payloadFlip[at] = payloadFlip[at] === 0x41 ? 0x42 : 0x41;
    const headerEdit = Buffer.from(
      good.toString('utf8').replace(/"managedSecrets":(\d+)/, (_m, n: string) => `"managedSecrets":${Number(n) + 1}`),
    );
    for (const [name, bytes] of [
      ['payload', payloadFlip],
      ['header', headerEdit],
    ] as const) {
      const file = join(tmp, `tampered-${name}.backup`);
      await writeFile(file, bytes);
      const run = await cli(
        ...restoreArgs(file, '--key-file', keyFile, '--create-namespaces', '--local-store-dir', targetStoreDir),
      );
      expect(run.code, name).to.equal(1);
      expect(run.err.join('\n'), name).to.match(
        /backup file is corrupted or was tampered with \(authentication failed\); nothing was applied/,
      );
      expect(run.out, name).to.deep.equal([]);
    }
    await expectNothingRestored();
  });

  it('refuses a wrong key file by its fingerprint, before applying anything', async () => {
    const wrong = join(tmp, 'wrong.key');
    await writeFile(wrong, randomBytes(32));
    const run = await cli(...restoreArgs(backupFile, '--key-file', wrong, '--create-namespaces'));
    expect(run.code).to.equal(1);
    expect(run.err.join('\n')).to.match(/wrong key file: .*; nothing was applied/);
    expect(await namespaceExists(dest(), namespace)).to.equal(false);
  });

  it('refuses to write local store entries into a directory of another store (another master key)', async () => {
    const otherDir = join(tmp, 'other-store');
    const other = new LocalStore(otherDir, randomBytes(32), { createDirectory: true });
    try {
      await other.put('unrelated', { x: 'y' });
    } finally {
      other.close();
    }
    const before = (await readdir(otherDir)).sort();
    const run = await cli(
      ...restoreArgs(backupFile, '--key-file', keyFile, '--create-namespaces', '--local-store-dir', otherDir),
    );
    expect(run.code).to.equal(1);
    expect(run.err.join('\n')).to.match(/holds entries under master key id .*; nothing was applied$/);
    expect((await readdir(otherDir)).sort()).to.deep.equal(before);
    expect(await namespaceExists(dest(), namespace)).to.equal(false);
  });

  it('stops before applying anything when namespaces are missing and --create-namespaces is not given', async () => {
    const run = await cli(...restoreArgs(backupFile, '--key-file', keyFile));
    expect(run.code).to.equal(1);
    expect(run.err.join('\n')).to.include(`namespaces missing on the target cluster: `).and.include(namespace);
    expect(run.err.join('\n')).to.include('nothing was applied');
    expect(await ours(dest())).to.deep.equal(NOTHING_OURS);
  });

  it('--dry-run prints the header and what it would do, and applies nothing', async () => {
    const run = await cli(
      ...restoreArgs(
        backupFile,
        '--key-file',
        keyFile,
        '--dry-run',
        '--create-namespaces',
        '--local-store-dir',
        targetStoreDir,
      ),
    );
    expect(run.code, run.err.join('\n')).to.equal(0);
    expect(run.out[0]).to.match(/^backup [0-9a-f-]{36}$/);
    expect(run.out.join('\n')).to.include('key derived (HKDF-SHA256) from a key file with fingerprint');
    expectLine(
      run,
      'would create',
      `Namespace ${namespace} (the objects in it are not validated by the server in a dry run)`,
    );
    expectLine(run, 'would create', `ManagedSecret ${namespace}/db`);
    expectLine(run, 'would create', `ClusterSecretStore ${clusterStore}`);
    expectLine(run, 'would create', `ReplicationTarget ${replicationTarget}`);
    expectLine(run, 'would create', `Secret ${namespace}/api-token`);
    expectLine(run, 'would create', 'local store entry db/prod');
    expect(run.out.at(-1)).to.match(
      /^dry run, nothing applied: \d+ created, 0 changed, 0 unchanged, 0 left alone, 0 skipped, 0 failed$/,
    );
    expect(run.progress.at(-1)).to.match(/^restore: objects compared \(dry run\) (\d+)\/\1 \(100%\), done$/);
    await expectNothingRestored();
  });

  it('restores into the empty cluster: the same objects, synced Secrets and local store entries', async () => {
    const run = await cli(
      ...restoreArgs(backupFile, '--key-file', keyFile, '--create-namespaces', '--local-store-dir', targetStoreDir),
    );
    expect(run.code, [...run.out, ...run.err].join('\n')).to.equal(0);
    expectLine(run, 'created', `ManagedSecret ${namespace}/db`);
    expectLine(run, 'created', `Secret ${namespace}/db`);
    expectLine(run, 'created', `ReplicationTarget ${replicationTarget}`);
    expect(run.out.at(-1)).to.match(
      /^restore: \d+ created, 0 changed, 0 unchanged, 0 left alone, 0 skipped, 0 failed$/,
    );
    // Progress for a log: counts only, each step's end; one unit per report line.
    const reported = run.out.filter((l) => /^(created|changed|unchanged|left alone|skipped|FAILED) /.test(l)).length;
    expect(run.progress).to.have.length(2);
    expect(run.progress[0]).to.match(/^restore: namespaces checked (\d+)\/\1 \(100%\), done$/);
    expect(run.progress[1]).to.equal(`restore: objects applied ${reported}/${reported} (100%), done`);

    // Backups hold no store credentials: the restore says which Secrets the stores still need.
    expect(run.out).to.include(
      `note: SecretStore ${namespace}/local reads Secret ${namespace}/master-key, which is not on the target cluster (backups do not hold store credentials or master keys; create it)`,
    );
    expect(
      run.out.some((l) =>
        l.startsWith(`note: ClusterSecretStore ${clusterStore} reads Secret ${namespace}/master-key`),
      ),
    ).to.equal(true);

    const want = await ours(source());
    expect(want.db).to.not.equal(undefined);
    expect(await ours(dest())).to.deep.equal(want);

    // The ReplicationTarget: the same spec, labels and annotations; nothing the source cluster assigned or
    // its controllers wrote (uid, generation, finalizer, status).
    const rtPath = `/apis/${API_VERSION}/replicationtargets/${replicationTarget}`;
    const [rtFrom, rtTo] = [await source().get<ReplicationTarget>(rtPath), await dest().get<ReplicationTarget>(rtPath)];
    expect(rtFrom.status?.objectsInSync, 'the source has a status').to.equal(3);
    expect(rtTo.spec).to.deep.equal(rtSpec);
    expect(rtTo.spec).to.deep.equal(rtFrom.spec);
    expect(rtTo.status).to.equal(undefined);
    expect(rtTo.metadata.uid).to.not.equal(rtFrom.metadata.uid);
    expect(rtTo.metadata.generation).to.equal(1);
    const toMeta = rtTo.metadata as { finalizers?: string[]; ownerReferences?: unknown[] };
    expect(toMeta.finalizers).to.equal(undefined);
    expect(toMeta.ownerReferences).to.equal(undefined);
    // Its kubeconfig Secret was not in the backup: not restored, and the restore says so.
    expect(await getSecret(dest(), namespace, kubeconfigSecret)).to.equal(undefined);
    expect(run.out).to.include(
      `note: ReplicationTarget ${replicationTarget} reads its kubeconfig from Secret ${namespace}/${kubeconfigSecret}, which is not on the target cluster (backups do not hold credentials; create it there, or the target replicates nothing)`,
    );

    for (const name of ['db', 'api-token']) {
      const from = await getSecret(source(), namespace, name);
      const to = await getSecret(dest(), namespace, name);
      expect(decoded(to), name).to.deep.equal(decoded(from));
      expect(to?.type).to.equal(from?.type);
      expect(to?.metadata.labels).to.deep.equal(from?.metadata.labels);
      expect(to?.metadata.annotations).to.deep.equal(from?.metadata.annotations);
      // Owned by the restored ManagedSecret (its uid on the target), not the source's uid.
      const ms = await dest().get<KubeObject>(
        `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/${name === 'db' ? 'db' : 'api'}`,
      );
      expect(to?.metadata.ownerReferences).to.deep.equal([
        {
          apiVersion: API_VERSION,
          kind: 'ManagedSecret',
          name: ms.metadata.name,
          uid: ms.metadata.uid,
          controller: true,
          blockOwnerDeletion: false,
        },
      ]);
    }
    expect(decoded(await getSecret(dest(), namespace, 'db')).password).to.equal(password);

    // The entry files are the same bytes, and the same master key reads them.
    const files = (await readdir(fixture.dir)).filter((f) => f.endsWith('.json')).sort();
    expect((await readdir(targetStoreDir)).sort()).to.deep.equal(files);
    for (const f of files) {
      expect(await readFile(join(targetStoreDir, f), 'utf8')).to.equal(await readFile(join(fixture.dir, f), 'utf8'));
    }
    const restored = new LocalStore(targetStoreDir, fixture.masterKey);
    try {
      expect((await restored.get('db/prod')).properties).to.deep.equal({ password });
    } finally {
      restored.close();
    }
  });

  it('an operator on the restored cluster keeps the last-known-good Secrets while its store is down, then adopts them', async () => {
    const operator = await startOperator(target, { namespaces: [namespace] });
    try {
      // The store cannot open yet (its master key Secret is not on this cluster): Ready=False, data kept.
      const ms = await waitForReady(dest(), namespace, 'db', 'False', undefined, 30_000);
      expect(JSON.stringify(ms.status)).not.to.include(password);
      await sleep(1_000);
      expect(decoded(await getSecret(dest(), namespace, 'db')).password).to.equal(password);
      expect(decoded(await getSecret(dest(), namespace, 'api-token')).token).to.equal(apiToken);

      await dest().request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'master-key' },
          data: { 'master-key': fixture.masterKey.toString('base64') },
        },
      });
      const synced = await waitForReady(dest(), namespace, 'db', 'True', 'Synced', 60_000);
      const secret = await getSecret(dest(), namespace, 'db');
      expect(decoded(secret).password).to.equal(password);
      expect(secret?.metadata.ownerReferences?.[0]?.uid).to.equal(synced.metadata.uid);
      await waitForReady(dest(), namespace, 'api', 'True', 'Synced', 30_000);
      // The kubeconfig Secret was not restored, but the ManagedSecret that writes it was: it is back.
      await waitForSecretData(dest(), namespace, kubeconfigSecret, (d) => d.kubeconfig === drKubeconfig, 30_000);
      for (const line of operator.logs) for (const p of plaintexts) expect(line).not.to.include(p);
    } finally {
      await operator.stop();
    }
  });

  it('a second restore changes nothing', async () => {
    const rv = async () => {
      const db = await dest().get<KubeObject>(`/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/db`);
      const secret = await getSecret(dest(), namespace, 'db');
      const rt = await dest().get<KubeObject>(`/apis/${API_VERSION}/replicationtargets/${replicationTarget}`);
      return [db.metadata.resourceVersion, secret?.metadata.resourceVersion, rt.metadata.resourceVersion];
    };
    const before = await rv();
    const run = await cli(
      ...restoreArgs(backupFile, '--key-file', keyFile, '--create-namespaces', '--local-store-dir', targetStoreDir),
    );
    expect(run.code, run.err.join('\n')).to.equal(0);
    expectLine(run, 'unchanged', `ManagedSecret ${namespace}/db`);
    expectLine(run, 'unchanged', 'local store entry db/prod');
    expectLine(run, 'unchanged', `ReplicationTarget ${replicationTarget}`);
    expect(run.out.at(-1)).to.match(
      /^restore: 0 created, 0 changed, \d+ unchanged, 0 left alone, 0 skipped, 0 failed$/,
    );
    expect(await rv()).to.deep.equal(before);
    // Every Secret our objects read is there now (other tests' leftovers in the shared cluster may have notes).
    const ourNotes = [
      `note: SecretStore ${namespace}/`,
      `note: ClusterSecretStore ${clusterStore} `,
      `note: ReplicationTarget ${replicationTarget} `,
    ];
    expect(run.out.filter((l) => ourNotes.some((p) => l.startsWith(p)))).to.deep.equal([]);
  });

  it('puts back a changed spec, and leaves a differing synced Secret alone unless --overwrite-synced', async () => {
    const msPath = `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/db`;
    await dest().request('PATCH', msPath, {
      body: { spec: { refreshInterval: '5m' } },
      contentType: 'application/merge-patch+json',
    });
    const secretPath = `/api/v1/namespaces/${namespace}/secrets/db`;
    await dest().request('PATCH', secretPath, {
      body: { data: { password: Buffer.from('edited-by-hand').toString('base64') } },
      contentType: 'application/merge-patch+json',
    });
    const dry = await cli(...restoreArgs(backupFile, '--key-file', keyFile, '--dry-run'));
    expect(dry.code, dry.err.join('\n')).to.equal(0);
    expectLine(dry, 'would change', `ManagedSecret ${namespace}/db`);
    expectLine(
      dry,
      'would leave alone',
      `Secret ${namespace}/db (its data differs from the backup; --overwrite-synced replaces it)`,
    );
    expect((await dest().get<KubeObject>(msPath)).spec).to.have.property('refreshInterval', '5m');

    const run = await cli(...restoreArgs(backupFile, '--key-file', keyFile));
    expect(run.code, run.err.join('\n')).to.equal(0);
    expectLine(run, 'changed', `ManagedSecret ${namespace}/db`);
    expectLine(
      run,
      'left alone',
      `Secret ${namespace}/db (its data differs from the backup; --overwrite-synced replaces it)`,
    );
    expect((await ours(dest())).db).to.deep.equal((await ours(source())).db);
    expect(decoded(await getSecret(dest(), namespace, 'db')).password).to.equal('edited-by-hand');

    const overwrite = await cli(...restoreArgs(backupFile, '--key-file', keyFile, '--overwrite-synced'));
    expect(overwrite.code, overwrite.err.join('\n')).to.equal(0);
    expectLine(overwrite, 'changed', `Secret ${namespace}/db`);
    expect(decoded(await getSecret(dest(), namespace, 'db')).password).to.equal(password);
  });

  it('never overwrites a Secret secretsync does not manage, even with --overwrite-synced', async () => {
    const secretPath = `/api/v1/namespaces/${namespace}/secrets/api-token`;
    await dest().request('DELETE', secretPath);
    await dest().request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'api-token' },
        data: { token: Buffer.from('theirs').toString('base64') },
      },
    });
    // Not labelled as ours, so not in the restore's list: the create meets AlreadyExists and compares afresh.
    const run = await cli(...restoreArgs(backupFile, '--key-file', keyFile, '--overwrite-synced'));
    expect(run.code, run.err.join('\n')).to.equal(0);
    expectLine(
      run,
      'left alone',
      `Secret ${namespace}/api-token (its data differs and it is not managed by ManagedSecret api; never overwritten)`,
    );
    expect(decoded(await getSecret(dest(), namespace, 'api-token'))).to.deep.equal({ token: 'theirs' });
    // Put ours back for the tests after this one.
    await dest().request('DELETE', secretPath);
    const again = await cli(...restoreArgs(backupFile, '--key-file', keyFile));
    expectLine(again, 'created', `Secret ${namespace}/api-token`);
  });

  it('KMS mode against moto: the data key is wrapped by the KMS key the header names, and restore unwraps it', async () => {
    const kms = new KMSClient(sharedMoto().clientConfig());
    const alias = `alias/${uniqueName('backup')}`;
    let keyArn: string;
    try {
      const key = await kms.send(new CreateKeyCommand({ Description: 'secretsync backup test' }));
      keyArn = key.KeyMetadata?.Arn ?? '';
      await kms.send(new CreateAliasCommand({ AliasName: alias, TargetKeyId: key.KeyMetadata?.KeyId }));
    } finally {
      kms.destroy();
    }
    const file = join(tmp, 'kms.backup');
    const endpoint = sharedMoto().endpoint;
    const backup = await cli(
      'backup',
      '--out',
      file,
      '--kms-key',
      alias,
      '--region',
      sharedMoto().region,
      '--endpoint',
      endpoint,
      '--kubeconfig',
      sharedCluster().kubeconfigPath,
      '--include-synced',
      '--operator-namespace',
      namespace,
    );
    expect(backup.code, backup.err.join('\n')).to.equal(0);
    const bytes = await readFile(file);
    const header = readHeader(bytes);
    expect(header.encryption).to.include({ mode: 'kms', keyId: keyArn });
    expect(backup.out.join('\n')).to.include(`data key wrapped by KMS key ${keyArn}`);
    for (const p of plaintexts) expect(bytes.toString('latin1')).not.to.include(p);

    // No --region: taken from the key ARN in the header.
    const restore = await cli(...restoreArgs(file, '--endpoint', endpoint));
    expect(restore.code, restore.err.join('\n')).to.equal(0);
    expectLine(restore, 'unchanged', `Secret ${namespace}/db`);
    expect(restore.out.at(-1)).to.match(
      /^restore: 0 created, 0 changed, \d+ unchanged, 0 left alone, 0 skipped, 0 failed$/,
    );
    expect(kmsEndpoints.filter((e) => e === endpoint).length).to.be.at.least(2);

    // A changed backup id (the KMS encryption context) is refused by KMS itself.
    const id = header.backupId;
    const edited = bytes.toString('utf8').replace(id, `${id.slice(0, -1)}${id.endsWith('0') ? '1' : '0'}`);
    const tamperedFile = join(tmp, 'kms-tampered.backup');
    await writeFile(tamperedFile, edited);
    const refused = await cli(...restoreArgs(tamperedFile, '--endpoint', endpoint, '--overwrite-synced'));
    expect(refused.code).to.equal(1);
    expect(refused.err.join('\n')).to.match(/KMS could not unwrap the backup's data key .*nothing was applied/);
  });

  it('no plaintext of the synced Secrets appeared in any CLI output', () => {
    expect(allOutput.length).to.be.greaterThan(20);
    const text = allOutput.join('\n');
    for (const p of plaintexts) {
      expect(text).not.to.include(p);
      expect(text).not.to.include(Buffer.from(p).toString('base64'));
    }
  });
});
