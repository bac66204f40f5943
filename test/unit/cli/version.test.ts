import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../../src/cli/main.js';
import { programNameFor } from '../../../src/cli/program-name.js';
import { captureIo } from '../helpers/index.js';

const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
const versionLine = (name: string) =>
  new RegExp(`^${name} ${pkg.version.replace(/\./g, '\\.')} \\(node v\\d+\\.\\d+\\.\\d+\\)$`);

describe('secretsync CLI', () => {
  it('version prints the version from package.json', async () => {
    const io = captureIo();
    expect(await main(['node', 'secretsync', 'version'], io)).to.equal(0);
    expect(io.outLines).to.have.length(1);
    expect(io.outLines[0]).to.match(versionLine('secretsync'));
  });

  it('--version and -V on the root command print the same line and exit 0', async () => {
    for (const flag of ['--version', '-V']) {
      const io = captureIo();
      expect(await main(['node', '/usr/lib/node_modules/secretsync/bin/secretsync.js', flag], io)).to.equal(0);
      expect(io.outLines).to.have.length(1);
      expect(io.outLines[0]).to.match(versionLine('secretsync'));
    }
  });

  it("a subcommand's own --version option is not the root's (store get NAME --version N)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'secretsync-version-'));
    try {
      const key = join(dir, 'master.key');
      writeFileSync(key, randomBytes(32));
      const store = ['--dir', join(dir, 'store'), '--master-key-file', key];
      for (const value of ['one', 'two']) {
        const put = captureIo(JSON.stringify({ p: value }));
        expect(await main(['node', 'secretsync', 'store', 'put', 'e', ...store], put), put.errLines.join()).to.equal(0);
      }
      const io = captureIo();
      expect(
        await main(['node', 'secretsync', 'store', 'get', 'e', '--version', '1', '--property', 'p', ...store], io),
      ).to.equal(0);
      expect(io.outLines).to.deep.equal(['one']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names itself by how it was run: kubectl secretsync through the kubectl-secretsync link', async () => {
    expect(programNameFor(['node', '/usr/local/bin/kubectl-secretsync'])).to.equal('kubectl secretsync');
    expect(programNameFor(['node', '/x/bin/secretsync.js'])).to.equal('secretsync');
    expect(programNameFor(['node', '/x/bin/kubectl-other'])).to.equal('secretsync');
    const io = captureIo();
    expect(await main(['node', '/usr/local/bin/kubectl-secretsync', '--version'], io)).to.equal(0);
    expect(io.outLines[0]).to.match(versionLine('kubectl secretsync'));
    const failed = captureIo();
    expect(await main(['node', '/usr/local/bin/kubectl-secretsync', 'rotate', 'not a ref'], failed)).to.equal(1);
    expect(failed.errLines).to.deep.equal([
      'kubectl secretsync: expected NAMESPACE/NAME of a ManagedSecret, got "not a ref"',
    ]);
  });

  it('an unknown command exits non-zero with an error line', async () => {
    const io = captureIo();
    expect(await main(['node', 'secretsync', 'no-such-command'], io)).to.not.equal(0);
    expect(io.errLines.join('\n')).to.match(/unknown command 'no-such-command'/);
  });
});
