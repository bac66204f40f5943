// The local store's write lock: writers that race for a stale lock (one a
// crashed writer left) must not both get it, in one process or across real
// processes, and no put may be lost.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStore } from '../../../../src/providers/local/store.js';

const entryFile = (dir: string, name: string) => join(dir, `${createHash('sha256').update(name).digest('hex')}.json`);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A lock as a writer that died holding it leaves it: an hour old. */
async function leaveStaleLock(lock: string, content: string): Promise<void> {
  await writeFile(lock, content);
  const hourAgo = new Date(Date.now() - 3_600_000);
  await utimes(lock, hourAgo, hourAgo);
}

interface PutLine {
  version: number;
  writer: string;
  i: number;
}

/** Runs the hammer script in a child process; resolves with its output lines. */
function hammer(
  dir: string,
  key: Buffer,
  writer: string,
  count: number,
  crashEvery: number,
  journalMinEntries?: number,
): Promise<PutLine[]> {
  const script = join(import.meta.dirname, 'fixtures', 'lock-hammer.ts');
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx/esm',
        script,
        dir,
        key.toString('hex'),
        writer,
        String(count),
        String(crashEvery),
        ...(journalMinEntries === undefined ? [] : [String(journalMinEntries)]),
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`writer ${writer} exited with ${code}: ${err.slice(0, 2000)}`));
      else
        resolve(
          out
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as PutLine),
        );
    });
  });
}

describe('local store lock', () => {
  let dir: string;
  let key: Buffer;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'secretsync-lock-'));
    key = randomBytes(32);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writers racing for one stale lock in one process: one at a time, no put lost', async function () {
    this.timeout(60_000);
    const stores = Array.from({ length: 6 }, () => new LocalStore(dir, key, { lockStaleMs: 2_000 }));
    await stores[0]?.put('k', { round: '0' });
    const lock = `${entryFile(dir, 'k')}.lock`;
    let expected = 1;
    for (let round = 1; round <= 10; round++) {
      await leaveStaleLock(lock, `crashed-${round} 2000-01-01T00:00:00.000Z\n`);
      // Staggered by up to a few milliseconds, so that some writers judge the lock stale while others already replace it.
      const results = await Promise.all(
        stores.map(async (s, i) => {
          await sleep(Math.random() * 4);
          return s.put('k', { round: String(round), writer: String(i) });
        }),
      );
      const versions = results.map((r) => r.version).sort((a, b) => a - b);
      expect(versions, `round ${round}`).to.deep.equal(
        Array.from({ length: stores.length }, (_, i) => expected + i + 1),
      );
      expected += stores.length;
    }
    const history = await new LocalStore(dir, key).history('k');
    expect(history.at(-1)?.version).to.equal(expected);
  });

  it('writers in four processes hammering one entry, leaving stale locks behind: every put kept, each number once', async function () {
    this.timeout(180_000);
    const writers = ['a', 'b', 'c', 'd'];
    const perWriter = 25;
    await new LocalStore(dir, key).put('shared', { writer: 'setup', i: '0' }, { keepVersions: 100_000 });
    const lines = (await Promise.all(writers.map((w) => hammer(dir, key, w, perWriter, 1)))).flat();
    expect(lines).to.have.length(writers.length * perWriter);
    // Two holders at once would have read the same latest version and written the same number.
    const versions = lines.map((l) => l.version).sort((a, b) => a - b);
    expect(versions).to.deep.equal(Array.from({ length: lines.length }, (_, i) => i + 2));
    const reader = new LocalStore(dir, key, { valueCacheTtlMs: 0 });
    expect(await reader.history('shared')).to.have.length(lines.length + 1);
    for (const line of lines) {
      expect((await reader.get('shared', line.version)).properties).to.deep.equal({
        writer: line.writer,
        i: String(line.i),
      });
    }
    // Every stale lock was followed by a put that took it over: no lock, takeover marker or temp file is left.
    expect(await readdir(dir)).to.have.members([entryFile(dir, 'shared').split('/').pop(), 'manifest.json']);
  });

  it('four processes hammering one entry of a journalled store: every put kept, and the journal reads back in a fresh process', async function () {
    this.timeout(180_000);
    const writers = ['a', 'b', 'c', 'd'];
    const perWriter = 25;
    // Journal from 4 entries (folded past 4 lines or a quarter): the store's writes append to manifest.journal.
    const setup = new LocalStore(dir, key, { journalMinEntries: 4 });
    for (const other of ['o1', 'o2', 'o3', 'o4']) await setup.put(other, { v: other });
    await setup.put('shared', { writer: 'setup', i: '0' }, { keepVersions: 100_000 });
    setup.close();
    const lines = (await Promise.all(writers.map((w) => hammer(dir, key, w, perWriter, 5, 4)))).flat();
    const versions = lines.map((l) => l.version).sort((a, b) => a - b);
    expect(versions).to.deep.equal(Array.from({ length: lines.length }, (_, i) => i + 2));
    const reader = new LocalStore(dir, key, { valueCacheTtlMs: 0, journalMinEntries: 4 });
    expect(await reader.history('shared')).to.have.length(lines.length + 1);
    const last = lines.find((l) => l.version === lines.length + 1);
    expect((await reader.get('shared')).properties).to.deep.equal({ writer: last?.writer, i: String(last?.i) });
    expect((await reader.get('o3')).properties).to.deep.equal({ v: 'o3' });
    reader.close();
  });

  it('a taker that crashed while holding its takeover marker does not wedge the lock', async function () {
    this.timeout(20_000);
    const store = new LocalStore(dir, key, { lockStaleMs: 500, lockTimeoutMs: 10_000 });
    await store.put('k', { v: '1' });
    const lock = `${entryFile(dir, 'k')}.lock`;
    const content = 'crashed 2000-01-01T00:00:00.000Z\n';
    await leaveStaleLock(lock, content);
    // The marker a taker of exactly this lock instance creates (its content, inode and mtime), left stale.
    const s = await stat(lock);
    const id = createHash('sha256').update(content).update(`\0${s.ino}\0${s.mtimeMs}`).digest('hex').slice(0, 24);
    const marker = `${lock}.takeover.${id}.0`;
    await leaveStaleLock(marker, '');
    expect(await store.put('k', { v: '2' })).to.deep.equal({ version: 2 });
    expect(await readdir(dir)).to.have.members([entryFile(dir, 'k').split('/').pop(), 'manifest.json']);
  });
});
