// The chart's RBAC follows from what is turned on, checked with real tokens
// against a real API server: the operator's ServiceAccount may patch workloads
// only with rolloutRestarts.enabled (cluster and namespaced scope), and people
// bound to the built-in edit, admin and view roles in a namespace get
// secretsync through the ClusterRoles the chart aggregates into those, and no
// more: editors write ManagedSecrets but not SecretStores (unless
// rbac.aggregate.secretStoresFor says so), viewers read and never get Secrets.
//
// The cluster's kube-controller-manager runs only the controllers the other
// tests need; a second one here runs the ClusterRole aggregation controller,
// the real part that folds labelled ClusterRoles into view, edit and admin.
// The `it`s build on each other, in order: each helm upgrade changes one thing.
import { expect } from 'chai';
import { join } from 'node:path';
import { API_VERSION } from '../../src/api/types.js';
import { ensureKubeTestenv, TestCluster, waitFor } from '../../tools/testenv/index.js';
import { spawnLogged, type SpawnedProcess } from '../../tools/testenv/processes.js';
import { canI, kubeClients, kubectl, mintToken, mustKubectl, mustRun, tempDir, tokenKubeconfig } from './helpers.js';

const RELEASE_NAMESPACE = 'secretsync-system';
const TEAM = 'team-a';
const OTHER = 'team-b';

/** Everything a kubectl call as one identity needs. */
interface Identity {
  name: string;
  kubeconfig: string;
}

