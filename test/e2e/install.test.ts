// `helm install` into a real control plane, then the operator run exactly as
// the chart's Deployment runs it, from the image's files, with nothing but a
// token of the chart's ServiceAccount: the core sync scenario must pass (the
// RBAC is enough) and `kubectl auth can-i` must refuse everything else (it is
// no more than needed). Once for cluster scope, once for namespaced scope.
// There is no kubelet, so no Pod ever runs; the operator is a local process.
//
// The `it`s of one scope build on each other, in order.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { API_VERSION, type ManagedSecret, type StoreStatus } from '../../src/api/types.js';
import { KubeClient, type KubeObject } from '../../src/kube/client.js';
import { LocalStore } from '../../src/providers/local/index.js';
import { TestCluster, sleep, waitFor } from '../../tools/testenv/index.js';
import {
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  decoded,
  ensureNamespace,
  getManagedSecret,
  getSecret,
  listEvents,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
} from '../integration/operator.js';
import {
  canI,
  kubeClients,
  mintToken,
  mustRun,
  readmeCommand,
  renderChart,
  run,
  startOperatorLikeDeployment,
  tempDir,
  tokenKubeconfig,
  type OperatorProcess,
} from './helpers.js';
import { runtimeImage, type AssembledImage } from './image.js';

const RELEASE_NAMESPACE = 'secretsync-system';
const SERVICE_ACCOUNT = 'secretsync';
const POD_NAME = 'secretsync-6f7d9c8b5-x2k4q';

interface Scope {
  title: string;
  /** Added to the README's helm install command. */
  extraHelmArgs: string[];
  /** The namespace where the scenario runs (watched in both scopes). */
  watched: string;
  /** A namespace outside watchNamespaces, in namespaced scope. */
  unwatched?: string;
  tokens: boolean;
}

type Check = [verb: string, resource: string, namespace?: string];

/** What neither scope may do. */
const neverAllowed: Check[] = [
  ['delete', 'namespaces'],
  ['create', 'namespaces'],
  ['update', 'namespaces'],
  ['create', 'clusterroles.rbac.authorization.k8s.io'],
  ['create', 'clusterrolebindings.rbac.authorization.k8s.io'],
  ['escalate', 'clusterroles.rbac.authorization.k8s.io'],
  ['bind', 'clusterroles.rbac.authorization.k8s.io'],
  ['create', 'rolebindings.rbac.authorization.k8s.io', 'team-a'],
  ['update', 'roles.rbac.authorization.k8s.io', RELEASE_NAMESPACE],
  // Rollout restarts may read and patch workloads, never create, replace or delete them.
  ['create', 'deployments.apps', RELEASE_NAMESPACE],
  ['delete', 'deployments.apps', 'team-a'],
  ['update', 'statefulsets.apps', 'team-a'],
  ['create', 'daemonsets.apps', 'team-a'],
  ['list', 'replicasets.apps', 'team-a'],
  ['create', 'jobs.batch', 'team-a'],
  ['create', 'customresourcedefinitions.apiextensions.k8s.io'],
  // ReplicationTargets are read (and their status written), never written by the operator.
  ['create', 'replicationtargets.secretsync.io'],
  ['update', 'replicationtargets.secretsync.io'],
  ['delete', 'replicationtargets.secretsync.io'],
  ['list', 'ingresses.networking.k8s.io', 'team-a'],
  ['get', 'configmaps', 'team-a'],
  ['create', 'pods', 'team-a'],
  ['create', 'pods/exec', 'team-a'],
  // Rollout restarts are off by default: no access to workloads at all.
  ['patch', 'deployments.apps', 'team-a'],
  ['get', 'statefulsets.apps', 'team-a'],
  ['patch', 'daemonsets.apps', 'kube-system'],
  ['impersonate', 'users'],
  ['impersonate', 'serviceaccounts', 'team-a'],
  ['update', 'managedsecrets.secretsync.io', 'team-a'],
  ['delete', 'managedsecrets.secretsync.io', 'team-a'],
  ['create', 'secretstores.secretsync.io', 'team-a'],
  ['patch', 'clustersecretstores.secretsync.io'],
  ['patch', 'secrets', 'team-a'],
  ['deletecollection', 'secrets', 'team-a'],
  ['create', 'leases.coordination.k8s.io', 'kube-system'],
  ['get', 'leases.coordination.k8s.io/another-lease', RELEASE_NAMESPACE],
  ['delete', 'leases.coordination.k8s.io/secretsync-leader', RELEASE_NAMESPACE],
  ['*', '*', '*'],
];

