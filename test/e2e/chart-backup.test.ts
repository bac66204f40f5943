// The chart's backup CronJob (backup.enabled) on a real control plane, and the
// restore drill of docs/install.md: a Job made from the CronJob as the drill
// says, its container run as the kubelet would (args with $(VAR) expanded from
// the Job's labels, the backup ServiceAccount's token and nothing else, the
// mounts mapped to local directories), then `secretsync restore` of the file
// after the objects are deleted; then the same with backup.s3.bucket, the Job
// uploading to moto's S3 and the restore reading the object. There is no
// kubelet, so the CLI runs as a local process from the source tree.
//
// The `it`s build on each other, in order.
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { API_VERSION } from '../../src/api/types.js';
import { KubeClient } from '../../src/kube/client.js';
import { MotoServer, TestCluster } from '../../tools/testenv/index.js';
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

// The SDK's notice about its future Node floor is noise here (as in test/integration/setup.ts).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

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
  let moto: MotoServer;
  let admin: KubeClient;
  const work = tempDir('backup-drill');
  const keyFile = join(work, 'backup.key');
  const backupsDir = join(work, 'backups');
  let backupFile: string;

  before(async function () {
    this.timeout(300_000);
    [cluster, moto] = await Promise.all([TestCluster.start({ name: 'e2e-chart-backup' }), MotoServer.start()]);
    admin = new KubeClient(cluster.kubeConfig());
    await ensureNamespace(admin, NS);
    writeFileSync(keyFile, randomBytes(32), { mode: 0o600 });
  });

  after(async function () {
    this.timeout(60_000);
    admin?.close();
    await Promise.all([cluster?.stop(), moto?.stop()]);
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

  /**
   * Makes Job `jobName` from the CronJob and runs its container as the kubelet would: env from the
   * downward API, $(VAR) in args, the mounts in `local` mapped to local directories, the backup
   * ServiceAccount's token. `extraEnv` stands in for what the cluster adds (IRSA's credentials).
   */
  async function runJobFromCronJob(
    jobName: string,
    local: Record<string, string>,
    extraEnv: Record<string, string> = {},
  ): Promise<{
    container: JobObject['spec']['template']['spec']['containers'][number];
    args: string[];
    output: string;
  }> {
    await mustKubectl(cluster.kubeconfigPath, [
      '-n',
      RELEASE_NAMESPACE,
      'create',
      'job',
      '--from=cronjob/secretsync-backup',
      jobName,
    ]);
    const job = await admin.get<JobObject>(`/apis/batch/v1/namespaces/${RELEASE_NAMESPACE}/jobs/${jobName}`);
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
    expect(env.JOB_NAME).to.equal(jobName);
    const args = container.args.map((a) =>
      Object.entries(local).reduce(
        (arg, [mountPath, dir]) => arg.replace(`=${mountPath}/`, `=${dir}/`),
        a.replace(/\$\((\w+)\)/g, (_m, name: string) => env[name] ?? ''),
      ),
    );
    const token = await mintToken(cluster, RELEASE_NAMESPACE, BACKUP_SA);
    const config = tokenKubeconfig(cluster, token, tempDir('backup-run'));
    const result = await cli(['backup', ...args], {
      PATH: process.env.PATH,
      HOME: tempDir('backup-home'),
      KUBECONFIG: config,
      ...extraEnv,
      ...env,
    });
    expect(result.code, result.stderr + result.stdout).to.equal(0);
    return { container, args, output: result.stdout + result.stderr };
  }

  it('writes an encrypted backup when a Job made from the CronJob runs (drill step 1)', async () => {
    // The key Secret's file under its key's name, and the claim: local directories.
    copyFileSync(keyFile, join(work, 'key'));
    mkdirSync(backupsDir);
    const { container, output } = await runJobFromCronJob('drill-1', {
      '/backups': backupsDir,
      '/etc/secretsync-backup': work,
    });
    const mounts = Object.fromEntries(container.volumeMounts.map((m) => [m.mountPath, m.name]));
    expect(mounts).to.include({ '/backups': 'backups', '/etc/secretsync-backup': 'key' });
    expect(readdirSync(backupsDir)).to.deep.equal(['drill-1.backup']);
    backupFile = join(backupsDir, 'drill-1.backup');
    expect(output).to.not.contain(keyFile);
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

  it('with backup.s3.bucket, the Job uploads to the bucket and the drill restores from s3:// (moto)', async () => {
    const { helm } = await kubeClients();
    const bucket = 'secretsync-drill';
    const creds = { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' };
    const s3 = new S3Client({ ...moto.clientConfig(), forcePathStyle: true });
    try {
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    } finally {
      s3.destroy();
    }
    await mustRun(helm, [
      'upgrade',
      'secretsync',
      CHART_DIR,
      '-n',
      RELEASE_NAMESPACE,
      '--reuse-values',
      '--set',
      `backup.s3.bucket=${bucket}`,
      '--set',
      'backup.s3.prefix=secretsync/drill/',
      '--set',
      `backup.s3.region=${moto.region}`,
      '--set',
      `backup.s3.endpoint=${moto.endpoint}`,
      '--kubeconfig',
      cluster.kubeconfigPath,
    ]);
    // The key file as before; no claim: the Job has no /backups mount, and its args name the object.
    const { container, args } = await runJobFromCronJob('drill-s3', { '/etc/secretsync-backup': work }, creds);
    expect(container.volumeMounts.map((m) => m.mountPath)).to.not.include('/backups');
    const url = `s3://${bucket}/secretsync/drill/drill-s3.backup`;
    expect(args).to.include(`--out=${url}`);

    // Drill steps 3 and 4 straight from the bucket.
    await admin.request('DELETE', `/apis/${API_VERSION}/namespaces/${NS}/managedsecrets/app-db`);
    const env = {
      PATH: process.env.PATH,
      HOME: tempDir('restore-s3-home'),
      KUBECONFIG: cluster.kubeconfigPath,
      ...creds,
    };
    const s3Flags = ['--s3-region', moto.region, '--s3-endpoint', moto.endpoint];
    const applied = await cli(['restore', '--in', url, '--key-file', keyFile, '--create-namespaces', ...s3Flags], env);
    expect(applied.code, applied.stderr).to.equal(0);
    expect(applied.stdout).to.match(/created\s+ManagedSecret team-a\/app-db/);
    const back = await mustKubectl(cluster.kubeconfigPath, ['get', 'secretsync', '-n', NS, '-o', 'name']);
    expect(back.stdout).to.contain('managedsecret.secretsync.io/app-db');
    const missing = await cli(
      ['restore', '--in', `s3://${bucket}/secretsync/drill/drill-0.backup`, '--key-file', keyFile, ...s3Flags],
      env,
    );
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.contain(`s3://${bucket}/secretsync/drill/drill-0.backup does not exist`);
  });
});