describe('RBAC from the chart, with real tokens (helm install, then one upgrade at a time)', function () {
  this.timeout(120_000);
  let cluster: TestCluster;
  let aggregator: SpawnedProcess | undefined;
  let operator: Identity;
  let editor: Identity;
  let owner: Identity;
  let viewer: Identity;
  /** What `helm install` printed (the chart's NOTES). */
  let installNotes = '';

  const helm = async (verb: 'install' | 'upgrade', values: string[]) => {
    const { helm: bin } = await kubeClients();
    // Each upgrade starts from the chart's defaults: only the values given here apply.
    return mustRun(bin, [
      verb,
      'secretsync',
      'charts/secretsync',
      '-n',
      RELEASE_NAMESPACE,
      ...(verb === 'install' ? ['--create-namespace'] : ['--reset-values']),
      ...values.flatMap((v) => ['--set', v]),
      '--kubeconfig',
      cluster.kubeconfigPath,
    ]);
  };

  /** A ServiceAccount in TEAM bound (RoleBinding) to a built-in ClusterRole, and a kubeconfig with its token only. */
  const teamMember = async (name: string, clusterRole: 'edit' | 'admin' | 'view'): Promise<Identity> => {
    const admin = cluster.kubeconfigPath;
    await mustKubectl(admin, ['create', 'serviceaccount', name, '-n', TEAM]);
    await mustKubectl(admin, [
      'create',
      'rolebinding',
      name,
      '-n',
      TEAM,
      `--clusterrole=${clusterRole}`,
      `--serviceaccount=${TEAM}:${name}`,
    ]);
    return { name, kubeconfig: tokenKubeconfig(cluster, await mintToken(cluster, TEAM, name), tempDir(name)) };
  };

  /** Waits until `kubectl auth can-i` (a SelfSubjectAccessReview) as `who` answers `want`: RBAC and aggregation are eventually consistent. */
  const eventuallyCan = (who: Identity, want: boolean, verb: string, resource: string, namespace?: string) =>
    waitFor(
      `${who.name} can-i ${verb} ${resource}${namespace ? ` -n ${namespace}` : ''} = ${want ? 'yes' : 'no'}`,
      async () => ((await canI(who.kubeconfig, verb, resource, namespace)) === want ? true : undefined),
      20_000,
      200,
    );

  /** A real request as `who`: kubectl with the object on stdin. */
  const asUser = (who: Identity, args: string[], object?: object) =>
    kubectl(who.kubeconfig, args, object ? { input: JSON.stringify(object) } : {});

  const expectForbidden = (result: { code: number; stderr: string }, what: string) => {
    expect(result.code, `${what} should be refused`).to.not.equal(0);
    expect(result.stderr, what).to.match(/forbidden/i);
  };
  const expectDone = (result: { code: number; stdout: string; stderr: string }, what: string) =>
    expect(result.code, `${what}: ${result.stderr}${result.stdout}`).to.equal(0);

  const managedSecret = (name: string) => ({
    apiVersion: API_VERSION,
    kind: 'ManagedSecret',
    metadata: { name, namespace: TEAM },
    spec: { storeRef: { name: 'local' }, data: [{ secretKey: 'password', remoteRef: { key: 'app/db' } }] },
  });
  const secretStore = (name: string) => ({
    apiVersion: API_VERSION,
    kind: 'SecretStore',
    metadata: { name, namespace: TEAM },
    spec: {
      provider: {
        local: { path: `/var/lib/secretsync/store/${TEAM}`, masterKeySecretRef: { name: 'master-key' } },
      },
    },
  });
  const clusterSecretStore = {
    apiVersion: API_VERSION,
    kind: 'ClusterSecretStore',
    metadata: { name: 'borrowed' },
    spec: {
      provider: {
        local: {
          path: '/var/lib/secretsync/store/shared',
          masterKeySecretRef: { name: 'master-key', namespace: RELEASE_NAMESPACE },
        },
      },
    },
  };

  /** The operator's Deployment as installed: the value of one of its container's env vars. */
  const deploymentEnv = async (name: string) => {
    const got = await mustKubectl(cluster.kubeconfigPath, [
      'get',
      'deployment',
      'secretsync',
      '-n',
      RELEASE_NAMESPACE,
      '-o',
      'json',
    ]);
    const d = JSON.parse(got.stdout) as {
      spec: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } };
    };
    return d.spec.template.spec.containers[0]?.env?.find((e) => e.name === name)?.value;
  };

  const workloadKinds = ['deployments.apps', 'statefulsets.apps', 'daemonsets.apps'];
  /** A rollout restart as the operator makes it: a merge patch of the pod-template annotation. */
  const restart = (namespace: string) =>
    asUser(operator, [
      'patch',
      'deployment',
      'api',
      '-n',
      namespace,
      '--type=merge',
      '-p',
      JSON.stringify({
        spec: { template: { metadata: { annotations: { 'secretsync.io/restarted-at': new Date().toISOString() } } } },
      }),
    ]);

  before(async function () {
    this.timeout(300_000);
    cluster = await TestCluster.start({ name: 'e2e-rbac' });
    aggregator = spawnLogged(
      'kube-controller-manager (clusterrole aggregation)',
      await ensureKubeTestenv(),
      [
        'kube-controller-manager',
        `--kubeconfig=${cluster.kubeconfigPath}`,
        '--leader-elect=false',
        '--secure-port=0',
        '--controllers=clusterrole-aggregation-controller',
      ],
      join(cluster.dir, 'kube-controller-manager-aggregation.log'),
    );
    const admin = cluster.kubeconfigPath;
    for (const ns of [TEAM, OTHER]) {
      await mustKubectl(admin, ['create', 'namespace', ns]);
      // A workload to restart (there is no kubelet: it never runs, which a patch does not need).
      await mustKubectl(admin, ['create', 'deployment', 'api', '--image=registry.example/api:1', '-n', ns]);
    }
    // The built-in roles exist once the API server has bootstrapped its policy.
    await waitFor(
      'the built-in edit ClusterRole',
      async () => ((await kubectl(admin, ['get', 'clusterrole', 'edit'])).code === 0 ? true : undefined),
      30_000,
      200,
    );
    installNotes = (await helm('install', [])).stdout;
    const token = await mintToken(cluster, RELEASE_NAMESPACE, 'secretsync');
    operator = { name: 'the operator', kubeconfig: tokenKubeconfig(cluster, token, tempDir('operator')) };
    editor = await teamMember('dev', 'edit');
    owner = await teamMember('owner', 'admin');
    viewer = await teamMember('viewer', 'view');
  });

  after(async function () {
    this.timeout(60_000);
    await aggregator?.stop();
    await cluster?.stop();
  });

  describe('rollout restarts', () => {
    it('are off by default: the operator cannot patch any workload, and its Deployment says so', async () => {
      for (const kind of workloadKinds)
        for (const ns of [TEAM, OTHER, 'kube-system'])
          expect(await canI(operator.kubeconfig, 'patch', kind, ns), `patch ${kind} -n ${ns}`).to.equal(false);
      expectForbidden(await restart(TEAM), 'a restart patch with restarts off');
      expect(await deploymentEnv('SECRETSYNC_ROLLOUT_RESTARTS')).to.equal('false');
      expect(installNotes).to.contain('Rollout restarts (spec.rolloutRestart) are off');
    });

    it('rolloutRestarts.enabled=true grants get, list and patch on workloads cluster-wide, and tells the operator', async () => {
      const notes = (await helm('upgrade', ['rolloutRestarts.enabled=true'])).stdout;
      expect(notes).to.not.contain('Rollout restarts');
      expect(await deploymentEnv('SECRETSYNC_ROLLOUT_RESTARTS')).to.equal('true');
      await eventuallyCan(operator, true, 'patch', 'deployments.apps', TEAM);
      for (const kind of workloadKinds)
        for (const verb of ['get', 'list', 'patch'])
          expect(await canI(operator.kubeconfig, verb, kind, OTHER)).to.equal(true);
      // Still never create, replace or delete.
      expect(await canI(operator.kubeconfig, 'update', 'deployments.apps', TEAM)).to.equal(false);
      expect(await canI(operator.kubeconfig, 'delete', 'deployments.apps', TEAM)).to.equal(false);
      expectDone(await restart(TEAM), 'a restart patch with restarts on');
      expectDone(await restart(OTHER), 'a restart patch with restarts on');
    });

    it('with watchNamespaces, only in the watched namespaces', async () => {
      await helm('upgrade', [`watchNamespaces={${TEAM}}`, 'rolloutRestarts.enabled=true']);
      await eventuallyCan(operator, false, 'patch', 'deployments.apps', OTHER);
      expect(await canI(operator.kubeconfig, 'patch', 'deployments.apps', TEAM)).to.equal(true);
      expectDone(await restart(TEAM), `a restart patch in ${TEAM}`);
      expectForbidden(await restart(OTHER), `a restart patch in ${OTHER}, not watched`);
    });

    it('with watchNamespaces and restarts off, nowhere', async () => {
      await helm('upgrade', [`watchNamespaces={${TEAM}}`]);
      expect(await deploymentEnv('SECRETSYNC_ROLLOUT_RESTARTS')).to.equal('false');
      await eventuallyCan(operator, false, 'patch', 'deployments.apps', TEAM);
      for (const kind of workloadKinds) expect(await canI(operator.kubeconfig, 'get', kind, TEAM)).to.equal(false);
      expectForbidden(await restart(TEAM), `a restart patch in ${TEAM} with restarts off`);
    });
  });

  describe('namespace users through the built-in roles', () => {
    before(async () => {
      await helm('upgrade', []);
    });

    it('are told in the install notes', () => {
      expect(installNotes.replace(/\s+/g, ' ')).to.contain(
        'edit and admin also write ManagedSecrets; SecretStores are written by cluster admins only.',
      );
    });

    it('edit: creates, changes and deletes a ManagedSecret in its namespace', async () => {
      await eventuallyCan(editor, true, 'create', 'managedsecrets.secretsync.io', TEAM);
      expectDone(await asUser(editor, ['create', '-f', '-'], managedSecret('app-db')), 'edit creating a ManagedSecret');
      expectDone(
        await asUser(editor, ['annotate', 'managedsecret', 'app-db', '-n', TEAM, 'secretsync.io/force-sync=1']),
        'edit changing a ManagedSecret',
      );
      expectDone(await asUser(editor, ['delete', 'managedsecret', 'app-db', '-n', TEAM]), 'edit deleting it');
      // Not in another namespace (no binding there), and never the operator's status.
      expect(await canI(editor.kubeconfig, 'create', 'managedsecrets.secretsync.io', OTHER)).to.equal(false);
      expect(await canI(editor.kubeconfig, 'patch', 'managedsecrets.secretsync.io/status', TEAM)).to.equal(false);
    });

    it('edit and admin: no SecretStore by default, and never a ClusterSecretStore', async () => {
      for (const who of [editor, owner]) {
        expectForbidden(
          await asUser(who, ['create', '-f', '-'], secretStore(`by-${who.name}`)),
          `${who.name}: a SecretStore`,
        );
        expectForbidden(
          await asUser(who, ['create', '-f', '-'], clusterSecretStore),
          `${who.name}: a ClusterSecretStore`,
        );
        // But they see the stores of their namespace.
        expect(await canI(who.kubeconfig, 'list', 'secretstores.secretsync.io', TEAM)).to.equal(true);
      }
    });

    it('view: lists ManagedSecrets and SecretStores, writes nothing and reads no Secret', async () => {
      await mustKubectl(cluster.kubeconfigPath, ['create', '-f', '-'], {
        input: JSON.stringify(managedSecret('seen')),
      });
      const listed = await asUser(viewer, ['get', 'managedsecrets', '-n', TEAM, '-o', 'name']);
      expectDone(listed, 'view listing ManagedSecrets');
      expect(listed.stdout.trim()).to.equal('managedsecret.secretsync.io/seen');
      expectDone(await asUser(viewer, ['get', 'secretstores', '-n', TEAM]), 'view listing SecretStores');
      expectForbidden(
        await asUser(viewer, ['create', '-f', '-'], managedSecret('by-viewer')),
        'view creating a ManagedSecret',
      );
      expectForbidden(await asUser(viewer, ['delete', 'managedsecret', 'seen', '-n', TEAM]), 'view deleting one');
      expectForbidden(await asUser(viewer, ['get', 'secrets', '-n', TEAM]), 'view listing Secrets');
      for (const verb of ['get', 'list', 'watch'])
        expect(await canI(viewer.kubeconfig, verb, 'secrets', TEAM), `view ${verb} secrets`).to.equal(false);
    });

    it('rbac.aggregate.secretStoresFor=admin: namespace admins write SecretStores, editors still do not', async () => {
      const notes = (await helm('upgrade', ['rbac.aggregate.secretStoresFor=admin'])).stdout;
      expect(notes.replace(/\s+/g, ' ')).to.contain('also write ManagedSecrets, and admin SecretStores.');
      await eventuallyCan(owner, true, 'create', 'secretstores.secretsync.io', TEAM);
      expectDone(await asUser(owner, ['create', '-f', '-'], secretStore('by-owner')), 'admin creating a SecretStore');
      expectForbidden(
        await asUser(editor, ['create', '-f', '-'], secretStore('by-dev')),
        'edit creating a SecretStore',
      );
      expectForbidden(await asUser(owner, ['create', '-f', '-'], clusterSecretStore), 'admin: a ClusterSecretStore');
    });

    it('rbac.aggregate.secretStoresFor=edit: editors write SecretStores too, still no ClusterSecretStore', async () => {
      const notes = (await helm('upgrade', ['rbac.aggregate.secretStoresFor=edit'])).stdout;
      expect(notes.replace(/\s+/g, ' ')).to.contain('also write ManagedSecrets and SecretStores.');
      await eventuallyCan(editor, true, 'create', 'secretstores.secretsync.io', TEAM);
      expectDone(await asUser(editor, ['create', '-f', '-'], secretStore('by-dev')), 'edit creating a SecretStore');
      expectDone(await asUser(editor, ['delete', 'secretstore', 'by-dev', '-n', TEAM]), 'edit deleting it');
      expectForbidden(await asUser(editor, ['create', '-f', '-'], clusterSecretStore), 'edit: a ClusterSecretStore');
      expectForbidden(await asUser(viewer, ['create', '-f', '-'], secretStore('by-viewer')), 'view: a SecretStore');
    });

    it('rbac.aggregate.enabled=false takes it all back from the built-in roles', async () => {
      await helm('upgrade', ['rbac.aggregate.enabled=false']);
      await eventuallyCan(editor, false, 'create', 'managedsecrets.secretsync.io', TEAM);
      await eventuallyCan(viewer, false, 'list', 'managedsecrets.secretsync.io', TEAM);
      expectForbidden(
        await asUser(editor, ['create', '-f', '-'], managedSecret('late')),
        'edit after aggregation is off',
      );
    });
  });
});
