// Argument checks of `secretsync backup` and `secretsync restore` that need no cluster.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { regionOf } from '../../../src/cli/commands/backup.js';
import { main } from '../../../src/cli/main.js';
import { captureIo } from '../helpers/index.js';

describe('secretsync backup / restore arguments', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'secretsync-backup-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function run(...args: string[]) {
    const io = captureIo();
    const code = await main(['node', 'secretsync', ...args], io);
    return { code, err: io.errLines.join('\n'), out: io.outLines.join('\n') };
  }

  it('backup needs exactly one of --kms-key and --key-file', async () => {
    const none = await run('backup', '--out', join(dir, 'a'));
    expect(none.code).to.equal(1);
    expect(none.err).to.equal('secretsync: give exactly one of --kms-key KEY or --key-file PATH');
    const both = await run('backup', '--out', join(dir, 'a'), '--kms-key', 'alias/x', '--key-file', join(dir, 'k'));
    expect(both.err).to.equal('secretsync: give exactly one of --kms-key KEY or --key-file PATH');
  });

  it('backup --include-local-store needs the store directory', async () => {
    const r = await run('backup', '--out', join(dir, 'a'), '--kms-key', 'alias/x', '--include-local-store');
    expect(r.code).to.equal(1);
    expect(r.err).to.include('--include-local-store needs --local-store-dir');
  });

  it('backup refuses a key file shorter than 32 bytes before reaching any cluster', async () => {
    const key = join(dir, 'short.key');
    await writeFile(key, randomBytes(16));
    const r = await run('backup', '--out', join(dir, 'a'), '--key-file', key, '--kubeconfig', join(dir, 'none'));
    expect(r.code).to.equal(1);
    expect(r.err).to.include('the key file must hold at least 32 bytes');
  });

  it('restore refuses a file that is not a backup, naming the problem and that nothing was applied', async () => {
    const file = join(dir, 'not-a-backup');
    await writeFile(file, 'hello\n');
    const r = await run('restore', '--in', file, '--key-file', file);
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/backup file is corrupted or was tampered with .*nothing was applied$/);
    const missing = await run('restore', '--in', join(dir, 'missing'));
    expect(missing.err).to.include('cannot read --in').and.include('ENOENT');
  });

  it('takes the KMS region from a key ARN unless the environment names one', () => {
    const saved = { r: process.env.AWS_REGION, d: process.env.AWS_DEFAULT_REGION };
    try {
      delete process.env.AWS_REGION;
      delete process.env.AWS_DEFAULT_REGION;
      expect(regionOf('arn:aws:kms:eu-central-1:111122223333:key/abc')).to.equal('eu-central-1');
      expect(regionOf('alias/x')).to.equal(undefined);
      process.env.AWS_REGION = 'us-west-2';
      expect(regionOf('arn:aws:kms:eu-central-1:111122223333:key/abc')).to.equal(undefined);
    } finally {
      if (saved.r === undefined) delete process.env.AWS_REGION;
      else process.env.AWS_REGION = saved.r;
      if (saved.d === undefined) delete process.env.AWS_DEFAULT_REGION;
      else process.env.AWS_DEFAULT_REGION = saved.d;
    }
  });
});
