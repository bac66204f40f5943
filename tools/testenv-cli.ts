// `npm run testenv -- start|stop|status --dir DIR`: a local control plane and
// AWS endpoint for a person to use with kubectl and the AWS CLI.
import { Command } from 'commander';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MotoServer, TestCluster, VaultServer, isPidAlive, sleep, type ClusterRecord } from './testenv/index.js';

interface EnvRecord {
  cluster: ClusterRecord;
  moto: { endpoint: string; pid: number };
  /** With --vault. */
  vault?: { address: string; pid: number };
  detached: boolean;
}

const files = (dir: string) => ({
  record: join(dir, 'testenv.json'),
  kubeconfig: join(dir, 'kubeconfig'),
  awsEnv: join(dir, 'aws.env'),
  clusterDir: join(dir, 'cluster'),
  motoDir: join(dir, 'moto'),
  vaultEnv: join(dir, 'vault.env'),
  vaultDir: join(dir, 'vault'),
});

const pidsOf = (record: EnvRecord): number[] => [
  ...record.cluster.pids,
  record.moto.pid,
  ...(record.vault ? [record.vault.pid] : []),
];

async function start(dir: string, detach: boolean, withVault: boolean): Promise<void> {
  const f = files(dir);
  if (existsSync(f.record)) {
    const previous = JSON.parse(readFileSync(f.record, 'utf8')) as EnvRecord;
    if (pidsOf(previous).some(isPidAlive)) {
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
  let vault: VaultServer | undefined;
  if (withVault) {
    vault = await VaultServer.start({ dir: f.vaultDir, detached: detach });
    await vault.configureKubernetesAuth(cluster);
    writeFileSync(
      f.vaultEnv,
      Object.entries(vault.env())
        .map(([k, v]) => `export ${k}=${v}`)
        .join('\n') + '\n',
      { mode: 0o600 },
    );
  }
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
    ...(vault ? { vault: { address: vault.address, pid: vault.pid } } : {}),
    detached: detach,
  };
  writeFileSync(f.record, JSON.stringify(record, null, 2));
  console.log(`kube-apiserver ${cluster.version} at ${cluster.server}`);
  console.log(`moto_server at ${moto.endpoint}`);
  console.log(`kubeconfig: ${f.kubeconfig}`);
  console.log(`AWS environment: ${f.awsEnv}`);
  if (vault) console.log(`Vault at ${vault.address} (Kubernetes auth at auth/kubernetes); environment: ${f.vaultEnv}`);
  if (detach) {
    console.log(`stop with: npm run testenv -- stop --dir ${dir}`);
    return;
  }
  console.log('press Ctrl-C to stop');
  await new Promise<void>((resolveStop) => {
    process.once('SIGINT', resolveStop);
    process.once('SIGTERM', resolveStop);
  });
  await Promise.all([cluster.stop(), moto.stop(), vault?.stop()]);
  cleanup(dir);
}

function cleanup(dir: string): void {
  const f = files(dir);
  for (const path of [f.record, f.kubeconfig, f.awsEnv, f.clusterDir, f.motoDir, f.vaultEnv, f.vaultDir])
    rmSync(path, { recursive: true, force: true });
}

async function stop(dir: string): Promise<void> {
  const f = files(dir);
  if (!existsSync(f.record)) throw new Error(`no test environment recorded in ${dir}`);
  const record = JSON.parse(readFileSync(f.record, 'utf8')) as EnvRecord;
  // Stop in reverse start order; detached processes lead their own process group.
  const pids = [...(record.vault ? [record.vault.pid] : []), record.moto.pid, ...[...record.cluster.pids].reverse()];
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
  const pids = pidsOf(record);
  const alive = pids.filter(isPidAlive).length;
  const vault = record.vault ? `, Vault ${record.vault.address}` : '';
  console.log(
    `${record.cluster.server} (${record.cluster.version}), moto ${record.moto.endpoint}${vault}: ${alive} of ${pids.length} processes running`,
  );
  if (alive === 0) process.exitCode = 1;
}

const program = new Command('testenv')
  .description('a local Kubernetes control plane and AWS endpoint for secretsync development')
  .showHelpAfterError();
program
  .command('start')
  .description('start kube-apiserver, etcd, kube-controller-manager and moto_server (and Vault) on 127.0.0.1')
  .requiredOption('--dir <dir>', 'directory for kubeconfig, aws.env and state')
  .option('--detach', 'return once ready and leave the processes running', false)
  .option('--vault', 'also start a Vault dev server (built from its Go module on first use) with Kubernetes auth', false)
  .action(async (opts: { dir: string; detach: boolean; vault: boolean }) =>
    start(resolve(opts.dir), opts.detach, opts.vault),
  );
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
