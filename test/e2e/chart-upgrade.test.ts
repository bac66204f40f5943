// `helm upgrade` from the previous chart (taken from git history) to this one,
// on a real control plane with the operator syncing: the previous chart
// installed its CRDs from crds/, which Helm never upgrades and the release does
// not own; this chart templates them. The upgrade must adopt them (Helm 3.17+
// --take-ownership, as docs/upgrading.md tells users), serve the changed CRDs
// (the new short names), and leave every synced Secret untouched. Then: the
// release owns the CRDs (a plain upgrade works), uninstalling keeps them
// (crds.keep), and a release with crds.install=false installs beside CRDs
// managed apart. A second cluster runs docs/upgrading.md's adoption commands
// for Helm before 3.17 instead of --take-ownership.
//
// The `it`s build on each other, in order.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { API_VERSION, type ManagedSecret } from '../../src/api/types.js';
import { KubeClient } from '../../src/kube/client.js';
import { TestCluster, waitFor } from '../../tools/testenv/index.js';
import { repoRoot } from '../../tools/testenv/paths.js';
import {
  createLocalStore,
  createManagedSecret,
  createSecretStore,
  ensureNamespace,
  getManagedSecret,
  getSecret,
  spawnOperatorProcess,
  waitForReady,
  waitForSecretData,
  type LocalStoreFixture,
  type OperatorProcess,
} from '../integration/operator.js';
import { CHART_DIR, kubeClients, mustKubectl, mustRun, run, tempDir } from './helpers.js';

/**
 * The last commit of main before the chart templated its CRDs (and before the
 * short names changed): its charts/secretsync is "the previous chart version".
 */
const PREVIOUS_CHART_COMMIT = 'b8e721c1755a0d86986a55c146bdc3ac08294132';
const RELEASE = 'secretsync';
const RELEASE_NAMESPACE = 'secretsync-system';
const NS = 'team-a';
const CRD_NAMES = ['clustersecretstores', 'managedsecrets', 'replicationtargets', 'secretstores'].map(
  (p) => `${p}.secretsync.io`,
);

