// `kubectl secretsync …`: the real kubectl (the test control plane's pinned
// client) finds a kubectl-secretsync executable on PATH and runs it. The
// executable here is a symlink to a launcher of the CLI's source, as npm's bin
// link is a symlink to bin/secretsync.js, so Node sees the same argv[1].
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { completionScript } from '../../../src/cli/completion.js';
import { buildProgram } from '../../../src/cli/main.js';
import { ensureKubeClients } from '../../../tools/testenv/index.js';
import { captureIo } from '../helpers/index.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

describe('secretsync as a kubectl plugin', function () {
  // Each kubectl run starts Node and compiles the CLI from source.
  this.timeout(60_000);
  let dir: string;
  let kubectl: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    ({ kubectl } = await ensureKubeClients());
    dir = mkdtempSync(join(tmpdir(), 'secretsync-kubectl-plugin-'));
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    const launcher = join(dir, 'launch-from-source.mjs');
    writeFileSync(
      launcher,
      `#!/usr/bin/env node
import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))};
register();
const { main } = await import(${JSON.stringify(pathToFileURL(join(repo, 'src/cli/main.ts')).href)});
process.exitCode = await main(process.argv);
`,
    );
    chmodSync(launcher, 0o755);
    symlinkSync(launcher, join(bin, 'kubectl-secretsync'));
    // What `secretsync completion kubectl-plugin > …/kubectl_complete-secretsync` installs.
    writeFileSync(
      join(bin, 'kubectl_complete-secretsync'),
      completionScript(buildProgram(captureIo()), 'kubectl-plugin'),
      { mode: 0o755 },
    );
    // Only our plugin directory and node: other kubectl-* on the machine would change `plugin list`.
    env = { HOME: dir, PATH: `${bin}:${dirname(process.execPath)}:/usr/bin:/bin`, KUBECONFIG: join(dir, 'none') };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const kubectlRun = (...args: string[]) => spawnSync(kubectl, args, { env, encoding: 'utf8' });
  /** What kubectl's shell completion asks kubectl for `kubectl secretsync ARGS<TAB>`: completions, then a directive. */
  const kubectlComplete = (...args: string[]) => {
    const r = kubectlRun('__complete', 'secretsync', ...args);
    expect(r.status, r.stderr).to.equal(0);
    return r.stdout.split('\n').filter(Boolean);
  };

  it('package.json installs the same entry as kubectl-secretsync', () => {
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin['kubectl-secretsync']).to.equal(pkg.bin.secretsync);
  });

  it('kubectl plugin list finds it', () => {
    const r = kubectlRun('plugin', 'list');
    expect(r.stdout, r.stderr).to.contain(join(dir, 'bin', 'kubectl-secretsync'));
    expect(r.stderr).to.not.match(/warning.*kubectl-secretsync/i);
  });

  it('kubectl secretsync --version prints the version under the name it was called by', () => {
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };
    const r = kubectlRun('secretsync', '--version');
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout.trim()).to.equal(`kubectl secretsync ${pkg.version} (node ${process.version})`);
  });

  it('help, examples and errors say `kubectl secretsync`', () => {
    const help = kubectlRun('secretsync', 'store', 'list', '--help');
    expect(help.status, help.stderr).to.equal(0);
    expect(help.stdout).to.match(/^Usage: kubectl secretsync store list \[options\]/m);
    expect(help.stdout).to.match(/^ {2}\$ kubectl secretsync store list /m);
    const failed = kubectlRun('secretsync', 'store', 'list');
    expect(failed.status).to.equal(1);
    expect(failed.stderr).to.match(/^kubectl secretsync: no store directory/m);
  });

  it('kubectl completes `kubectl secretsync …` through kubectl_complete-secretsync', () => {
    expect(kubectlComplete('st')).to.deep.equal(['store', ':4']);
    expect(kubectlComplete('store', '')).to.include.members(['put', 'get', 'list', ':4']);
    expect(kubectlComplete('store', 'put', '--from')).to.deep.equal(['--from-file', ':4']);
    expect(kubectlComplete('encrypt', '--scope', '')).to.deep.equal(['strict', 'namespace', 'cluster', ':4']);
    // A path: no words, and directive 0 lets the shell complete file names.
    expect(kubectlComplete('backup', '--out', '')).to.deep.equal([':0']);
  });
});
