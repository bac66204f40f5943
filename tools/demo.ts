// The quick-start demo: a real control plane, our CRDs, the operator with the
// embedded local store, and the examples from examples/ turned into a Secret.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { API_VERSION, type ManagedSecret } from '../src/api/types.js';
import { main, type CliIo } from '../src/cli/main.js';
import type { ProviderWiring } from '../src/cli/commands/run.js';
import { Manager, type ManagerOptions } from '../src/controller/manager.js';
import { KubeClient, type KubeObject } from '../src/kube/client.js';
import { createLogger } from '../src/observability/logger.js';
import { Metrics } from '../src/observability/metrics.js';
import { repoRoot } from './testenv/paths.js';
import { TestCluster, waitFor } from './testenv/index.js';

const NAMESPACE = 'demo';
const say = (line: string) => console.log(line);
const yamlObjects = (file: string): KubeObject[] =>
  parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);

const started = Date.now();
say('1. starting etcd, kube-apiserver and kube-controller-manager on 127.0.0.1 ...');
const cluster = await TestCluster.start({ name: 'demo' });
// The operator's --local-store-root; the demo namespace's store is in its <namespace> directory.
const storeRoot = mkdtempSync(join(tmpdir(), 'secretsync-demo-root-'));
const storeDir = join(storeRoot, NAMESPACE);
mkdirSync(storeDir);
let manager: Manager | undefined;
try {
  say(
    `   kube-apiserver ${cluster.version} at ${cluster.server}, up in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  const client = new KubeClient(cluster.kubeConfig());

  say('2. installing crds/ ...');
  for (const file of readdirSync(join(repoRoot, 'crds')).filter((f) => f.endsWith('.yaml'))) {
    for (const crd of yamlObjects(join(repoRoot, 'crds', file))) {
      await client.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', { body: crd });
      say(`   ${crd.metadata.name}`);
    }
  }
  await waitFor(
    'the CRDs to be served',
    async () => (await client.get(`/apis/${API_VERSION}/managedsecrets`).then(() => true)) || undefined,
    30_000,
  );
  for (const ns of [NAMESPACE, 'secretsync-system']) {
    await client.request('POST', '/api/v1/namespaces', {
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
    });
  }

  say('3. applying examples/local-store.yaml (the master key Secret and the SecretStore) ...');
  for (const obj of yamlObjects(join(repoRoot, 'examples', 'local-store.yaml'))) {
    if (obj.kind === 'SecretStore') {
      // The example points at the in-cluster volume; the demo runs the operator here.
      (obj.spec as { provider: { local: { path: string } } }).provider.local.path = storeDir;
      await client.request('POST', `/apis/${API_VERSION}/namespaces/${NAMESPACE}/secretstores`, { body: obj });
    } else {
      await client.request('POST', `/api/v1/namespaces/${NAMESPACE}/secrets`, { body: obj });
    }
  }

  say('4. putting values into the local store with `secretsync store put` (values from stdin, never argv) ...');
  const entries: [string, Record<string, string>][] = [
    ['app/db', { username: 'app', password: 'correct-horse-battery-staple' }],
    ['app/flags', { FEATURE_X: 'on' }],
    ['app/shared/smtp-password', { value: 'mail-secret' }],
  ];
  for (const [name, props] of entries) {
    const lines: string[] = [];
    const io: CliIo = {
      out: (l) => lines.push(l),
      err: (l) => lines.push(l),
      readStdin: async () => Buffer.from(JSON.stringify(props)),
    };
    const args = [
      'store',
      'put',
      name,
      '--dir',
      storeDir,
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--master-key-secret',
      `${NAMESPACE}/secretsync-master-key`,
    ];
    const code = await main(['node', 'secretsync', ...args], io);
    if (code !== 0) throw new Error(`secretsync store put failed: ${lines.join(' ')}`);
    say(`   $ secretsync ${args.slice(0, 3).join(' ')} ... < value.json   → ${lines.join(' ')}`);
  }

  say('5. running the operator (secretsync run) ...');
  // As `secretsync run --local-store-root <storeRoot>` would: the demo's SecretStore is namespaced.
  const options: ManagerOptions & ProviderWiring = {
    storePolicy: { allowedEndpoints: [], localStoreRoot: storeRoot },
    providerTimeouts: { connectMs: 3000, requestMs: 10_000 },
    kubeConfig: cluster.kubeConfig(),
    logger: createLogger('warn'),
    metrics: new Metrics(),
    namespaces: [],
    operatorNamespace: 'secretsync-system',
    concurrency: 4,
    leaderElection: true,
    leaseName: 'secretsync-leader',
    identity: 'demo',
    metricsAddress: '127.0.0.1:0',
    hmacSecretName: 'secretsync-hmac-key',
    qps: 200,
    burst: 400,
  };
  manager = new Manager(options);
  await manager.start();
  say(`   /healthz, /readyz and /metrics on 127.0.0.1:${manager.port}`);

  say('6. applying examples/managed-secret.yaml ...');
  for (const obj of yamlObjects(join(repoRoot, 'examples', 'managed-secret.yaml'))) {
    await client.request('POST', `/apis/${API_VERSION}/namespaces/${NAMESPACE}/managedsecrets`, { body: obj });
  }
  const synced = Date.now();
  const ms = await waitFor(
    'ManagedSecret demo/app-db to be Ready',
    async () => {
      const m = await client.get<ManagedSecret>(`/apis/${API_VERSION}/namespaces/${NAMESPACE}/managedsecrets/app-db`);
      return m.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? m : undefined;
    },
    30_000,
    100,
  );
  const secret = await client.get<{ type: string; data: Record<string, string>; metadata: KubeObject['metadata'] }>(
    `/api/v1/namespaces/${NAMESPACE}/secrets/app-db`,
  );
  say(`7. Secret ${NAMESPACE}/app-db (type ${secret.type}) written in ${Date.now() - synced} ms; values decoded:`);
  for (const [k, v] of Object.entries(secret.data).sort()) say(`   ${k}: ${Buffer.from(v, 'base64').toString('utf8')}`);
  say(
    `   owner: ManagedSecret ${secret.metadata.ownerReferences?.[0]?.name}, labels: ${JSON.stringify(secret.metadata.labels)}`,
  );
  say('8. ManagedSecret demo/app-db status:');
  for (const line of JSON.stringify(ms.status, null, 2).split('\n')) say(`   ${line}`);
} finally {
  await manager?.stop();
  await cluster.stop();
  rmSync(storeRoot, { recursive: true, force: true });
  say('stopped the operator and the control plane, and removed every temporary file');
}
