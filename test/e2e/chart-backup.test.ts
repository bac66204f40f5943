// The chart's backup CronJob (backup.enabled) on a real control plane, and the
// restore drill of docs/install.md: a Job made from the CronJob as the drill
// says, its container run as the kubelet would (args with $(VAR) expanded from
// the Job's labels, the backup ServiceAccount's token and nothing else, the
// mounts mapped to local directories), then `secretsync restore` of the file
// after the objects are deleted. There is no kubelet, so the CLI runs as a
// local process from the source tree.
//
// The `it`s build on each other, in order.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { API_VERSION } from '../../src/api/types.js';
import { KubeClient } from '../../src/kube/client.js';
import { TestCluster } from '../../tools/testenv/index.js';
import { repoRoot } from '../../tools/testenv/paths.js';
import { createManagedSecret, createSecretStore, ensureNamespace } from '../integration/operator.js';
import {
  CHART_DIR,
  canI,
  kubeClients,
  mintToken,
  mustKubectl,
  mustRun,
  run,
  tempDir,
  tokenKubeconfig,
} from './helpers.js';

const RELEASE_NAMESPACE = 'secretsync-system';
const NS = 'team-a';
const BACKUP_SA = 'secretsync-backup';

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}
interface JobObject {
  metadata: { name: string };
  spec: {
    template: {
      metadata: { labels: Record<string, string> };
      spec: {
        serviceAccountName: string;
        containers: {
          command: string[];
          args: string[];
          env: EnvVar[];
          volumeMounts: { name: string; mountPath: string }[];
        }[];
      };
    };
  };
}

/** Runs the CLI from the source tree (the image's `node bin/secretsync.js`). */
const cli = (args: string[], env: NodeJS.ProcessEnv) =>
  run(process.execPath, ['--import', 'tsx', join(repoRoot, 'src', 'cli', 'index.ts'), ...args], {
    env,
    timeoutMs: 60_000,
  });

