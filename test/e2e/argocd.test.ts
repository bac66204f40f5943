// docs/argocd.md, tried: its Applications point at folders that exist, and its
// health checks, taken from the doc's argocd-cm snippet, run in gopher-lua
// (the interpreter Argo CD embeds, see argocd-lua/main.go) against objects a
// real operator (and its replicator) wrote, and against the edge cases. Also: a
// Secret that secretsync writes carries none of Argo CD's tracking labels or
// annotations.
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseAllDocuments } from 'yaml';
import { API_VERSION, ReplicationReasons, type ReplicationTargetStatus } from '../../src/api/types.js';
import { KubeClient } from '../../src/kube/client.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { LocalStore } from '../../src/providers/local/index.js';
import { Replicator } from '../../src/replication/replicator.js';
import { TestCluster, waitFor } from '../../tools/testenv/index.js';
import { cacheDir, repoRoot } from '../../tools/testenv/paths.js';
import { freePort } from '../../tools/testenv/processes.js';
import {
  OPERATOR_NAMESPACE,
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  getSecret,
  startOperator,
  waitForReady,
  type LocalStoreFixture,
  type RunningOperator,
} from '../integration/operator.js';
import { installCrds } from '../integration/crds.js';
import { mustRun, run, tempDir } from './helpers.js';

const KINDS = ['ManagedSecret', 'SecretStore', 'ClusterSecretStore', 'ReplicationTarget'] as const;
const HEALTH = ['Healthy', 'Progressing', 'Degraded', 'Suspended', 'Missing', 'Unknown'];
const harnessDir = join(repoRoot, 'test', 'e2e', 'argocd-lua');

interface Health {
  status?: string;
  message?: string;
  error?: string;
}

/** The argocd-lua binary, built once per source hash into the cache (Go is a prerequisite, like the control plane). */
async function argocdLua(): Promise<string> {
  const hash = createHash('sha256');
  for (const f of ['go.mod', 'go.sum', 'main.go']) hash.update(readFileSync(join(harnessDir, f)));
  const dir = join(cacheDir(), 'argocd-lua', hash.digest('hex').slice(0, 16));
  const bin = join(dir, 'argocd-lua');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    const tmp = `${bin}.tmp-${process.pid}`;
    await mustRun('go', ['build', '-buildvcs=false', '-trimpath', '-o', tmp, '.'], {
      cwd: harnessDir,
      timeoutMs: 300_000,
    });
    renameSync(tmp, bin);
  }
  return bin;
}

async function health(script: string, objects: object[]): Promise<Health[]> {
  const result = await run(await argocdLua(), [], { input: JSON.stringify({ script, objects }) });
  if (result.code !== 0) throw new Error(`argocd-lua: ${result.stderr}`);
  return JSON.parse(result.stdout) as Health[];
}

/** The YAML blocks of docs/argocd.md, parsed (anchors and aliases resolved, as kubectl and Helm do). */
function docYamlBlocks(): Record<string, unknown>[] {
  const doc = readFileSync(join(repoRoot, 'docs', 'argocd.md'), 'utf8');
  return [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].flatMap((m) =>
    parseAllDocuments(m[1] as string).map((d) => {
      if (d.errors.length > 0) throw new Error(`docs/argocd.md: invalid YAML: ${d.errors[0]?.message}`);
      return d.toJS() as Record<string, unknown>;
    }),
  );
}

/** The health scripts from the doc's argocd-cm snippet, by kind. */
function healthScripts(): Record<(typeof KINDS)[number], string> {
  const patch = docYamlBlocks().find((b) => {
    const data = b.data as Record<string, unknown> | undefined;
    return data && Object.keys(data).some((k) => k.startsWith('resource.customizations.health.'));
  });
  if (!patch) throw new Error('docs/argocd.md has no argocd-cm data with resource.customizations.health.* keys');
  const data = patch.data as Record<string, string>;
  const out = {} as Record<(typeof KINDS)[number], string>;
  for (const kind of KINDS) {
    const script = data[`resource.customizations.health.secretsync.io_${kind}`];
    if (typeof script !== 'string') throw new Error(`docs/argocd.md: no health check for ${kind}`);
    out[kind] = script;
  }
  return out;
}

