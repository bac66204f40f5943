// manifests/: generated from the chart, fresh, and installable into an empty
// control plane with the README's kubectl command, twice, the second time
// changing nothing. Argo CD and `kubectl apply -k` build the same objects
// through manifests/Kustomization.
import { expect } from 'chai';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { buildCrds } from '../../src/api/crds.js';
import { TestCluster } from '../../tools/testenv/index.js';
import { repoRoot } from '../../tools/testenv/paths.js';
import {
  MANIFESTS_DIR,
  MANIFESTS_KUBE_VERSION,
  MANIFESTS_NAMESPACE,
  renderChartObjects,
  renderManifests,
} from '../../tools/generate-manifests.js';
import {
  canI,
  kubeClients,
  kubectl,
  mintToken,
  mustKubectl,
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
    expect(readdirSync(MANIFESTS_DIR).sort()).to.deep.equal(Object.keys(expected).sort());
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
  });
});
