import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { builtKubernetesVersion, ensureKubeClients, isPidAlive } from '../../../tools/testenv/index.js';
import { repoRoot } from '../../../tools/testenv/paths.js';

const execFileAsync = promisify(execFile);

async function run(command: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(command, args, { cwd: repoRoot, timeout: 180_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('npm run testenv (a second, detached cluster beside the shared one)', function () {
  this.timeout(300_000);
  const dir = mkdtempSync(join(tmpdir(), 'secretsync-testenv-cli-'));
  const tsx = join(repoRoot, 'node_modules', '.bin', 'tsx');
  const cli = join(repoRoot, 'tools', 'testenv-cli.ts');

  after(async () => {
    // Best effort if a test failed half-way; the assertions live in the tests.
    if (existsSync(join(dir, 'testenv.json'))) await run(tsx, [cli, 'stop', '--dir', dir]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts detached (with --vault), serves kubectl with RBAC on and Vault with Kubernetes auth, and stops without leaving a process', async () => {
    const start = await run(tsx, [cli, 'start', '--dir', dir, '--detach', '--vault']);
    expect(start.code, start.stderr).to.equal(0);
    expect(existsSync(join(dir, 'kubeconfig'))).to.equal(true);
    expect(readFileSync(join(dir, 'aws.env'), 'utf8')).to.match(/^export AWS_ENDPOINT_URL=http:\/\/127\.0\.0\.1:\d+$/m);
    const record = JSON.parse(readFileSync(join(dir, 'testenv.json'), 'utf8')) as {
      cluster: { pids: number[] };
      moto: { pid: number };
      vault: { address: string; pid: number };
    };
    const pids = [...record.cluster.pids, record.moto.pid, record.vault.pid];
    expect(pids).to.have.length(5);
    const vaultEnv = readFileSync(join(dir, 'vault.env'), 'utf8');
    expect(vaultEnv).to.include(`export VAULT_ADDR=${record.vault.address}\n`);
    const token = /^export VAULT_TOKEN=(\S+)$/m.exec(vaultEnv)?.[1] ?? '';
    const auths = await fetch(`${record.vault.address}/v1/sys/auth`, { headers: { 'x-vault-token': token } });
    expect(auths.status).to.equal(200);
    expect(Object.keys(((await auths.json()) as { data: Record<string, unknown> }).data)).to.include('kubernetes/');
    expect(pids.every(isPidAlive)).to.equal(true);

    const { kubectl } = await ensureKubeClients();
    const kubeconfig = `--kubeconfig=${join(dir, 'kubeconfig')}`;
    const version = await run(kubectl, [kubeconfig, 'version', '-o', 'json']);
    expect(version.code, version.stderr).to.equal(0);
    const parsed = JSON.parse(version.stdout) as { serverVersion: { gitVersion: string } };
    expect(parsed.serverVersion.gitVersion).to.equal(builtKubernetesVersion());

    const canI = await run(kubectl, [
      kubeconfig,
      'auth',
      'can-i',
      'list',
      'secrets',
      '--as',
      'system:serviceaccount:default:nobody',
    ]);
    expect(canI.stdout.trim()).to.equal('no');
    expect(canI.code).to.equal(1);

    const stop = await run(tsx, [cli, 'stop', '--dir', dir]);
    expect(stop.code, stop.stderr).to.equal(0);
    expect(pids.filter(isPidAlive)).to.deep.equal([]);
    expect(existsSync(join(dir, 'testenv.json'))).to.equal(false);
    expect(existsSync(join(dir, 'cluster'))).to.equal(false);
    expect(existsSync(join(dir, 'vault.env'))).to.equal(false);
  });

  it('refuses to stop a directory with no environment, with one clear line', async () => {
    const stop = await run(tsx, [cli, 'stop', '--dir', join(dir, 'nothing-here')]);
    expect(stop.code).to.equal(1);
    expect(stop.stderr.trim()).to.match(/^testenv: no test environment recorded in /);
  });
});