interface Crd {
  metadata: {
    name: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec: { names: { shortNames?: string[] } };
}

/** charts/secretsync as it was at `commit`, extracted into a temporary directory. */
async function chartAt(commit: string): Promise<string> {
  const known = await run('git', ['cat-file', '-e', `${commit}^{commit}`], { cwd: repoRoot });
  if (known.code !== 0)
    throw new Error(`commit ${commit} (the previous chart) is not in this clone: run git fetch --unshallow`);
  const dir = tempDir('previous-chart');
  const archive = join(dir, 'chart.tar');
  await mustRun('git', ['archive', '--format=tar', '-o', archive, commit, 'charts/secretsync'], { cwd: repoRoot });
  await mustRun('tar', ['-xf', archive, '-C', dir]);
  return join(dir, 'charts', 'secretsync');
}

describe('helm upgrade from the previous chart (CRDs in crds/) to this one (CRDs as templates)', function () {
  this.timeout(180_000);
  let cluster: TestCluster;
  let admin: KubeClient;
  let helm: string;
  let previousChart: string;
  let operator: OperatorProcess | undefined;
  let fixture: LocalStoreFixture | undefined;
  let original: { uid: string; resourceVersion: string };
  const password = `pw-${randomBytes(6).toString('hex')}`;

  const helmRun = (args: string[]) => run(helm, [...args, '--kubeconfig', cluster.kubeconfigPath]);
  const mustHelm = (args: string[]) => mustRun(helm, [...args, '--kubeconfig', cluster.kubeconfigPath]);
  const crd = (name: string) => admin.get<Crd>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
  /** The operator's metrics port, from its start-up log line. */
  const metricsPort = () => {
    const line = operator?.lines.find((l) => l.includes('serving /healthz, /readyz and /metrics'));
    const port = line ? (JSON.parse(line) as { port?: number }).port : undefined;
    if (!port) throw new Error(`the operator logged no metrics port:\n${operator?.lines.join('\n') ?? ''}`);
    return port;
  };
  const secretIdentity = async () => {
    const s = await getSecret(admin, NS, 'app-db');
    return { uid: s?.metadata.uid ?? '', resourceVersion: s?.metadata.resourceVersion ?? '' };
  };

  before(async function () {
    this.timeout(300_000);
    [cluster, { helm }, previousChart] = await Promise.all([
      TestCluster.start({ name: 'e2e-chart-upgrade' }),
      kubeClients(),
      chartAt(PREVIOUS_CHART_COMMIT),
    ]);
    admin = new KubeClient(cluster.kubeConfig());
    await ensureNamespace(admin, NS);
  });

  after(async function () {
    this.timeout(60_000);
    if (operator && operator.child.exitCode === null) {
      const exited = new Promise((resolve) => operator?.child.once('exit', resolve));
      operator.child.kill('SIGTERM');
      await exited;
    }
    fixture?.cleanup();
    admin?.close();
    await cluster?.stop();
  });

  it('installs the previous chart, whose CRDs come from crds/ with the old short names and no release ownership', async () => {
    const result = await mustHelm(['install', RELEASE, previousChart, '-n', RELEASE_NAMESPACE, '--create-namespace']);
    expect(result.stdout).to.match(/STATUS: deployed/);
    await mustKubectl(cluster.kubeconfigPath, [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd',
      ...CRD_NAMES,
    ]);
    const old = await crd('secretstores.secretsync.io');
    expect(old.spec.names.shortNames).to.deep.equal(['ss']);
    expect(old.metadata.annotations?.['meta.helm.sh/release-name']).to.equal(undefined);
    expect(old.metadata.labels?.['app.kubernetes.io/managed-by']).to.equal(undefined);
  });

  it('syncs a ManagedSecret from a SecretStore into a Secret (the operator running throughout)', async () => {
    fixture = await createLocalStore(admin, NS);
    await fixture.store.put('app/db', { password });
    await createSecretStore(admin, NS, 'local', fixture.dir);
    await createManagedSecret(admin, NS, {
      metadata: { name: 'app-db' },
      spec: {
        storeRef: { name: 'local' },
        data: [{ secretKey: 'password', remoteRef: { key: 'app/db', property: 'password' } }],
      },
    });
    operator = spawnOperatorProcess(cluster, [NS]);
    await waitForSecretData(admin, NS, 'app-db', (d) => d.password === password, 30_000);
    await waitForReady(admin, NS, 'app-db', 'True', 'Synced', 30_000);
    original = await secretIdentity();
    expect(original.uid).to.not.equal('');
  });

  it('refuses a plain helm upgrade: the CRDs exist and the release does not own them', async () => {
    const result = await helmRun(['upgrade', RELEASE, CHART_DIR, '-n', RELEASE_NAMESPACE]);
    expect(result.code).to.not.equal(0);
    expect(result.stderr).to.match(
      /CustomResourceDefinition ".*secretsync.io" .*exists and cannot be imported into the current release/,
    );
    expect((await crd('secretstores.secretsync.io')).spec.names.shortNames).to.deep.equal(['ss']);
  });

  it('upgrades with --take-ownership (docs/upgrading.md): the changed CRDs are served, owned by the release and kept', async () => {
    const result = await mustHelm(['upgrade', RELEASE, CHART_DIR, '-n', RELEASE_NAMESPACE, '--take-ownership']);
    expect(result.stdout).to.match(/STATUS: deployed/);
    for (const name of CRD_NAMES) {
      const c = await crd(name);
      expect(c.metadata.annotations, name).to.include({
        'meta.helm.sh/release-name': RELEASE,
        'meta.helm.sh/release-namespace': RELEASE_NAMESPACE,
        'helm.sh/resource-policy': 'keep',
      });
      expect(c.metadata.labels?.['app.kubernetes.io/managed-by'], name).to.equal('Helm');
    }
    expect((await crd('secretstores.secretsync.io')).spec.names.shortNames).to.deep.equal(['sstore']);
    expect((await crd('clustersecretstores.secretsync.io')).spec.names.shortNames).to.deep.equal(['csstore']);
    // kubectl resolves the new short names (discovery serves them once the CRD's names are accepted).
    await waitFor(
      'kubectl get sstore to list the store',
      async () => {
        const got = await run((await kubeClients()).kubectl, [
          '--kubeconfig',
          cluster.kubeconfigPath,
          'get',
          'sstore',
          '-n',
          NS,
          '-o',
          'name',
        ]);
        return got.code === 0 && got.stdout.includes('secretstore.secretsync.io/local') ? true : undefined;
      },
      30_000,
      250,
    );
    const all = await mustKubectl(cluster.kubeconfigPath, ['get', 'secretsync', '-n', NS, '-o', 'name']);
    expect(all.stdout).to.contain('managedsecret.secretsync.io/app-db');
    expect(all.stdout).to.contain('secretstore.secretsync.io/local');
  });

  it('did not rewrite the Secret, not even after a forced sync under the new CRDs', async () => {
    expect(await secretIdentity()).to.deep.equal(original);
    // The operator's own count of syncs that found the Secret as it should be: a sync
    // that wrote nothing, which is what the Secret's unchanged resourceVersion must mean.
    const unchangedSyncs = async () => {
      const res = await fetch(`http://127.0.0.1:${metricsPort()}/metrics`);
      const text = await res.text();
      return [...text.matchAll(/^secretsync_syncs_total\{[^}]*result="unchanged"[^}]*\} (\d+)$/gm)].reduce(
        (sum, m) => sum + Number(m[1]),
        0,
      );
    };
    const beforeForce = await unchangedSyncs();
    await admin.request('PATCH', `/apis/${API_VERSION}/namespaces/${NS}/managedsecrets/app-db`, {
      body: { metadata: { annotations: { 'secretsync.io/force-sync': 'after-upgrade' } } },
      contentType: 'application/merge-patch+json',
    });
    await waitFor(
      'a forced sync after the upgrade',
      async () => ((await unchangedSyncs()) > beforeForce ? true : undefined),
      30_000,
      100,
    );
    const ms: ManagedSecret = await getManagedSecret(admin, NS, 'app-db');
    expect(ms.status?.conditions?.find((c) => c.type === 'Ready')?.status).to.equal('True');
    expect(await secretIdentity()).to.deep.equal(original);
  });

