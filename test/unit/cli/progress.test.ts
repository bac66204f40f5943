// Progress of long commands: plain count lines for a log, a bar redrawn in
// place on a terminal (checked on a real pseudo-terminal with util-linux's
// `script`), and never a value.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../../../src/cli/main.js';
import { createProgress } from '../../../src/cli/progress.js';
import { KmsEncryptor } from '../../../src/providers/aws-kms/index.js';
import { captureIo } from '../helpers/index.js';
import { FakeKms } from '../providers/aws-kms/fake-kms.js';

const repo = fileURLToPath(new URL('../../../', import.meta.url));

/** Erase-to-end-of-line, spelled out so that assertions can name it. */
const shown = (text: string | undefined) => (text ?? '').replaceAll('\u001b[K', '<clear>');

function fakeStream(isTTY: boolean, columns?: number) {
  const writes: string[] = [];
  return { isTTY, columns, writes, write: (chunk: string) => writes.push(chunk), text: () => writes.join('') };
}

describe('progress output', () => {
  describe('in a log (stderr is not a terminal)', () => {
    it('prints a count line every interval and one when each step ends', () => {
      let t = 0;
      const stream = fakeStream(false);
      const p = createProgress(stream, 'restore', { now: () => t, lineIntervalMs: 5000 });
      p.update('namespaces checked', 0, 2);
      p.update('namespaces checked', 2, 2);
      for (let done = 0; done <= 1000; done += 100) {
        t += 2000;
        p.update('objects applied', done, 1000);
      }
      p.end();
      expect(stream.text()).to.equal(
        [
          'restore: namespaces checked 2/2 (100%), done',
          'restore: objects applied 300/1000 (30%)',
          'restore: objects applied 600/1000 (60%)',
          'restore: objects applied 900/1000 (90%)',
          'restore: objects applied 1000/1000 (100%), done',
          '',
        ].join('\n'),
      );
      expect(stream.text()).to.not.include('\r');
    });

    it('prints where a step stopped when it ends early (an error)', () => {
      let t = 0;
      const stream = fakeStream(false);
      const p = createProgress(stream, 'backup', { now: () => t });
      p.update('local store files read', 3, 10);
      t += 100;
      p.end();
      expect(stream.writes).to.deep.equal(['backup: local store files read 3/10 (30%)\n']);
    });
  });

  describe('on a terminal', () => {
    it('redraws one bar in place, at most every redraw interval, and ends the line', () => {
      let t = 0;
      const stream = fakeStream(true, 100);
      const p = createProgress(stream, 'reencrypt', { now: () => t, redrawMs: 100 });
      for (let done = 0; done <= 50; done++) {
        t += 10;
        p.update('ciphertexts re-encrypted', done, 50);
      }
      p.end();
      const frames = stream.writes.filter((w) => w.startsWith('\r'));
      // The first frame, one per 100 ms of the 500 ms run, and the last; not one per update.
      expect(frames.length).to.be.within(5, 8);
      expect(shown(frames[0])).to.match(/^\rreencrypt: ciphertexts re-encrypted \[░{40}\] 0\/50 \(0%\)<clear>$/);
      expect(shown(frames.at(-1))).to.match(/^\rreencrypt: ciphertexts re-encrypted \[█{40}\] 50\/50 \(100%\)<clear>$/);
      expect(stream.writes.at(-1)).to.equal('\n');
    });

    it('starts a new line for a new step and fits a narrow terminal', () => {
      const stream = fakeStream(true, 50);
      const p = createProgress(stream, 'backup', { now: () => 0 });
      p.update('kinds listed', 4, 4);
      p.update('local store files read', 1, 2);
      p.end();
      const lines = stream.text().split('\n');
      expect(lines).to.have.length(3);
      expect(lines[0]).to.match(/kinds listed \[█+\] 4\/4/);
      expect(lines[1]).to.match(/local store files read \[█{5}░{5}\] 1\/2 \(50%\)/);
    });
  });

  it('is off without a stream (tests, embedding) and with --no-progress', async () => {
    const stream = fakeStream(false);
    createProgress(undefined, 'x').update('y', 1, 1);
    const kms = new FakeKms();
    const key = kms.createKey('alias/old');
    kms.createKey('alias/new');
    const ciphertext = await new KmsEncryptor(kms).encrypt('v', { keyId: key, scope: 'cluster', binding: {} });
    const io = { ...captureIo(ciphertext), progressStream: stream };
    expect(
      await main(['node', 'secretsync', 'reencrypt', '--key', 'alias/new', '--no-progress'], io, { kms: () => kms }),
    ).to.equal(0);
    expect(stream.writes).to.deep.equal([]);
  });

  it('reencrypt reports counts on stderr, never a value or a ciphertext', async () => {
    const kms = new FakeKms();
    const key = kms.createKey('alias/old');
    kms.createKey('alias/new');
    const encryptor = new KmsEncryptor(kms);
    const values = Array.from({ length: 25 }, (_, i) => `progress-secret-${i}`);
    const ciphertexts = await Promise.all(
      values.map((v) => encryptor.encrypt(v, { keyId: key, scope: 'cluster', binding: {} })),
    );
    const stream = fakeStream(false);
    const io = { ...captureIo(ciphertexts.join('\n')), progressStream: stream };
    expect(await main(['node', 'secretsync', 'reencrypt', '--key', 'alias/new'], io, { kms: () => kms })).to.equal(0);
    const reencrypted = io.outLines.join('\n').split('\n');
    expect(reencrypted).to.have.length(25);
    expect(stream.text()).to.equal('reencrypt: ciphertexts re-encrypted 25/25 (100%), done\n');
    for (const secret of [...values, ...ciphertexts, ...reencrypted]) expect(stream.text()).to.not.include(secret);
  });

  it('draws the bar when reencrypt runs on a real pseudo-terminal', function () {
    if (spawnSync('script', ['--version']).status !== 0) {
      console.log('      (util-linux `script` is not installed: skipping the pseudo-terminal run)');
      this.skip();
    }
    this.timeout(60_000);
    const fixture = 'test/unit/cli/fixtures/reencrypt-on-a-terminal.ts';
    const r = spawnSync('script', ['-qfec', `${process.execPath} --import tsx ${fixture} 300`, '/dev/null'], {
      cwd: repo,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(r.status, r.stdout + r.stderr).to.equal(0);
    expect(shown(r.stdout)).to.match(/\rreencrypt: ciphertexts re-encrypted \[░+\] 1\/300 \(0%\)<clear>/);
    expect(shown(r.stdout)).to.match(/\rreencrypt: ciphertexts re-encrypted \[█+\] 300\/300 \(100%\)<clear>\r?\n/);
    expect(r.stdout).to.not.include('fixture-value-');
  });
});