describe('the backup CronJob (backup.enabled) and the restore drill', function () {
  this.timeout(180_000);
  let cluster: TestCluster;
  let admin: KubeClient;
  const work = tempDir('backup-drill');
  const keyFile = join(work, 'backup.key');
  const backupsDir = join(work, 'backups');
  let backupFile: string;

  before(async function () {
    this.timeout(300_000);
    cluster = await TestCluster.start({ name: 'e2e-chart-backup' });
    admin = new KubeClient(cluster.kubeConfig());
    await ensureNamespace(admin, NS);
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
  });

  after(async function () {
    this.timeout(60_000);
    admin?.close();
    await cluster?.stop();
  });

  it('installs with the key Secret and backup.enabled as docs/install.md shows', async () => {
    const { helm } = await kubeClients();
    await mustKubectl(cluster.kubeconfigPath, ['create', 'namespace', RELEASE_NAMESPACE]);
    await mustKubectl(cluster.kubeconfigPath, [
      '-n',
      RELEASE_NAMESPACE,
      'create',
      'secret',
      'generic',
      'secretsync-backup-key',
      `--from-file=key=${keyFile}`,
    ]);
    const result = await mustRun(helm, [
      'install',
      'secretsync',
      CHART_DIR,
      '-n',
      RELEASE_NAMESPACE,
      '--set',
      'backup.enabled=true',
      '--set',
      'backup.keySecret.name=secretsync-backup-key',
      '--kubeconfig',
      cluster.kubeconfigPath,
    ]);
    expect(result.stdout).to.match(/STATUS: deployed/);
    await mustKubectl(cluster.kubeconfigPath, [
      'wait',
      '--for=condition=Established',
      '--timeout=60s',
      'crd',
      'managedsecrets.secretsync.io',
      'secretstores.secretsync.io',
    ]);
    await createSecretStore(admin, NS, 'local', '/var/lib/secretsync/store/team-a/app');
    await createManagedSecret(admin, NS, {
      metadata: { name: 'app-db' },
      spec: { storeRef: { name: 'local' }, data: [{ secretKey: 'password', remoteRef: { key: 'app/db' } }] },
    });
  });

  it('gives the backup ServiceAccount list on the four kinds and nothing else', async () => {
    const token = await mintToken(cluster, RELEASE_NAMESPACE, BACKUP_SA);
    const config = tokenKubeconfig(cluster, token, tempDir('backup-token'));
    for (const kind of ['secretstores', 'clustersecretstores', 'managedsecrets', 'replicationtargets'])
      expect(await canI(config, 'list', `${kind}.secretsync.io`, '*'), kind).to.equal(true);
    for (const [verb, resource] of [
      ['create', 'managedsecrets.secretsync.io'],
      ['update', 'secretstores.secretsync.io'],
      ['delete', 'managedsecrets.secretsync.io'],
      ['list', 'secrets'],
      ['get', 'secrets'],
      ['create', 'pods'],
    ] as const)
      expect(await canI(config, verb, resource, NS), `${verb} ${resource}`).to.equal(false);
  });

  it('writes an encrypted backup when a Job made from the CronJob runs (drill step 1)', async () => {
    await mustKubectl(cluster.kubeconfigPath, [
      '-n',
      RELEASE_NAMESPACE,
      'create',
      'job',
      '--from=cronjob/secretsync-backup',
      'drill-1',
    ]);
    const job = await admin.get<JobObject>(`/apis/batch/v1/namespaces/${RELEASE_NAMESPACE}/jobs/drill-1`);
    const pod = job.spec.template;
    expect(pod.spec.serviceAccountName).to.equal(BACKUP_SA);
    const container = pod.spec.containers[0];
    if (!container) throw new Error('the Job has no container');
    expect(container.command).to.deep.equal(['/nodejs/bin/node', 'bin/secretsync.js', 'backup']);
    // The kubelet's part: env from the downward API, then $(VAR) in args.
    const env: Record<string, string> = {};
    for (const v of container.env) {
      const path = v.valueFrom?.fieldRef?.fieldPath;
      const label = path ? /^metadata\.labels\['(.+)'\]$/.exec(path)?.[1] : undefined;
      if (v.value !== undefined) env[v.name] = v.value;
      else if (label) env[v.name] = pod.metadata.labels[label] ?? '';
      else throw new Error(`env ${v.name}: no stand-in for ${path ?? 'its valueFrom'}`);
    }
    expect(env.JOB_NAME).to.equal('drill-1');
    const mounts = Object.fromEntries(container.volumeMounts.map((m) => [m.mountPath, m.name]));
    expect(mounts).to.include({ '/backups': 'backups', '/etc/secretsync-backup': 'key' });
    const local: Record<string, string> = { '/backups': backupsDir, '/etc/secretsync-backup': work };
    const args = container.args.map((a) =>
      Object.entries(local).reduce(
        (arg, [mountPath, dir]) => arg.replace(`=${mountPath}/`, `=${dir}/`),
        a.replace(/\$\((\w+)\)/g, (_m, name: string) => env[name] ?? ''),
      ),
    );
    // The key Secret's file under its key's name, and the claim: local directories.
    copyFileSync(keyFile, join(work, 'key'));
    mkdirSync(backupsDir);
    const token = await mintToken(cluster, RELEASE_NAMESPACE, BACKUP_SA);
    const config = tokenKubeconfig(cluster, token, tempDir('backup-run'));
    const result = await cli(['backup', ...args], {
      PATH: process.env.PATH,
      HOME: tempDir('backup-home'),
      KUBECONFIG: config,
      ...env,
    });
    expect(result.code, result.stderr + result.stdout).to.equal(0);
    expect(readdirSync(backupsDir)).to.deep.equal(['drill-1.backup']);
    backupFile = join(backupsDir, 'drill-1.backup');
    expect(result.stdout + result.stderr).to.not.contain(keyFile);
  });

  it('restores the deleted objects from it (drill steps 3 and 4), and a second run changes nothing', async () => {
    expect(existsSync(backupFile)).to.equal(true);
    await admin.request('DELETE', `/apis/${API_VERSION}/namespaces/${NS}/managedsecrets/app-db`);
    await admin.request('DELETE', `/apis/${API_VERSION}/namespaces/${NS}/secretstores/local`);
    const env = { PATH: process.env.PATH, HOME: tempDir('restore-home'), KUBECONFIG: cluster.kubeconfigPath };
    const dry = await cli(
      ['restore', '--in', backupFile, '--key-file', keyFile, '--dry-run', '--create-namespaces'],
      env,
    );
    expect(dry.code, dry.stderr).to.equal(0);
    expect(dry.stdout).to.match(/ManagedSecret team-a\/app-db/);
    const listed = await mustKubectl(cluster.kubeconfigPath, ['get', 'secretsync', '-n', NS, '-o', 'name']);
    expect(listed.stdout.trim(), 'a dry run applies nothing').to.equal('');
    const applied = await cli(['restore', '--in', backupFile, '--key-file', keyFile, '--create-namespaces'], env);
    expect(applied.code, applied.stderr).to.equal(0);
    const back = await mustKubectl(cluster.kubeconfigPath, ['get', 'secretsync', '-n', NS, '-o', 'name']);
    expect(back.stdout).to.contain('managedsecret.secretsync.io/app-db');
    expect(back.stdout).to.contain('secretstore.secretsync.io/local');
    const again = await cli(['restore', '--in', backupFile, '--key-file', keyFile, '--create-namespaces'], env);
    expect(again.code, again.stderr).to.equal(0);
    expect(again.stdout).to.match(/0 created, 0 changed/);
  });
});