/** Every file of a directory tree with its size and mtime, to prove nothing was written there. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, entry.name);
      if (entry.isSymbolicLink()) out.push(`${relative(dir, full)} -> link`);
      else if (entry.isDirectory()) walk(full);
      else {
        const st = statSync(full);
        out.push(`${relative(dir, full)} ${st.size} ${st.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out.sort();
}

function installScenario(scope: Scope): void {
  describe(`helm install, ${scope.title}`, function () {
    this.timeout(180_000);
    let cluster: TestCluster;
    let admin: KubeClient;
    let image: AssembledImage;
    let tokenConfig: string;
    let operator: OperatorProcess | undefined;
    let imageFiles: string[];
    const fixtures: LocalStoreFixture[] = [];
    const cssDir = tempDir('css-store');
    const ns = scope.watched;
    const password = `pw-${randomBytes(6).toString('hex')}`;

    const store = (plural: string, name: string, namespace?: string) =>
      admin.get<KubeObject & { status?: StoreStatus }>(
        `/apis/${API_VERSION}${namespace ? `/namespaces/${namespace}` : ''}/${plural}/${name}`,
      );
    const waitStoreReady = (plural: string, name: string, namespace?: string) =>
      waitFor(
        `${plural} ${name} Ready=True`,
        async () => {
          const s = await store(plural, name, namespace);
          return s.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' ? s : undefined;
        },
        20_000,
        100,
      );

    before(async function () {
      this.timeout(600_000);
      [cluster, image] = await Promise.all([
        TestCluster.start({ name: `e2e-${scope.title.replace(/\W+/g, '-')}` }),
        runtimeImage(),
      ]);
      admin = new KubeClient(cluster.kubeConfig());
      await ensureNamespace(admin, 'team-a');
      await ensureNamespace(admin, 'team-b');
    });

    after(async function () {
      this.timeout(60_000);
      await operator?.stop();
      for (const f of fixtures) f.cleanup();
      admin?.close();
      await cluster?.stop();
    });

    if (scope.unwatched) {
      it('refuses a misspelt value with a message naming it: no release, no namespace', async () => {
        const { helm } = await kubeClients();
        const [, ...args] = readmeCommand('helm install');
        const result = await run(helm, [...args, '--set', 'replicas=3', '--kubeconfig', cluster.kubeconfigPath]);
        expect(result.code).to.not.equal(0);
        expect(result.stderr).to.match(/Additional property replicas is not allowed/);
        const list = await mustRun(helm, ['list', '-A', '-q', '--kubeconfig', cluster.kubeconfigPath]);
        expect(list.stdout.trim()).to.equal('');
        expect((await cluster.adminRequest('GET', `/api/v1/namespaces/${RELEASE_NAMESPACE}`)).status).to.equal(404);
        // The CRDs are templates of the release (crds.install): none was created either.
        const crd = await cluster.adminRequest(
          'GET',
          '/apis/apiextensions.k8s.io/v1/customresourcedefinitions/managedsecrets.secretsync.io',
        );
        expect(crd.status).to.equal(404);
      });
    }

    it('installs with the README command', async () => {
      const { helm } = await kubeClients();
      const [, ...args] = readmeCommand('helm install');
      expect(args).to.deep.equal([
        'install',
        'secretsync',
        'charts/secretsync',
        '-n',
        RELEASE_NAMESPACE,
        '--create-namespace',
      ]);
      // As a new user would: from the repository root, with only --kubeconfig added (and the scope's values).
      const result = await mustRun(helm, [...args, ...scope.extraHelmArgs, '--kubeconfig', cluster.kubeconfigPath]);
      expect(result.stdout).to.match(/STATUS: deployed/);
      expect(result.stdout).to.contain('kubectl -n secretsync-system get deployment secretsync');
      // Helm created the CRDs from the chart's templates (crds.install); they are served within moments.
      for (const plural of ['managedsecrets', 'secretstores', 'clustersecretstores'])
        await waitFor(
          `${plural} to be served`,
          async () =>
            (await cluster.adminRequest('GET', `/apis/${API_VERSION}/${plural}`)).status === 200 ? true : undefined,
          30_000,
          100,
        );
    });

    it('syncs a SecretStore into a Secret with nothing but the ServiceAccount token (the RBAC is enough)', async () => {
      const token = await mintToken(cluster, RELEASE_NAMESPACE, SERVICE_ACCOUNT);
      tokenConfig = tokenKubeconfig(cluster, token, tempDir('token'));
      const fixture = await createLocalStore(admin, ns);
      fixtures.push(fixture);
      await fixture.store.put('app/db', { username: 'app', password });
      await createSecretStore(admin, ns, 'local', fixture.dir);
      await createManagedSecret(admin, ns, {
        metadata: { name: 'app-db' },
        spec: {
          storeRef: { name: 'local' },
          refreshInterval: '1m',
          data: [
            { secretKey: 'password', remoteRef: { key: 'app/db', property: 'password' } },
            { secretKey: 'username', remoteRef: { key: 'app/db', property: 'username' } },
          ],
        },
      });
      if (scope.unwatched) {
        // The same in a namespace it does not watch: it must stay untouched.
        const other = await createLocalStore(admin, scope.unwatched);
        fixtures.push(other);
        await other.store.put('app/db', { password });
        await createSecretStore(admin, scope.unwatched, 'local', other.dir);
        await createManagedSecret(admin, scope.unwatched, {
          metadata: { name: 'app-db' },
          spec: { storeRef: { name: 'local' }, data: [{ secretKey: 'password', remoteRef: { key: 'app/db' } }] },
        });
      }

      // The Deployment as installed: its args and env are what the container would get.
      const deployment = await admin.get<Parameters<typeof startOperatorLikeDeployment>[1]>(
        `/apis/apps/v1/namespaces/${RELEASE_NAMESPACE}/deployments/secretsync`,
      );
      imageFiles = snapshot(image.dir);
      operator = await startOperatorLikeDeployment(image, deployment, tokenConfig, POD_NAME);

      await waitForSecretData(admin, ns, 'app-db', (d) => d.password === password && d.username === 'app', 20_000);
      const ms = await waitForReady(admin, ns, 'app-db', 'True', 'Synced', 20_000);
      expect(ms.status?.secretName).to.equal('app-db');
      await waitStoreReady('secretstores', 'local', ns);
    });

    it('syncs from a ClusterSecretStore whose master key lives in the operator namespace', async () => {
      const masterKey = randomBytes(32);
      await admin.request('POST', `/api/v1/namespaces/${RELEASE_NAMESPACE}/secrets`, {
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'shared-master-key' },
          data: { 'master-key': masterKey.toString('base64') },
        },
      });
      const shared = new LocalStore(cssDir, masterKey);
      await shared.put('shared/smtp', { password: 'smtp-secret' });
      await admin.request('POST', `/apis/${API_VERSION}/clustersecretstores`, {
        body: {
          apiVersion: API_VERSION,
          kind: 'ClusterSecretStore',
          metadata: { name: 'shared' },
          spec: {
            provider: {
              local: { path: cssDir, masterKeySecretRef: { name: 'shared-master-key', namespace: RELEASE_NAMESPACE } },
            },
            conditions: [{ namespaces: [ns] }],
          },
        },
      });
      await createManagedSecret(admin, ns, {
        metadata: { name: 'smtp' },
        spec: {
          storeRef: { name: 'shared', kind: 'ClusterSecretStore' },
          data: [{ secretKey: 'smtp-password', remoteRef: { key: 'shared/smtp', property: 'password' } }],
        },
      });
      await waitForSecretData(admin, ns, 'smtp', (d) => d['smtp-password'] === 'smtp-secret', 20_000);
      await waitForReady(admin, ns, 'smtp', 'True', 'Synced', 20_000);
      await waitStoreReady('clustersecretstores', 'shared');
    });

    it('repairs a hand edit (update) and re-creates an immutable Secret on change (delete, create)', async () => {
      const secret = await getSecret(admin, ns, 'app-db');
      await admin.request('PUT', `/api/v1/namespaces/${ns}/secrets/app-db`, {
        body: { ...secret, data: { ...secret?.data, password: Buffer.from('tampered').toString('base64') } },
      });
      await waitForSecretData(admin, ns, 'app-db', (d) => d.password === password, 20_000);

      const fixture = fixtures[0] as LocalStoreFixture;
      await fixture.store.put('app/token', { value: 'v1' });
      await createManagedSecret(admin, ns, {
        metadata: { name: 'frozen' },
        spec: {
          storeRef: { name: 'local' },
          target: { immutable: true },
          data: [{ secretKey: 'token', remoteRef: { key: 'app/token', property: 'value' } }],
        },
      });
      const first = await waitForSecretData(admin, ns, 'frozen', (d) => d.token === 'v1', 20_000);
      await fixture.store.put('app/token', { value: 'v2' });
      await admin.request('PATCH', `/apis/${API_VERSION}/namespaces/${ns}/managedsecrets/frozen`, {
        body: { metadata: { annotations: { 'secretsync.io/force-sync': 'now' } } },
        contentType: 'application/merge-patch+json',
      });
      const second = await waitForSecretData(admin, ns, 'frozen', (d) => d.token === 'v2', 20_000);
      expect(second.immutable).to.equal(true);
      expect(second.metadata.uid).to.not.equal(first.metadata.uid);
    });

    it('leads with its Lease (created, then renewed), records Events and keeps its HMAC key in its namespace', async () => {
      interface Lease {
        spec: { holderIdentity?: string; renewTime?: string };
      }
      const leasePath = `/apis/coordination.k8s.io/v1/namespaces/${RELEASE_NAMESPACE}/leases/secretsync-leader`;
      const lease = await admin.get<Lease>(leasePath);
      expect(lease.spec.holderIdentity).to.equal(POD_NAME);
      await waitFor(
        'the Lease to be renewed',
        async () => ((await admin.get<Lease>(leasePath)).spec.renewTime !== lease.spec.renewTime ? true : undefined),
        10_000,
        200,
      );
      const events = await listEvents(admin, ns);
      const synced = events.find((e) => (e as KubeObject & { reason?: string }).reason === 'Synced') as
        (KubeObject & { involvedObject: { kind: string }; source: { component: string } }) | undefined;
      expect(synced?.involvedObject.kind).to.equal('ManagedSecret');
      expect(synced?.source.component).to.equal('secretsync');
      const hmac = await getSecret(admin, RELEASE_NAMESPACE, 'secretsync-hmac-key');
      expect(Object.keys(hmac?.data ?? {})).to.deep.equal(['hmac-key']);
    });

    if (scope.unwatched) {
      it(`leaves ${scope.unwatched}, outside watchNamespaces, alone`, async () => {
        const unwatched = scope.unwatched as string;
        await sleep(2_000);
        const ms: ManagedSecret = await getManagedSecret(admin, unwatched, 'app-db');
        expect(ms.status, 'status of a ManagedSecret outside watchNamespaces').to.equal(undefined);
        expect(await getSecret(admin, unwatched, 'app-db')).to.equal(undefined);
        const ss = await store('secretstores', 'local', unwatched);
        expect(ss.status).to.equal(undefined);
      });
    }

    it('exposes every metric its PrometheusRule alerts on', async () => {
      // The cluster here serves no monitoring.coreos.com/v1: rendered as for one that does.
      const objects = await renderChart({
        values: { metrics: { prometheusRule: { enabled: true } } },
        args: ['--api-versions', 'monitoring.coreos.com/v1'],
      });
      const rule = objects.find((o) => o.kind === 'PrometheusRule') as unknown as {
        spec: { groups: { rules: { expr: string }[] }[] };
      };
      const names = new Set(
        rule.spec.groups.flatMap((g) => g.rules.flatMap((r) => r.expr.match(/secretsync_\w+/g) ?? [])),
      );
      expect(names.size).to.equal(6);
      // The lag has a series per ReplicationTarget: one whose kubeconfig Secret is missing (the chart's RBAC
      // must let the leader read it, write its status and record an Event about it).
      await admin.request('POST', `/apis/${API_VERSION}/replicationtargets`, {
        body: {
          apiVersion: API_VERSION,
          kind: 'ReplicationTarget',
          metadata: { name: 'dr-nowhere' },
          spec: { kubeconfigSecretRef: { name: 'no-such-kubeconfig' }, clusterStores: {} },
        },
      });
      await waitFor(
        'the ReplicationTarget to report InvalidKubeconfig',
        async () => {
          const t = await admin.get<{ status?: StoreStatus }>(`/apis/${API_VERSION}/replicationtargets/dr-nowhere`);
          return t.status?.conditions?.some((c) => c.type === 'Ready' && c.reason === 'InvalidKubeconfig')
            ? true
            : undefined;
        },
        30_000,
        500,
      );
      const op = operator as OperatorProcess;
      // Gauges are refreshed every 5 s; counters appear with their first increment.
      const text = await waitFor(
        'every alerted metric in /metrics',
        async () => {
          const body = await (await fetch(`http://127.0.0.1:${op.port}/metrics`)).text();
          return [...names].every((n) => new RegExp(`^${n}(\\{| )`, 'm').test(body)) ? body : undefined;
        },
        15_000,
        500,
      );
      expect(text).to.match(/^secretsync_leader 1$/m);
      expect(text).to.match(/^secretsync_stores\{kind="SecretStore",ready="True"\} 1$/m);
      expect(text).to.match(
        /^secretsync_replication_failures_total\{target="dr-nowhere",reason="InvalidKubeconfig"\} [1-9]/m,
      );
    });

    it('was never refused a request: no "forbidden" in its logs', () => {
      const logs = (operator as OperatorProcess).logs();
      expect(logs).to.contain('caches synced');
      expect(logs).to.not.match(/forbidden|\b403\b/i);
      expect(logs).to.not.contain(password);
    });

    it('kubectl auth can-i with its token: yes to what it uses, no to anything more', async () => {
      const allowed: Check[] = scope.unwatched
        ? [
            ['get', 'secrets', ns],
            ['list', 'secrets', ns],
            ['watch', 'secrets', ns],
            ['create', 'secrets', ns],
            ['update', 'secrets', ns],
            ['delete', 'secrets', ns],
            ['list', 'managedsecrets.secretsync.io', ns],
            ['patch', 'managedsecrets.secretsync.io/status', ns],
            ['patch', 'secretstores.secretsync.io/status', ns],
            ['create', 'events', ns],
            ['watch', 'clustersecretstores.secretsync.io'],
            ['patch', 'clustersecretstores.secretsync.io/status'],
            ['list', 'namespaces'],
            ['create', 'leases.coordination.k8s.io', RELEASE_NAMESPACE],
            ['update', 'leases.coordination.k8s.io/secretsync-leader', RELEASE_NAMESPACE],
            ['get', 'secrets', RELEASE_NAMESPACE],
            ['create', 'secrets', RELEASE_NAMESPACE],
            ['watch', 'replicationtargets.secretsync.io'],
            ['patch', 'replicationtargets.secretsync.io/status'],
            // Events about ReplicationTargets (cluster-scoped) go to the default namespace.
            ['create', 'events', 'default'],
          ]
        : [
            ['list', 'secrets', '*'],
            ['watch', 'secrets', '*'],
            ['get', 'secrets', 'kube-system'],
            ['delete', 'secrets', ns],
            ['update', 'secrets', ns],
            ['list', 'managedsecrets.secretsync.io', '*'],
            ['patch', 'managedsecrets.secretsync.io/status', ns],
            ['patch', 'clustersecretstores.secretsync.io/status'],
            ['create', 'events', 'team-b'],
            ['list', 'namespaces'],
            ['create', 'leases.coordination.k8s.io', RELEASE_NAMESPACE],
            ['get', 'leases.coordination.k8s.io/secretsync-leader', RELEASE_NAMESPACE],
            ['list', 'replicationtargets.secretsync.io'],
            ['patch', 'replicationtargets.secretsync.io/status'],
          ];
      const refused: Check[] = [
        ...neverAllowed,
        ...(scope.unwatched
          ? ([
              ['get', 'secrets', scope.unwatched],
              ['list', 'secrets', scope.unwatched],
              ['watch', 'secrets', scope.unwatched],
              ['create', 'secrets', scope.unwatched],
              ['list', 'secrets', '*'],
              ['get', 'secrets', 'kube-system'],
              ['list', 'secrets', RELEASE_NAMESPACE],
              ['delete', 'secrets', RELEASE_NAMESPACE],
              ['list', 'managedsecrets.secretsync.io', scope.unwatched],
              ['list', 'managedsecrets.secretsync.io', '*'],
              ['create', 'events', scope.unwatched],
              ['create', 'serviceaccounts/token', scope.unwatched],
            ] as Check[])
          : []),
      ];
      // serviceaccounts/token only with serviceAccountTokens.enabled, and only where it watches.
      const token: Check[] = [
        ['create', 'serviceaccounts/token', ns],
        ['create', 'serviceaccounts/token', RELEASE_NAMESPACE],
      ];
      (scope.tokens ? allowed : refused).push(...token);
      const wrong: string[] = [];
      for (const [want, checks] of [
        [true, allowed],
        [false, refused],
      ] as const) {
        for (const [verb, resource, namespace] of checks) {
          const got = await canI(tokenConfig, verb, resource, namespace);
          if (got !== want)
            wrong.push(`${verb} ${resource}${namespace ? ` -n ${namespace}` : ''}: ${got ? 'yes' : 'no'}`);
        }
      }
      expect(wrong, 'kubectl auth can-i answers that differ from what the operator should have').to.deep.equal([]);
    });

    it('stops on SIGTERM: exit 0, the Lease handed over, nothing written to its own files or $HOME', async () => {
      const op = operator as OperatorProcess;
      await op.stop();
      expect(op.exitCode(), op.logs()).to.equal(0);
      operator = undefined;
      const lease = await admin.get<{ spec: { holderIdentity?: string } }>(
        `/apis/coordination.k8s.io/v1/namespaces/${RELEASE_NAMESPACE}/leases/secretsync-leader`,
      );
      expect(lease.spec.holderIdentity ?? '').to.equal('');
      // A read-only root filesystem would have refused any write there.
      expect(snapshot(image.dir)).to.deep.equal(imageFiles);
      expect(readdirSync(op.home)).to.deep.equal([]);
    });

    it('uninstalls with helm: its objects go, the CRDs and the synced Secrets stay', async () => {
      const { helm } = await kubeClients();
      await mustRun(helm, ['uninstall', 'secretsync', '-n', RELEASE_NAMESPACE, '--kubeconfig', cluster.kubeconfigPath]);
      const clusterRole = await cluster.adminRequest(
        'GET',
        `/apis/rbac.authorization.k8s.io/v1/clusterroles/secretsync-${RELEASE_NAMESPACE}`,
      );
      expect(clusterRole.status).to.equal(404);
      const sa = await cluster.adminRequest(
        'GET',
        `/api/v1/namespaces/${RELEASE_NAMESPACE}/serviceaccounts/secretsync`,
      );
      expect(sa.status).to.equal(404);
      expect((await cluster.adminRequest('GET', `/apis/${API_VERSION}/managedsecrets`)).status).to.equal(200);
      expect(decoded(await getSecret(admin, ns, 'app-db')).password).to.equal(password);
    });
  });
}

// The local stores of this test live under the machine's temporary directory, not
// the chart's default root for namespaced local stores (/var/lib/secretsync).
const localStoreRoot = ['--set', `tenancy.localStoreRoot=${tmpdir()}`];

describe('helm install into a real control plane (no kubelet: the operator runs as a local process)', () => {
  installScenario({
    title: 'cluster scope (default values)',
    extraHelmArgs: [...localStoreRoot],
    watched: 'team-a',
    tokens: false,
  });
  installScenario({
    title: 'namespaced scope (watchNamespaces: [team-a])',
    extraHelmArgs: [
      '--set',
      'watchNamespaces={team-a}',
      '--set',
      'serviceAccountTokens.enabled=true',
      ...localStoreRoot,
    ],
    watched: 'team-a',
    unwatched: 'team-b',
    tokens: true,
  });
});
