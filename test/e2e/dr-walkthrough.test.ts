// The README's disaster-recovery walk-through ("8. Disaster recovery:
// replication"), run as a user would run it: its blocks marked
// `<!-- dr-walkthrough -->` go to bash as written, with kubectl and Helm on the
// PATH and a kubeconfig holding the contexts `primary` and `dr` of two real
// control planes. A wrong command (a flag, a name, the kubeconfig it builds)
// fails a block or leaves the ReplicationTarget short of what the README
// promises, and this test with it.
import { expect } from 'chai';
import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { API_VERSION } from '../../src/api/types.js';
import { MotoServer, TestCluster } from '../../tools/testenv/index.js';
import { repoRoot } from '../../tools/testenv/paths.js';
import { OPERATOR_NAMESPACE, spawnOperatorProcess, type OperatorProcess } from '../integration/operator.js';
import { kubeConfigFromString } from '../../src/kube/config.js';
import {
  canI,
  kubeClients,
  kubectl,
  mustKubectl,
  readmeCommand,
  run,
  tempDir,
  type RunResult,
} from './helpers.js';

const SECTION = '### 8. Disaster recovery: replication';

/** The bash blocks of the README's DR section marked `<!-- marker -->`, in order. */
export function drWalkthroughBlocks(
  marker = 'dr-walkthrough',
  readme = readFileSync(join(repoRoot, 'README.md'), 'utf8'),
): string[] {
  const start = readme.indexOf(`\n${SECTION}\n`);
  if (start < 0) throw new Error(`README.md has no "${SECTION}" section`);
  const end = readme.indexOf('\n### ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  // Prettier puts a blank line after an HTML comment: one or more newlines.
  const fence = new RegExp(`<!-- ${marker} -->\\n+\`\`\`sh\\n([\\s\\S]*?)\\n\`\`\`\\n`, 'g');
  return [...section.matchAll(fence)].map((m) => m[1] as string);
}

/** The output the README shows right after the walk-through's last block (a ```text block). */
function readmeShownOutput(): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const last = drWalkthroughBlocks('dr-walkthrough', readme).at(-1) as string;
  const after = readme.slice(readme.indexOf(last) + last.length);
  const shown = /```text\n([\s\S]*?)\n```/.exec(after);
  if (!shown) throw new Error('README.md shows no output after the last dr-walkthrough block');
  return (shown[1] as string).split('\n');
}

interface KubeconfigDoc {
  clusters: { cluster: object }[];
  users: { user: object }[];
}

/** One kubeconfig with a context per cluster, named as the README's commands name them. */
function contextsKubeconfig(clusters: Record<string, TestCluster>, file: string): void {
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [] as object[],
    users: [] as object[],
    contexts: [] as object[],
    'current-context': Object.keys(clusters)[0],
  };
  for (const [name, cluster] of Object.entries(clusters)) {
    const admin = parse(readFileSync(cluster.kubeconfigPath, 'utf8')) as KubeconfigDoc;
    config.clusters.push({ name, cluster: admin.clusters[0]?.cluster });
    config.users.push({ name: `${name}-admin`, user: admin.users[0]?.user });
    config.contexts.push({ name, context: { cluster: name, user: `${name}-admin` } });
  }
  writeFileSync(file, stringify(config), { mode: 0o600 });
}