const ready = (status: string, extra: Record<string, unknown> = {}) => ({
  type: 'Ready',
  status,
  reason: status === 'True' ? 'Synced' : 'KeyNotFound',
  message: status === 'True' ? 'Secret team-a/app in sync' : 'SecretStore team-a/local: key app/db not found',
  lastTransitionTime: '2025-01-01T00:00:00Z',
  observedGeneration: 2,
  ...extra,
});
const object = (status?: object, generation = 2) => ({
  apiVersion: API_VERSION,
  kind: 'ManagedSecret',
  metadata: { name: 'app', namespace: 'team-a', generation },
  ...(status ? { status } : {}),
});
/** A ReplicationTarget (cluster-scoped) with a status shaped as Replicator.writeStatus writes it. */
const replicationTarget = (status?: ReplicationTargetStatus, generation = 3) => ({
  apiVersion: API_VERSION,
  kind: 'ReplicationTarget',
  metadata: { name: 'dr-us-west-2', generation, creationTimestamp: '2025-01-01T00:00:00Z' },
  spec: { kubeconfigSecretRef: { name: 'dr-cluster' }, clusterStores: {}, stores: { namespaces: ['app'] } },
  ...(status ? { status } : {}),
});
const replicationReady = (status: 'True' | 'False', reason: string, message: string, observedGeneration = 3) => ({
  type: 'Ready',
  status,
  reason,
  message,
  lastTransitionTime: '2025-01-01T00:05:00Z',
  observedGeneration,
});
/** What a pass that succeeded writes. */
const replicated = (observedGeneration = 3): ReplicationTargetStatus => ({
  conditions: [
    replicationReady(
      'True',
      ReplicationReasons.Replicated,
      '4 object(s) in sync with the DR cluster',
      observedGeneration,
    ),
  ],
  observedGeneration,
  lagSeconds: 0,
  lastReplicationTime: '2025-01-01T00:05:00Z',
  objectsInSync: 4,
});
/**
 * What a failed pass writes: Ready=False, the lag growing; objectsInSync and lastReplicationTime are
 * those of the last pass that succeeded (the merge patch leaves them).
 */
const failed = (reason: string, message: string, observedGeneration = 3): ReplicationTargetStatus => ({
  conditions: [replicationReady('False', reason, message, observedGeneration)],
  observedGeneration,
  lagSeconds: 125,
  lastReplicationTime: '2025-01-01T00:03:00Z',
  objectsInSync: 4,
});
/** The replicator's messages for each failure reason (src/replication/replicator.ts). */
const FAILURES: Record<Exclude<keyof typeof ReplicationReasons, 'Replicated'>, string> = {
  InvalidKubeconfig: 'the kubeconfig Secret secretsync-system/dr-cluster key kubeconfig does not exist',
  ClusterUnreachable: 'cannot reach the DR cluster at https://dr.example:6443: ECONNREFUSED',
  Unauthorized:
    "the DR cluster refused the kubeconfig's identity (HTTP 401): GET /apis/secretsync.io/v1alpha1: Unauthorized",
  CRDsMissing: 'the DR cluster does not serve secretstores.secretsync.io: install the secretsync CRDs there',
  SourceListFailed:
    'listing /apis/secretsync.io/v1alpha1/namespaces/app/secretstores on this cluster failed, so nothing is copied or deleted: GET /apis/secretsync.io/v1alpha1/namespaces/app/secretstores: secretstores.secretsync.io is forbidden',
  ApplyFailed:
    '1 object(s) could not be written in the DR cluster (3 in sync): SecretStore/app/ps-store: PATCH /apis/secretsync.io/v1alpha1/namespaces/app/secretstores/ps-store: namespaces "app" not found',
};