  it('owns the CRDs now: a plain helm upgrade works', async () => {
    const result = await mustHelm(['upgrade', RELEASE, CHART_DIR, '-n', RELEASE_NAMESPACE]);
    expect(result.stdout).to.match(/STATUS: deployed/);
    expect(await secretIdentity()).to.deep.equal(original);
  });

  it('keeps the CRDs and every object of theirs on helm uninstall (crds.keep)', async () => {
    const result = await mustHelm(['uninstall', RELEASE, '-n', RELEASE_NAMESPACE]);
    expect(result.stdout + result.stderr).to.match(/kept due to the resource policy/);
    for (const name of CRD_NAMES) expect((await crd(name)).metadata.name).to.equal(name);
    expect((await getManagedSecret(admin, NS, 'app-db')).metadata.name).to.equal('app-db');
    expect(await secretIdentity()).to.deep.equal(original);
  });

  it('installs with crds.install=false beside CRDs managed apart, leaving them as they are', async () => {
    const unchanged = await Promise.all(CRD_NAMES.map((n) => crd(n)));
    const result = await mustHelm([
      'install',
      RELEASE,
      CHART_DIR,
      '-n',
      RELEASE_NAMESPACE,
      '--set',
      'crds.install=false',
    ]);
    expect(result.stdout).to.match(/STATUS: deployed/);
    const manifest = await mustHelm(['get', 'manifest', RELEASE, '-n', RELEASE_NAMESPACE]);
    expect(manifest.stdout).to.not.contain('kind: CustomResourceDefinition');
    expect(manifest.stdout).to.contain('kind: Deployment');
    for (const c of unchanged)
      expect((await crd(c.metadata.name)).metadata.resourceVersion, c.metadata.name).to.equal(
        c.metadata.resourceVersion,
      );
  });
});

/** The bash block of docs/upgrading.md that hands the CRDs to the release (for Helm before 3.17). */
function adoptionCommands(): string {
  const doc = readFileSync(join(repoRoot, 'docs', 'upgrading.md'), 'utf8');
  const block = [...doc.matchAll(/```bash\n([\s\S]*?)```/g)]
    .map((m) => m[1] as string)
    .find((b) => b.includes('meta.helm.sh/release-name'));
  if (!block) throw new Error('docs/upgrading.md has no bash block that annotates the CRDs for Helm');
  return block;
}

describe('helm upgrade from the previous chart after the documented adoption step (Helm before 3.17)', function () {
  this.timeout(180_000);
  let cluster: TestCluster;
  let helm: string;
  let kubectlBin: string;

  before(async function () {
    this.timeout(300_000);
    let previousChart: string;
    [cluster, { helm, kubectl: kubectlBin }, previousChart] = await Promise.all([
      TestCluster.start({ name: 'e2e-chart-adopt' }),
      kubeClients(),
      chartAt(PREVIOUS_CHART_COMMIT),
    ]);
    await mustRun(helm, [
      'install',
      RELEASE,
      previousChart,
      '-n',
      RELEASE_NAMESPACE,
      '--create-namespace',
      '--kubeconfig',
      cluster.kubeconfigPath,
    ]);
  });

  after(async function () {
    this.timeout(60_000);
    await cluster?.stop();
  });

  it('labels and annotates the CRDs with the commands in docs/upgrading.md, then upgrades without --take-ownership', async () => {
    // The commands as a user runs them: bash, with kubectl on the PATH and KUBECONFIG set.
    const binDir = tempDir('kubectl-bin');
    symlinkSync(kubectlBin, join(binDir, 'kubectl'));
    await mustRun('bash', ['-euo', 'pipefail', '-c', adoptionCommands()], {
      env: { ...process.env, PATH: `${binDir}:${process.env.PATH ?? ''}`, KUBECONFIG: cluster.kubeconfigPath },
    });
    const result = await mustRun(helm, [
      'upgrade',
      RELEASE,
      CHART_DIR,
      '-n',
      RELEASE_NAMESPACE,
      '--kubeconfig',
      cluster.kubeconfigPath,
    ]);
    expect(result.stdout).to.match(/STATUS: deployed/);
    const got = await mustKubectl(cluster.kubeconfigPath, [
      'get',
      'crd',
      'secretstores.secretsync.io',
      '-o',
      'jsonpath={.spec.names.shortNames}',
    ]);
    expect(got.stdout).to.equal('["sstore"]');
  });
});