describe("the README's disaster-recovery walk-through", function () {
  this.timeout(300_000);
  let primary: TestCluster;
  let dr: TestCluster;
  let moto: MotoServer;
  let operator: OperatorProcess | undefined;
  const work = tempDir('dr-walkthrough');
  const kubeconfig = join(work, 'kubeconfig');
  const outputs: RunResult[] = [];
  let env: NodeJS.ProcessEnv;

  /**
   * README blocks in one bash, as a user pastes them into one shell (later blocks use variables of
   * earlier ones), from the user's working directory; fails with the output unless it exits 0.
   */
  async function runBlocks(blocks: string[], first = 1): Promise<RunResult> {
    const script = blocks.map((b, i) => `echo '--- README block ${first + i}' >&2\n${b}`).join('\n');
    const result = await run('bash', ['-e', '-o', 'pipefail', '-c', script], { cwd: work, env, timeoutMs: 180_000 });
    outputs.push(result);
    if (result.code !== 0)
      throw new Error(
        `README dr-walkthrough blocks exited with ${result.code}:\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
      );
    return result;
  }

  before(async function () {
    this.timeout(300_000);
    [primary, dr, moto] = await Promise.all([
      TestCluster.start({ name: 'e2e-dr-primary' }),
      TestCluster.start({ name: 'e2e-dr' }),
      MotoServer.start({ region: 'eu-west-1' }),
    ]);
    contextsKubeconfig({ primary, dr }, kubeconfig);
    // The user's shell: kubectl and helm on the PATH, the repository's chart and manifests at hand.
    const { kubectl: kubectlBin, helm } = await kubeClients();
    const bin = join(work, 'bin');
    mkdirSync(bin);
    symlinkSync(kubectlBin, join(bin, 'kubectl'));
    symlinkSync(helm, join(bin, 'helm'));
    for (const dir of ['charts', 'manifests']) symlinkSync(join(repoRoot, dir), join(work, dir));
    env = {
      PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
      HOME: work,
      KUBECONFIG: kubeconfig,
      HELM_CACHE_HOME: join(work, '.helm-cache'),
      HELM_CONFIG_HOME: join(work, '.helm-config'),
      HELM_DATA_HOME: join(work, '.helm-data'),
    };

    // The primary as the user has it before this section: installed with the README's Helm command,
    // and a namespace whose stores (one ClusterSecretStore labelled for DR, one not) and ManagedSecret
    // use static AWS keys.
    const [helmCommand, ...helmArgs] = readmeCommand('helm install');
    expect(helmCommand).to.equal('helm');
    const installed = await run(helm, [...helmArgs, '--kube-context', 'primary'], { cwd: work, env });
    expect(installed.code, installed.stderr).to.equal(0);
    await mustKubectl(primary.kubeconfigPath, ['create', 'namespace', 'app']);
    const aws = (block: string, namespace?: string) => ({
      [block]: {
        region: 'eu-west-1',
        endpoint: moto.endpoint,
        auth: {
          secretRef: {
            accessKeyIdSecretRef: { name: 'aws-creds', key: 'access-key-id', ...(namespace ? { namespace } : {}) },
            secretAccessKeySecretRef: {
              name: 'aws-creds',
              key: 'secret-access-key',
              ...(namespace ? { namespace } : {}),
            },
          },
        },
      },
    });
    const objects = [
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'aws-creds', namespace: 'app' },
        stringData: { 'access-key-id': 'testing', 'secret-access-key': 'testing' },
      },
      {
        apiVersion: API_VERSION,
        kind: 'ClusterSecretStore',
        metadata: { name: 'aws-shared', labels: { dr: 'replicate' } },
        spec: { provider: aws('awsSecretsManager', 'app') },
      },
      {
        apiVersion: API_VERSION,
        kind: 'ClusterSecretStore',
        metadata: { name: 'aws-primary-only' },
        spec: { provider: aws('awsSecretsManager', 'app') },
      },
      {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name: 'params', namespace: 'app' },
        spec: { provider: aws('awsParameterStore') },
      },
      {
        apiVersion: API_VERSION,
        kind: 'ManagedSecret',
        metadata: { name: 'db', namespace: 'app' },
        spec: {
          storeRef: { kind: 'ClusterSecretStore', name: 'aws-shared' },
          data: [{ secretKey: 'password', remoteRef: { key: 'app/db' } }],
        },
      },
    ];
    const file = join(work, 'primary-objects.yaml');
    writeFileSync(file, objects.map((o) => stringify(o)).join('---\n'));
    await mustKubectl(primary.kubeconfigPath, ['apply', '-f', file]);
  });

  after(async function () {
    this.timeout(60_000);
    if (operator && operator.child.exitCode === null) {
      const exited = new Promise((resolve) => operator?.child.once('exit', resolve));
      operator.child.kill('SIGTERM');
      await exited;
    }
    await Promise.all([primary?.stop(), dr?.stop(), moto?.stop()]);
  });

  it('marks five blocks (the DR cluster, a token, its kubeconfig, the primary, the check) and an expiring-token variant', () => {
    const blocks = drWalkthroughBlocks();
    expect(blocks).to.have.length(5);
    expect(blocks[0]).to.match(/^helm install .*--kube-context dr/);
    expect(blocks[1]).to.contain('type: kubernetes.io/service-account-token');
    expect(blocks[2]).to.contain('cat > dr.kubeconfig');
    expect(blocks[3]).to.contain('kind: ReplicationTarget');
    expect(blocks[4]).to.contain('kubectl --context primary wait rtarget/');
    const variant = drWalkthroughBlocks('dr-walkthrough-expiring-token');
    expect(variant).to.have.length(1);
    expect(variant[0]).to.contain('create token secretsync-replication-receiver');
  });

  it('replicates the selected stores and ManagedSecrets into the DR cluster, set to the secondary region', async () => {
    const blocks = drWalkthroughBlocks();
    const check = blocks.pop() as string;
    await runBlocks(blocks);

    // The kubeconfig the README built went into the primary's Secret and was removed from disk.
    const stored = await mustKubectl(primary.kubeconfigPath, [
      '-n',
      OPERATOR_NAMESPACE,
      'get',
      'secret',
      'dr-cluster',
      '-o',
      'jsonpath={.data.kubeconfig}',
    ]);
    const drKubeconfig = parse(Buffer.from(stored.stdout, 'base64').toString('utf8')) as {
      users: { user: Record<string, unknown> }[];
    };
    expect(Object.keys(drKubeconfig.users[0]?.user ?? {})).to.deep.equal(['token']);
    const leftOnDisk = await run('ls', [work]);
    expect(leftOnDisk.stdout).to.not.contain('dr.kubeconfig');

    // The primary's Deployment as the README's Helm command left it: the operator runs with its args
    // (no kubelet here: the test runs the process), among them the cluster name.
    const deployment = JSON.parse(
      (await mustKubectl(primary.kubeconfigPath, ['-n', OPERATOR_NAMESPACE, 'get', 'deployment', 'secretsync', '-o', 'json']))
        .stdout,
    ) as { spec: { template: { spec: { containers: { name: string; args?: string[] }[] } } } };
    const args = deployment.spec.template.spec.containers.find((c) => c.name === 'secretsync')?.args ?? [];
    const clusterNameArg = args.find((a) => a.startsWith('--cluster-name='));
    expect(clusterNameArg).to.equal('--cluster-name=primary-east');
    operator = spawnOperatorProcess(
      primary,
      ['app'],
      [clusterNameArg as string, '--allowed-endpoints', moto.endpoint],
      { ...moto.env() },
    );

    const result = await runBlocks([check], blocks.length + 1);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).to.equal('replicationtarget.secretsync.io/dr-us-west-2 condition met');
    expect(result.stdout, result.stdout).to.match(/\ndr-us-west-2\s+True\s+Replicated\s+3\s/);
    const copies = lines.filter((l) => /^(ClusterSecretStore|SecretStore|ManagedSecret)\s/.test(l));
    // The output the README shows is the output the commands print (times aside).
    const shown = readmeShownOutput();
    const words = (l: string) => l.trim().split(/\s+/);
    expect(shown.map(words).filter((w) => w[0] !== 'dr-us-west-2')).to.deep.equal(
      lines.slice(1).map(words).filter((w) => w[0] !== 'dr-us-west-2'),
    );
    expect(words(shown.find((l) => l.startsWith('dr-us-west-2')) ?? '').slice(0, 4)).to.deep.equal(
      words(lines.find((l) => l.startsWith('dr-us-west-2')) ?? '').slice(0, 4),
    );
    expect(copies.map((l) => l.split(/\s+/).slice(0, 3).join(' ')).sort()).to.deep.equal([
      'ClusterSecretStore <none> aws-shared',
      'ManagedSecret app db',
      'SecretStore app params',
    ]);
    for (const l of copies.filter((c) => !c.startsWith('ManagedSecret'))) expect(l).to.match(/\sus-west-2$/);

    // What the README promises of the copies: the secondary region, the source cluster's name, and
    // the ClusterSecretStore without the label left behind.
    const css = JSON.parse(
      (await mustKubectl(dr.kubeconfigPath, ['get', 'clustersecretstore', 'aws-shared', '-o', 'json'])).stdout,
    ) as { metadata: { labels: Record<string, string> }; spec: { provider: { awsSecretsManager: { region: string } } } };
    expect(css.spec.provider.awsSecretsManager.region).to.equal('us-west-2');
    expect(css.metadata.labels['secretsync.io/source-cluster']).to.equal('primary-east');
    expect(css.metadata.labels['secretsync.io/replicated-by']).to.equal('dr-us-west-2');
    const other = await kubectl(dr.kubeconfigPath, ['get', 'clustersecretstore', 'aws-primary-only']);
    expect(other.code, other.stdout).to.not.equal(0);

    // The receiver's token never showed in what the commands printed.
    const token = Buffer.from(
      (
        await mustKubectl(dr.kubeconfigPath, [
          '-n',
          OPERATOR_NAMESPACE,
          'get',
          'secret',
          'secretsync-replication-receiver-token',
          '-o',
          'jsonpath={.data.token}',
        ])
      ).stdout,
      'base64',
    ).toString('utf8');
    expect(token.length).to.be.greaterThan(100);
    for (const o of outputs) expect(o.stdout + o.stderr).to.not.contain(token);
  });
  it('builds a working kubeconfig with the expiring-token variant too', async () => {
    const [variant] = drWalkthroughBlocks('dr-walkthrough-expiring-token');
    const writeKubeconfig = drWalkthroughBlocks().find((b) => b.includes('cat > dr.kubeconfig'));
    // Real clusters' kube-controller-manager publishes kube-root-ca.crt in every namespace; the test
    // control plane runs only four controllers, so the test publishes it as that controller would.
    const admin = parse(readFileSync(dr.kubeconfigPath, 'utf8')) as KubeconfigDoc;
    const caData = (admin.clusters[0]?.cluster as { 'certificate-authority-data': string })['certificate-authority-data'];
    const ca = Buffer.from(caData, 'base64').toString('utf8');
    await mustKubectl(dr.kubeconfigPath, [
      '-n',
      OPERATOR_NAMESPACE,
      'create',
      'configmap',
      'kube-root-ca.crt',
      `--from-literal=ca.crt=${ca}`,
    ]);
    await runBlocks([variant as string, writeKubeconfig as string]);
    const file = join(work, 'dr.kubeconfig');
    expect((statSync(file).mode & 0o777).toString(8)).to.equal('600');
    const text = readFileSync(file, 'utf8');
    // What replication accepts, and what the receiver may do with it through the embedded CA.
    await kubeConfigFromString(text, { embeddedOnly: true });
    expect(await canI(file, 'create', 'clustersecretstores.secretsync.io')).to.equal(true);
    expect(await canI(file, 'get', 'secrets', 'app')).to.equal(false);
    await mustKubectl(file, ['get', 'clustersecretstores']);
    // A TokenRequest token for the asked year, not the long-lived Secret's token.
    const token = (parse(text) as { users: { user: { token: string } }[] }).users[0]?.user.token ?? '';
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      exp?: number;
      iat?: number;
    };
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).to.equal(8760 * 3600);
    for (const o of outputs) expect(o.stdout + o.stderr).to.not.contain(token);
  });
});
