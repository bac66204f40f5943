// `npm run testenv -- start|stop|status --dir DIR`: a local control plane and
// AWS endpoint for a person to use with kubectl and the AWS CLI.
import { Command } from 'commander';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MotoServer, TestCluster, isPidAlive, sleep, type ClusterRecord } from './testenv/index.js';

interface EnvRecord {
  cluster: ClusterRecord;
  moto: { endpoint: string; pid: number };
  detached: boolean;
}

const files = (dir: string) => ({
  record: join(dir, 'testenv.json'),
  kubeconfig: join(dir, 'kubeconfig'),
  awsEnv: join(dir, 'aws.env'),
  clusterDir: join(dir, 'cluster'),
  motoDir: join(dir, 'moto'),
});

async function start(dir: string, detach: boolean): Promise<void> {
  const f = files(dir);
  if (existsSync(f.record)) {
    const previous = JSON.parse(readFileSync(f.record, 'utf8')) as EnvRecord;
    if ([...previous.cluster.pids, previous.moto.pid].some(isPidAlive)) {
      throw new Error(
        `a test environment is already running in ${dir}; run "npm run testenv -- stop --dir ${dir}" first`,
      );
    }
  }
  mkdirSync(dir, { recursive: true });
  const [cluster, moto] = await Promise.all([
    TestCluster.start({ name: 'secretsync', dir: f.clusterDir, detached: detach }),
    MotoServer.start({ dir: f.motoDir, detached: detach }),
  ]);
  writeFileSync(f.kubeconfig, readFileSync(cluster.kubeconfigPath), { mode: 0o600 });
  const awsEnv = moto.env();
  writeFileSync(
    f.awsEnv,
    Object.entries(awsEnv)
      .map(([k, v]) => `export ${k}=${v}`)
      .join('\n') + '\n',
  );
  const record: EnvRecord = {
    cluster: cluster.record(),
    moto: { endpoint: moto.endpoint, pid: moto.pid },
    detached: detach,
  };
  writeFileSync(f.record, JSON.stringify(record, null, 2));
  console.log(`kube-apiserver ${cluster.version} at ${cluster.server}`);
  console.log(`moto_server at ${moto.endpoint}`);
  console.log(`kubeconfig: ${f.kubeconfig}`);
  console.log(`AWS environment: ${f.awsEnv}`);
  if (detach) {
    console.log(`stop with: npm run testenv -- stop --dir ${dir}`);
    return;
  }
  console.log('press Ctrl-C to stop');
  await new Promise<void>((resolveStop) => {
    process.once('SIGINT', resolveStop);
    process.once('SIGTERM', resolveStop);
  });
  await Promise.all([cluster.stop(), moto.stop()]);
  cleanup(dir);
}

function cleanup(dir: string): void {
  const f = files(dir);
  for (const path of [f.record, f.kubeconfig, f.awsEnv, f.clusterDir, f.motoDir])
    rmSync(path, { recursive: true, force: true });
}

async function stop(dir: string): Promise<void> {
  const f = files(dir);
  if (!existsSync(f.record)) throw new Error(`no test environment recorded in ${dir}`);
  const record = JSON.parse(readFileSync(f.record, 'utf8')) as EnvRecord;
  // Stop in reverse start order; detached processes lead their own process group.
  const pids = [record.moto.pid, ...[...record.cluster.pids].reverse()];
  for (const pid of pids) {
    try {
      process.kill(record.detached ? -pid : pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + 15_000;
  while (pids.some(isPidAlive) && Date.now() < deadline) await sleep(100);
  for (const pid of pids.filter(isPidAlive)) {
    try {
      process.kill(record.detached ? -pid : pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  while (pids.some(isPidAlive) && Date.now() < deadline + 5_000) await sleep(100);
  const survivors = pids.filter(isPidAlive);
  if (survivors.length > 0) throw new Error(`processes still running after stop: ${survivors.join(', ')}`);
  cleanup(dir);
  console.log(`stopped the test environment in ${dir}`);
}

function status(dir: string): void {
  const f = files(dir);
  if (!existsSync(f.record)) {
    console.log(`no test environment in ${dir}`);
    process.exitCode = 1;
    return;
  }
  const record = JSON.parse(readFileSync(f.record, 'utf8')) as EnvRecord;
  const alive = [...record.cluster.pids, record.moto.pid].filter(isPidAlive).length;
  console.log(
    `${record.cluster.server} (${record.cluster.version}), moto ${record.moto.endpoint}: ${alive} of ${record.cluster.pids.length + 1} processes running`,
  );
  if (alive === 0) process.exitCode = 1;
}

const program = new Command('testenv')
  .description('a local Kubernetes control plane and AWS endpoint for secretsync development')
  .showHelpAfterError();
program
  .command('start')
  .description('start kube-apiserver, etcd, kube-controller-manager and moto_server on 127.0.0.1')
  .requiredOption('--dir <dir>', 'directory for kubeconfig, aws.env and state')
  .option('--detach', 'return once ready and leave the processes running', false)
  .action(async (opts: { dir: string; detach: boolean }) => start(resolve(opts.dir), opts.detach));
program
  .command('stop')
  .description('stop a test environment started with --detach and remove its state')
  .requiredOption('--dir <dir>', 'the directory given to start')
  .action(async (opts: { dir: string }) => stop(resolve(opts.dir)));
program
  .command('status')
  .description('show whether a test environment is running')
  .requiredOption('--dir <dir>', 'the directory given to start')
  .action((opts: { dir: string }) => status(resolve(opts.dir)));

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`testenv: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
