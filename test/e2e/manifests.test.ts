// manifests/: generated from the chart, fresh, and installable into an empty
// control plane with the README's kubectl command, twice, the second time
// changing nothing. Argo CD and `kubectl apply -k` build the same objects
// through manifests/Kustomization.
import { expect } from 'chai';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { stringify } from 'yaml';
import { buildCrds } from '../../src/api/crds.js';
import { TestCluster } from '../../tools/testenv/index.js';
import { repoRoot } from '../../tools/testenv/paths.js';
import {
  MANIFESTS_DIR,
  MANIFESTS_KUBE_VERSION,
  MANIFESTS_NAMESPACE,
  RECEIVER_DIR,
  renderChartObjects,
  renderManifests,
} from '../../tools/generate-manifests.js';
import {
  canI,
  kubeClients,
  kubectl,
  mintToken,
  mustKubectl,
  renderChart,
  mustRun,
  parseManifests,
  readmeCommand,
  tempDir,
  tokenKubeconfig,
  type KubeManifest,
} from './helpers.js';

const installYaml = () => readFileSync(join(MANIFESTS_DIR, 'install.yaml'), 'utf8');

describe('the plain manifests (manifests/)', function () {
  this.timeout(120_000);

  it('are fresh: npm run generate:manifests would write exactly these files', async () => {
    const expected = await renderManifests();
    const files = readdirSync(MANIFESTS_DIR, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => relative(MANIFESTS_DIR, join(entry.parentPath, entry.name)));
    expect(files.sort()).to.deep.equal(Object.keys(expected).sort());
    for (const [name, content] of Object.entries(expected))
      expect(
        readFileSync(join(MANIFESTS_DIR, name), 'utf8'),
        `manifests/${name} is stale: run npm run generate:manifests`,
      ).to.equal(content);
  });

  it('hold the Namespace, the generated CRDs and the chart rendered with default values, without Helm labels', async () => {
    const { helm } = await kubeClients();
    const objects = parseManifests(installYaml());
    const [namespace, ...rest] = objects;
    expect(namespace?.kind).to.equal('Namespace');
    expect(namespace?.metadata.name).to.equal(MANIFESTS_NAMESPACE);
    const chart = await renderChartObjects(helm);
    const key = (o: KubeManifest) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
    expect(rest.map(key).sort()).to.deep.equal(chart.map((o) => key(o as KubeManifest)).sort());
    const crds = rest.filter((o) => o.kind === 'CustomResourceDefinition');
    expect(crds).to.deep.equal(
      buildCrds()
        .map((c) => JSON.parse(JSON.stringify(c)) as KubeManifest)
        .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)),
    );
    for (const o of rest) {
      expect(o.metadata.labels ?? {}, key(o)).to.not.have.any.keys('helm.sh/chart', 'app.kubernetes.io/managed-by');
      if (o.kind !== 'CustomResourceDefinition' && !o.kind.startsWith('Cluster'))
        expect(o.metadata.namespace, key(o)).to.equal(MANIFESTS_NAMESPACE);
    }
    expect(installYaml()).to.contain(`# Install: kubectl apply --server-side -f manifests/`);
    expect(MANIFESTS_KUBE_VERSION).to.match(/^\d+\.\d+\.\d+$/);
  });

  describe('in an empty control plane', () => {
    let cluster: TestCluster;
    let kubeconfig: string;
    const dir = tempDir('manifests');

    before(async function () {
      this.timeout(300_000);
      cluster = await TestCluster.start({ name: 'e2e-manifests' });
      kubeconfig = cluster.kubeconfigPath;
    });

    after(async () => {
      await cluster?.stop();
    });

    const resourceVersions = async () => {
      const got = await mustKubectl(kubeconfig, ['get', '-f', 'manifests/', '-o', 'json']);
      const list = JSON.parse(got.stdout) as { items: KubeManifest[] };
      return Object.fromEntries(
        list.items.map((o) => [
          `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`,
          o.metadata.resourceVersion,
        ]),
      );
    };

    it('install cleanly with the README command, and a second apply changes nothing', async () => {
      const { kubectl: bin } = await kubeClients();
      const [, ...args] = readmeCommand('kubectl apply');
      expect(args).to.deep.equal(['apply', '--server-side', '-f', 'manifests/']);
      // From the repository root, as a new user would, with only --kubeconfig added.
      const first = await mustRun(bin, [...args, '--kubeconfig', kubeconfig], { cwd: repoRoot });
      const objects = parseManifests(installYaml());
      const lines = first.stdout.trim().split('\n');
      expect(lines).to.have.length(objects.length);
      for (const line of lines) expect(line).to.match(/ serverside-applied$/);
      expect(first.stderr).to.equal('');
      await mustKubectl(kubeconfig, ['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);

      const before = await resourceVersions();
      expect(Object.keys(before)).to.have.length(objects.length);
      const second = await mustRun(bin, [...args, '--kubeconfig', kubeconfig], { cwd: repoRoot });
      expect(second.stderr).to.equal('');
      expect(await resourceVersions(), 'resourceVersions after the second apply').to.deep.equal(before);
      // kubectl diff exits 0 when the cluster already matches.
      const diff = await kubectl(kubeconfig, ['diff', '--server-side', '-f', 'manifests/']);
      expect(diff.code, diff.stdout + diff.stderr).to.equal(0);
    });

    it('build the same objects through Kustomization (Argo CD, kubectl apply -k)', async () => {
      const built = await mustKubectl(kubeconfig, ['kustomize', join(repoRoot, 'manifests')]);
      const byKey = (objs: KubeManifest[]) =>
        Object.fromEntries(objs.map((o) => [`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o]));
      expect(byKey(parseManifests(built.stdout))).to.deep.equal(byKey(parseManifests(installYaml())));
      const k = await mustKubectl(kubeconfig, ['apply', '--server-side', '-k', join(repoRoot, 'manifests')]);
      for (const line of k.stdout.trim().split('\n')) expect(line).to.match(/ serverside-applied$/);
    });

    it("run the operator's Pod under the Namespace's restricted Pod Security Standard", async () => {
      const deployment = parseManifests(installYaml()).find((o) => o.kind === 'Deployment') as KubeManifest & {
        spec: { template: { spec: object } };
      };
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'secretsync-pss-check', namespace: MANIFESTS_NAMESPACE },
        spec: deployment.spec.template.spec,
      };
      const file = join(dir, 'pod.yaml');
      writeFileSync(file, stringify(pod));
      const result = await mustKubectl(kubeconfig, ['apply', '--dry-run=server', '-f', file]);
      expect(result.stdout).to.contain('created (server dry run)');
    });

    it("grant the ServiceAccount the chart's cluster-scope permissions", async () => {
      const token = await mintToken(cluster, MANIFESTS_NAMESPACE, 'secretsync');
      const config = tokenKubeconfig(cluster, token, dir);
      expect(await canI(config, 'list', 'secrets', '*')).to.equal(true);
      expect(await canI(config, 'create', 'leases.coordination.k8s.io', MANIFESTS_NAMESPACE)).to.equal(true);
      expect(await canI(config, 'create', 'clusterrolebindings.rbac.authorization.k8s.io')).to.equal(false);
      expect(await canI(config, 'delete', 'namespaces')).to.equal(false);
    });

    it("install the replication receiver from manifests/replication-receiver/ with the chart's permissions, Secrets only with credentials", async () => {
      const receiverFile = (name: string) => join(MANIFESTS_DIR, RECEIVER_DIR, name);
      // The same objects as the chart with replicationReceiver on (Helm's labels aside).
      for (const [file, credentials] of [
        ['receiver.yaml', false],
        ['receiver-with-credentials.yaml', true],
      ] as const) {
        const chart = (
          await renderChart({ values: { replicationReceiver: { enabled: true, credentials } } })
        ).filter((o) => o.metadata.name.endsWith('replication-receiver'));
        const plain = parseManifests(readFileSync(receiverFile(file), 'utf8'));
        expect(plain.map((o) => o.kind)).to.deep.equal(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding']);
        expect(plain.map((o) => (o as { rules?: unknown }).rules ?? null)).to.deep.equal(
          chart.map((o) => (o as { rules?: unknown }).rules ?? null),
        );
      }
      const sa = 'secretsync-replication-receiver';
      // Not part of `kubectl apply -f manifests/`: the operator's install made no receiver.
      const none = await kubectl(kubeconfig, ['-n', MANIFESTS_NAMESPACE, 'get', 'serviceaccount', sa]);
      expect(none.code, none.stdout).to.not.equal(0);

      await mustKubectl(kubeconfig, ['apply', '--server-side', '-f', receiverFile('receiver.yaml')]);
      const config = tokenKubeconfig(cluster, await mintToken(cluster, MANIFESTS_NAMESPACE, sa), dir);
      expect(await canI(config, 'create', 'clustersecretstores.secretsync.io')).to.equal(true);
      expect(await canI(config, 'patch', 'secretstores.secretsync.io', 'app')).to.equal(true);
      expect(await canI(config, 'delete', 'managedsecrets.secretsync.io', 'app')).to.equal(true);
      expect(await canI(config, 'get', 'secrets', 'app')).to.equal(false);
      expect(await canI(config, 'create', 'replicationtargets.secretsync.io')).to.equal(false);

      await mustKubectl(kubeconfig, ['apply', '--server-side', '-f', receiverFile('receiver-with-credentials.yaml')]);
      expect(await canI(config, 'create', 'secrets', 'app')).to.equal(true);
      expect(await canI(config, 'update', 'secrets', 'app')).to.equal(false);
    });
  });
});