describe('Argo CD (docs/argocd.md)', function () {
  this.timeout(300_000);

  it('points its Applications at folders of this repository that Argo CD can render', () => {
    const apps = docYamlBlocks().filter((b) => b.kind === 'Application') as {
      spec: { source: { path: string; helm?: unknown }; syncPolicy: { syncOptions: string[] } };
    }[];
    expect(apps.map((a) => a.spec.source.path)).to.deep.equal(['manifests', 'charts/secretsync']);
    expect(existsSync(join(repoRoot, 'manifests', 'Kustomization'))).to.equal(true);
    expect(existsSync(join(repoRoot, 'charts', 'secretsync', 'Chart.yaml'))).to.equal(true);
    for (const app of apps) expect(app.spec.syncPolicy.syncOptions).to.include('ServerSideApply=true');
  });

  it('gives the same health check to ManagedSecret, SecretStore, ClusterSecretStore and ReplicationTarget', () => {
    const scripts = healthScripts();
    expect(scripts.SecretStore).to.equal(scripts.ManagedSecret);
    expect(scripts.ClusterSecretStore).to.equal(scripts.ManagedSecret);
    expect(scripts.ReplicationTarget).to.equal(scripts.ManagedSecret);
    // Argo CD opens only base, table and a restricted os library for custom checks.
    expect(scripts.ManagedSecret).to.not.match(/\b(string|math|io|os|debug)\./);
  });

  it('reads the Ready condition: Healthy, Degraded with the message, Progressing when missing or behind', async () => {
    const script = healthScripts().ManagedSecret;
    const cases: [string, object, Health][] = [
      [
        'Ready=True',
        object({ observedGeneration: 2, conditions: [ready('True')] }),
        { status: 'Healthy', message: 'Secret team-a/app in sync' },
      ],
      [
        'Ready=False',
        object({ observedGeneration: 2, conditions: [ready('False')] }),
        { status: 'Degraded', message: 'KeyNotFound: SecretStore team-a/local: key app/db not found' },
      ],
      ['no status', object(), { status: 'Progressing' }],
      ['status without conditions', object({ observedGeneration: 2 }), { status: 'Progressing' }],
      [
        'observedGeneration behind',
        object({ observedGeneration: 1, conditions: [ready('True')] }),
        { status: 'Progressing' },
      ],
      [
        "the condition's observedGeneration behind",
        object({ observedGeneration: 2, conditions: [ready('True', { observedGeneration: 1 })] }),
        { status: 'Progressing' },
      ],
      ['Ready=Unknown', object({ observedGeneration: 2, conditions: [ready('Unknown')] }), { status: 'Progressing' }],
      [
        'other conditions only',
        object({ observedGeneration: 2, conditions: [{ type: 'Other', status: 'True' }] }),
        { status: 'Progressing' },
      ],
      [
        'Ready=False without reason or message',
        object({ observedGeneration: 2, conditions: [{ type: 'Ready', status: 'False' }] }),
        { status: 'Degraded', message: 'NotReady: ' },
      ],
    ];
    const got = await health(
      script,
      cases.map(([, o]) => o),
    );
    cases.forEach(([name, , want], i) => {
      const h = got[i] as Health;
      expect(h.error, name).to.equal(undefined);
      expect(HEALTH, name).to.include(h.status);
      expect(h.status, name).to.equal(want.status);
      if (want.message !== undefined) expect(h.message, name).to.equal(want.message);
      else expect(h.message, name).to.be.a('string').and.not.equal('');
    });
  });

  it("reads a ReplicationTarget's status as the replicator writes it: every failure reason is Degraded", async () => {
    const script = healthScripts().ReplicationTarget;
    // A reason added to ReplicationReasons needs a case here.
    expect(Object.keys(FAILURES).sort()).to.deep.equal(
      Object.values(ReplicationReasons)
        .filter((r) => r !== ReplicationReasons.Replicated)
        .sort(),
    );
    const cases: [string, object, Health][] = [
      [
        'Replicated',
        replicationTarget(replicated()),
        { status: 'Healthy', message: '4 object(s) in sync with the DR cluster' },
      ],
      ['created, no pass yet', replicationTarget(), { status: 'Progressing' }],
      ['spec edited after a pass that succeeded', replicationTarget(replicated(2)), { status: 'Progressing' }],
      [
        'spec edited after a pass that failed',
        replicationTarget(failed('Unauthorized', FAILURES.Unauthorized, 2), 3),
        { status: 'Progressing' },
      ],
      ...Object.entries(FAILURES).map(([reason, message]): [string, object, Health] => [
        reason,
        replicationTarget(failed(reason, message)),
        { status: 'Degraded', message: `${reason}: ${message}` },
      ]),
    ];
    const got = await health(
      script,
      cases.map(([, o]) => o),
    );
    cases.forEach(([name, , want], i) => {
      const h = got[i] as Health;
      expect(h.error, name).to.equal(undefined);
      expect(h.status, name).to.equal(want.status);
      if (want.message !== undefined) expect(h.message, name).to.equal(want.message);
      else expect(h.message, name).to.be.a('string').and.not.equal('');
    });
  });

  describe('on objects a real operator wrote', () => {
    let cluster: TestCluster;
    let admin: KubeClient;
    let operator: RunningOperator;
    let replicator: Replicator | undefined;
    let fixture: LocalStoreFixture;
    /** A ReplicationTarget as the API server returns it before the replicator has seen it. */
    let unseenTarget: object;
    let downPort: number;
    const cssDir = tempDir('argocd-css');
    const bogusToken = `bogus-${randomBytes(8).toString('hex')}`;

    before(async function () {
      this.timeout(600_000);
      [cluster] = await Promise.all([TestCluster.start({ name: 'e2e-argocd' }), argocdLua()]);
      admin = new KubeClient(cluster.kubeConfig());
      await installCrds(cluster);
      await ensureNamespace(admin, 'team-a');
      fixture = await createLocalStore(admin, 'team-a');
      await fixture.store.put('app/db', { password: 'pw' });
      await createSecretStore(admin, 'team-a', 'local', fixture.dir);
      await new LocalStore(cssDir, randomBytes(32)).put('x', { y: 'z' });
      operator = await startOperator(cluster);
      // A ClusterSecretStore whose master key Secret does not exist: Ready=False.
      await admin.request('POST', `/apis/${API_VERSION}/clustersecretstores`, {
        body: {
          apiVersion: API_VERSION,
          kind: 'ClusterSecretStore',
          metadata: { name: 'broken' },
          spec: {
            provider: {
              local: { path: cssDir, masterKeySecretRef: { name: 'no-such-key', namespace: OPERATOR_NAMESPACE } },
            },
          },
        },
      });
      // As Argo CD would have labelled and annotated them in Git.
      const tracking = {
        labels: { 'app.kubernetes.io/instance': 'team-a-apps' },
        annotations: { 'argocd.argoproj.io/tracking-id': 'team-a-apps:secretsync.io/ManagedSecret:team-a/good' },
      };
      await createManagedSecret(admin, 'team-a', {
        metadata: { name: 'good', ...tracking } as { name: string; annotations: Record<string, string> },
        spec: {
          storeRef: { name: 'local' },
          target: {
            labels: {
              'app.kubernetes.io/instance': 'copied?',
              'argocd.argoproj.io/secret-type': 'repository',
              team: 'a',
            },
            annotations: { 'argocd.argoproj.io/tracking-id': 'copied?', note: 'kept' },
          },
          data: [{ secretKey: 'password', remoteRef: { key: 'app/db', property: 'password' } }],
        },
      });
      await createManagedSecret(admin, 'team-a', {
        metadata: { name: 'missing-key' },
        spec: { storeRef: { name: 'local' }, data: [{ secretKey: 'x', remoteRef: { key: 'app/nope' } }] },
      });
      await waitForReady(admin, 'team-a', 'good', 'True', 'Synced');
      await waitForReady(admin, 'team-a', 'missing-key', 'False', 'KeyNotFound');

      // ReplicationTargets. The DR cluster of `dr-self` is this cluster (no second control plane on this
      // shared machine), with a selector that matches nothing: a real pass that succeeds with 0 objects.
      // The others fail as a real DR cluster would: a missing kubeconfig Secret, an identity the API server
      // refuses, and a server nobody listens on.
      downPort = await freePort();
      const kubeconfigs: Record<string, string> = {
        'dr-self': readFileSync(cluster.record().kubeconfigPath, 'utf8'),
        'dr-refused': cluster.kubeconfigYamlForToken(bogusToken),
        'dr-down': cluster.kubeconfigYamlForToken(bogusToken).replace(cluster.server, `https://127.0.0.1:${downPort}`),
      };
      expect(kubeconfigs['dr-down']).to.contain(`127.0.0.1:${downPort}`);
      for (const [name, kubeconfig] of Object.entries(kubeconfigs)) {
        await admin.request('POST', `/api/v1/namespaces/${OPERATOR_NAMESPACE}/secrets`, {
          body: { apiVersion: 'v1', kind: 'Secret', metadata: { name }, stringData: { kubeconfig } },
        });
      }
      for (const [name, secret] of [
        ['dr-self', 'dr-self'],
        ['dr-missing', 'no-such-kubeconfig'],
        ['dr-refused', 'dr-refused'],
        ['dr-down', 'dr-down'],
      ]) {
        await admin.request('POST', `/apis/${API_VERSION}/replicationtargets`, {
          body: {
            apiVersion: API_VERSION,
            kind: 'ReplicationTarget',
            metadata: { name },
            spec: {
              kubeconfigSecretRef: { name: secret },
              clusterStores: { selector: { matchLabels: { 'e2e-argocd': 'none' } } },
              interval: '5s',
            },
          },
        });
      }
      unseenTarget = await admin.get<object>(`/apis/${API_VERSION}/replicationtargets/dr-self`);
      // The replicator the operator runs on its leader (src/replication/run.ts), started here directly.
      replicator = new Replicator({
        kubeConfig: cluster.kubeConfig(),
        logger: createLogger('info', new Writable({ write: (_chunk, _enc, cb) => cb() })),
        metrics: new Metrics({ defaultMetrics: false }),
        clusterName: 'e2e-primary',
        operatorNamespace: OPERATOR_NAMESPACE,
        namespaces: ['team-a'],
        retryDelayMs: 1_000,
        drRequestTimeoutMs: 5_000,
      });
      replicator.start();
    });

    after(async function () {
      this.timeout(60_000);
      await replicator?.stop();
      await operator?.stop();
      fixture?.cleanup();
      admin?.close();
      await cluster?.stop();
    });

    const get = (path: string) => admin.get<object>(`/apis/${API_VERSION}${path}`);

    it('reports Healthy and Degraded as Argo CD would show them', async () => {
      const scripts = healthScripts();
      const readyMessage = (o: object) =>
        (o as { status: { conditions: { type: string; message: string }[] } }).status.conditions.find(
          (c) => c.type === 'Ready',
        )?.message;
      const good = await get('/namespaces/team-a/managedsecrets/good');
      const missing = await get('/namespaces/team-a/managedsecrets/missing-key');
      const [goodHealth, missingHealth] = await health(scripts.ManagedSecret, [good, missing]);
      expect(goodHealth).to.deep.equal({ status: 'Healthy', message: readyMessage(good) });
      expect(missingHealth).to.deep.equal({ status: 'Degraded', message: `KeyNotFound: ${readyMessage(missing)}` });
      expect(missingHealth?.message).to.match(/app\/nope/);
      const [store] = await health(scripts.SecretStore, [await get('/namespaces/team-a/secretstores/local')]);
      expect(store?.status).to.equal('Healthy');
      // The store check runs right after the operator sees the store: wait for its verdict.
      const broken = await waitFor(
        'ClusterSecretStore broken to be checked',
        async () => {
          const [h] = await health(scripts.ClusterSecretStore, [await get('/clustersecretstores/broken')]);
          return h?.status === 'Progressing' ? undefined : h;
        },
        15_000,
        200,
      );
      expect(broken?.status).to.equal('Degraded');
      expect(broken?.message).to.match(/^InvalidProviderConfig: .*no-such-key/);
    });

    it('reports ReplicationTargets Progressing, Healthy and Degraded (with the reason) as Argo CD would show them', async () => {
      const script = healthScripts().ReplicationTarget;
      const [unseen] = await health(script, [unseenTarget]);
      expect(unseen?.status, 'before the first pass').to.equal('Progressing');
      // Each target's verdict, once the replicator has written one for its current generation.
      const verdict = (name: string) =>
        waitFor(
          `ReplicationTarget ${name} to be replicated or fail`,
          async () => {
            const t = await get(`/replicationtargets/${name}`);
            const [h] = await health(script, [t]);
            return h?.status === 'Progressing' ? undefined : { object: t, health: h as Health };
          },
          60_000,
          250,
        );
      const self = await verdict('dr-self');
      expect(self.health).to.deep.equal({ status: 'Healthy', message: '0 object(s) in sync with the DR cluster' });
      const status = (self.object as { status: ReplicationTargetStatus }).status;
      expect(status.objectsInSync).to.equal(0);
      expect(status.lastReplicationTime).to.be.a('string');

      // An edit the replicator has not processed yet: the same object with the next generation.
      const edited = {
        ...self.object,
        metadata: {
          ...(self.object as { metadata: { generation: number } }).metadata,
          generation: (status.observedGeneration ?? 0) + 1,
        },
      };
      const [afterEdit] = await health(script, [edited]);
      expect(afterEdit?.status, 'after an edit').to.equal('Progressing');

      const missing = await verdict('dr-missing');
      expect(missing.health).to.deep.equal({
        status: 'Degraded',
        message: `InvalidKubeconfig: the kubeconfig Secret ${OPERATOR_NAMESPACE}/no-such-kubeconfig key kubeconfig does not exist`,
      });
      const refused = await verdict('dr-refused');
      expect(refused.health.status).to.equal('Degraded');
      expect(refused.health.message).to.match(
        /^Unauthorized: the DR cluster refused the kubeconfig's identity \(HTTP 401\)/,
      );
      expect(refused.health.message).to.not.contain(bogusToken);
      const down = await verdict('dr-down');
      expect(down.health.status).to.equal('Degraded');
      expect(down.health.message).to.match(
        new RegExp(`^ClusterUnreachable: cannot reach the DR cluster at https://127\\.0\\.0\\.1:${downPort}: \\S`),
      );
    });

    it('writes Secrets without Argo CD tracking labels or annotations, so Argo CD never prunes them', async () => {
      const secret = await getSecret(admin, 'team-a', 'good');
      const keys = [...Object.keys(secret?.metadata.labels ?? {}), ...Object.keys(secret?.metadata.annotations ?? {})];
      expect(
        keys.filter((k) => k.startsWith('argocd.argoproj.io/') || k === 'app.kubernetes.io/instance'),
      ).to.deep.equal([]);
      expect(secret?.metadata.labels?.team).to.equal('a');
      expect(secret?.metadata.annotations?.note).to.equal('kept');
      expect(secret?.metadata.ownerReferences?.[0]?.kind).to.equal('ManagedSecret');
    });
  });
});
