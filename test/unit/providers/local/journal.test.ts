// The local store's manifest journal (issue 18): a large store records each
// write as a chained line in manifest.journal instead of rewriting the whole
// manifest.json, so that a put costs the same at 50,000 entries as at 50. These
// tests lower the threshold (journalMinEntries) to a handful of entries and
// check what the journal must keep of the manifest's rollback detection: an
// edited or reordered line is refused, an entry file behind the journal is
// refused, lines cut off are a rollback for a reader that saw them, a
// half-written line or a journal left by a crash during a fold reads fine, and
// the change watcher sees journalled writes.
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorInfo } from '../../../../src/api/errors.js';
import {
  LocalStore,
  MANIFEST_FILE,
  MANIFEST_JOURNAL_FILE,
  StoreTamperedError,
} from '../../../../src/providers/local/store.js';
import { watchLocalStore } from '../../../../src/providers/local/watch.js';
import { rejectionOf } from '../../helpers/index.js';

const fileOf = (dir: string, name: string) => join(dir, `${createHash('sha256').update(name).digest('hex')}.json`);

interface RawManifest {
  counter: number;
  entries: { name: string; generation: number; digest?: string; deleted?: boolean }[];
}
interface JournalLine {
  counter: number;
  name: string;
  generation: number;
  digest?: string;
  deleted?: boolean;
  mac: string;
}

/** Journal from 4 entries; folded once it holds more than 4 lines or a quarter of the entries. */
const OPTIONS = { journalMinEntries: 4 };

describe('local store manifest journal', function () {
  this.timeout(30_000);
  let dir: string;
  let key: Buffer;
  let store: LocalStore;
  const journalPath = () => join(dir, MANIFEST_JOURNAL_FILE);
  const manifestPath = () => join(dir, MANIFEST_FILE);
  const readJournal = async () =>
    (await readFile(journalPath(), 'utf8'))
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as JournalLine);
  const writeJournal = (lines: JournalLine[]) =>
    writeFile(journalPath(), lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  const fresh = () => new LocalStore(dir, Buffer.from(key), OPTIONS);

  /** Four entries: the store is large enough for the journal from the next write on. */
  const seed = async () => {
    for (const n of ['a', 'b', 'c', 'd']) await store.put(n, { v: `${n}-1` });
  };

  const expectTampered = (err: Error, message: RegExp, values: string[] = []) => {
    expect(err, err.message).to.be.instanceOf(StoreTamperedError);
    expect(errorInfo(err, 'x')).to.include({ reason: 'StoreTampered', retry: 'terminal' });
    expect(err.message).to.match(message);
    for (const v of values) expect(err.message).to.not.include(v);
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'secretsync-journal-'));
    key = randomBytes(32);
    store = new LocalStore(dir, Buffer.from(key), OPTIONS);
  });

  afterEach(async () => {
    store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('records writes of a large store as chained lines, leaving manifest.json as it was', async () => {
    await seed();
    expect(await readdir(dir)).to.not.include(MANIFEST_JOURNAL_FILE);
    const manifestBefore = await readFile(manifestPath(), 'utf8');
    const { counter } = JSON.parse(manifestBefore) as RawManifest;
    await store.put('a', { v: 'a-2' });
    await store.put('e', { v: 'e-1' });
    await store.delete('b');

    expect(await readFile(manifestPath(), 'utf8')).to.equal(manifestBefore);
    const lines = await readJournal();
    expect(lines.map((l) => [l.counter, l.name, l.generation, l.deleted ?? false])).to.deep.equal([
      [counter + 1, 'a', 2, false],
      [counter + 2, 'e', 1, false],
      [counter + 3, 'b', 1, true],
    ]);
    expect(lines[0]?.digest).to.equal(
      createHash('sha256')
        .update(await readFile(fileOf(dir, 'a')))
        .digest('hex'),
    );
    // A reader that never saw the store reads it whole; one that did follows the appended lines.
    const reader = fresh();
    expect((await reader.get('a')).properties).to.deep.equal({ v: 'a-2' });
    expect((await reader.get('e')).properties).to.deep.equal({ v: 'e-1' });
    expect((await rejectionOf(reader.get('b'))).message).to.match(/not found/);
    expect((await reader.list()).map((e) => e.name)).to.deep.equal(['a', 'c', 'd', 'e']);
    await store.put('c', { v: 'c-2' });
    expect((await reader.get('c')).properties).to.deep.equal({ v: 'c-2' });
    reader.close();
  });

  it('folds the journal into manifest.json once it holds more lines than the threshold, and removes it', async () => {
    await seed();
    for (let i = 2; i <= 5; i++) await store.put('a', { v: `a-${i}` });
    expect(await readJournal()).to.have.length(4);
    await store.put('a', { v: 'a-6' });
    expect(await readdir(dir)).to.not.include(MANIFEST_JOURNAL_FILE);
    const manifest = JSON.parse(await readFile(manifestPath(), 'utf8')) as RawManifest;
    expect(manifest.entries.find((e) => e.name === 'a')?.generation).to.equal(6);
    const reader = fresh();
    expect((await reader.get('a')).properties).to.deep.equal({ v: 'a-6' });
    // And the next write starts a new journal chained to the new manifest.json.
    await store.put('b', { v: 'b-2' });
    expect((await readJournal()).map((l) => l.counter)).to.deep.equal([manifest.counter + 1]);
    expect((await reader.get('b')).properties).to.deep.equal({ v: 'b-2' });
    reader.close();
  });

  it('refuses a journal whose line was edited, reordered or dropped from the middle', async () => {
    await seed();
    await store.put('a', { v: 'secret-a-2' });
    await store.put('b', { v: 'secret-b-2' });
    await store.put('c', { v: 'secret-c-2' });
    const lines = await readJournal();
    const message =
      /^the store manifest journal manifest\.journal failed authentication \(line \d+ does not authenticate\): it was modified/;
    const cases: [string, JournalLine[]][] = [
      ['an edited generation', lines.map((l, i) => (i === 1 ? { ...l, generation: l.generation + 5 } : l))],
      ['a swapped pair', [lines[0], lines[2], lines[1]] as JournalLine[]],
      ['a dropped middle line', [lines[0], lines[2]] as JournalLine[]],
    ];
    for (const [what, tampered] of cases) {
      await writeJournal(tampered);
      const err = await rejectionOf(fresh().get('d'));
      expectTampered(err, message, ['secret-a-2', 'secret-b-2', 'secret-c-2']);
      expect(err.message, what).to.match(message);
    }
  });

  it('refuses an entry file behind the journal, in a fresh reader', async () => {
    await seed();
    const older = await readFile(fileOf(dir, 'a'), 'utf8');
    await store.put('a', { v: 'a-2' });
    await writeFile(fileOf(dir, 'a'), older);
    expectTampered(
      await rejectionOf(fresh().get('a')),
      /^entry "a" was rolled back: its file holds generation 1, the store manifest records generation 2; /,
      ['a-1', 'a-2'],
    );
  });

  it('takes lines cut off the end for a rollback in a reader that read them, and not in a fresh one', async () => {
    await seed();
    const older = await readFile(fileOf(dir, 'a'), 'utf8');
    await store.put('b', { v: 'b-2' });
    const journalBefore = await readFile(journalPath(), 'utf8');
    await store.put('a', { v: 'a-2' });
    const reader = fresh();
    expect((await reader.get('a')).properties.v).to.equal('a-2');
    // The directory as it was before the second put: entry and journal together.
    await writeFile(fileOf(dir, 'a'), older);
    await writeFile(journalPath(), journalBefore);
    expectTampered(
      await rejectionOf(reader.get('a')),
      /^the store manifest was rolled back: it holds counter \d+, this process read counter \d+ before/,
    );
    expect((await fresh().get('a')).properties.v).to.equal('a-1');
    reader.close();
  });

  it('reads past a half-written last line, which the next writer cuts off before appending', async () => {
    await seed();
    await store.put('a', { v: 'a-2' });
    await appendFile(journalPath(), '{"counter":99,"name":"a","gen');
    const reader = fresh();
    expect((await reader.get('a')).properties.v).to.equal('a-2');
    const writer = fresh();
    await writer.put('b', { v: 'b-2' });
    writer.close();
    const lines = await readJournal();
    expect(lines.map((l) => l.name)).to.deep.equal(['a', 'b']);
    expect((await fresh().get('b')).properties.v).to.equal('b-2');
    expect((await reader.get('b')).properties.v).to.equal('b-2');
    reader.close();
  });

  it('ignores a journal that manifest.json already holds (a crash during a fold), and removes it on the next write', async () => {
    await seed();
    for (let i = 2; i <= 5; i++) await store.put('a', { v: `a-${i}` });
    const journalBefore = await readFile(journalPath(), 'utf8');
    await store.put('a', { v: 'a-6' });
    // As if the fold had died after writing manifest.json, before removing the journal.
    await writeFile(journalPath(), journalBefore);
    const reader = fresh();
    expect((await reader.get('a')).properties.v).to.equal('a-6');
    await reader.put('b', { v: 'b-2' });
    expect(await readdir(dir)).to.not.include(MANIFEST_JOURNAL_FILE);
    expect((await fresh().get('b')).properties.v).to.equal('b-2');
    expect((await store.get('a')).properties.v).to.equal('a-6');
    reader.close();
  });

  it('rewrites manifest.json at most once in 20 puts to a store of 100 entries (the fold), where it used to 20 times', async () => {
    const big = new LocalStore(dir, Buffer.from(key), { journalMinEntries: 8 });
    for (let i = 0; i < 100; i++) await big.put(`k${i}`, { v: String(i) });
    const inodes = new Set([(await stat(manifestPath())).ino]);
    for (let i = 0; i < 20; i++) {
      await big.put(`k${i}`, { v: `again-${i}` });
      inodes.add((await stat(manifestPath())).ino);
    }
    // Folded when the journal passes 25 lines (a quarter of the entries): at most one new manifest.json.
    expect(inodes.size).to.be.at.most(2);
    expect((await fresh().get('k7')).properties.v).to.equal('again-7');
    big.close();
  });

  it('keeps its journal reading straight while one process puts 16 at a time and reads meanwhile', async () => {
    const big = new LocalStore(dir, Buffer.from(key), { journalMinEntries: 8 });
    for (let i = 0; i < 40; i++) await big.put(`k${i}`, { v: '0' });
    let stop = false;
    const readers = (async () => {
      let reads = 0;
      while (!stop) {
        await Promise.all([big.get(`k${reads % 40}`), big.list('k1'), big.changeState()]);
        reads++;
      }
      return reads;
    })();
    const writes: Promise<unknown>[] = [];
    for (let round = 1; round <= 5; round++) {
      for (let i = 0; i < 40; i++) writes.push(big.put(`k${i}`, { v: String(round) }));
      if (round % 2 === 0) await Promise.all(writes.splice(0));
    }
    await Promise.all(writes);
    stop = true;
    expect(await readers).to.be.greaterThan(0);
    const reader = fresh();
    for (let i = 0; i < 40; i++) expect((await reader.get(`k${i}`)).properties.v, `k${i}`).to.equal('5');
    expect((await big.get('k39')).properties.v).to.equal('5');
    reader.close();
    big.close();
  });

  it('tells the entries written since a counter from the journal, or undefined when it cannot', async () => {
    await seed();
    const reader = fresh();
    const start = (await reader.changeState())?.counter ?? 0;
    await store.put('a', { v: 'a-2' });
    await store.delete('b');
    expect(await reader.changeStateSince(start)).to.deep.equal({
      counter: start + 2,
      marks: new Map([
        ['a', '2'],
        ['b', '1 deleted'],
      ]),
    });
    expect(await reader.changeStateSince(start + 1)).to.deep.equal({
      counter: start + 2,
      marks: new Map([['b', '1 deleted']]),
    });
    expect((await reader.changeStateSince(start + 2))?.marks.size).to.equal(0);
    // Before manifest.json's own counter: the journal cannot tell.
    expect(await reader.changeStateSince(start - 1)).to.equal(undefined);
    reader.close();
  });

  it('wakes the change watcher for journalled writes, naming only the entries written', async () => {
    await seed();
    const watched = fresh();
    const changed: string[][] = [];
    const stop = new AbortController();
    watchLocalStore(
      watched,
      `test:${dir}`,
      {
        changed: (keys) => changed.push([...keys].sort()),
        changedAll: () => changed.push(['*']),
        degraded: () => undefined,
        flowing: () => undefined,
      },
      stop.signal,
    );
    try {
      await new Promise((r) => setTimeout(r, 100));
      await store.put('c', { v: 'c-2' });
      await store.delete('d');
      const end = Date.now() + 5_000;
      while (changed.flat().length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      expect(changed.flat().sort()).to.deep.equal(['c', 'd']);
      expect(await readdir(dir)).to.include(MANIFEST_JOURNAL_FILE);
      // Through a fold (the watcher compares whole states once) and on into the next journal.
      changed.length = 0;
      for (let i = 2; i <= 5; i++) await store.put('a', { v: `a-${i}` });
      await store.put('b', { v: 'b-2' });
      const end2 = Date.now() + 5_000;
      while (!changed.flat().includes('b') && Date.now() < end2) await new Promise((r) => setTimeout(r, 10));
      expect([...new Set(changed.flat())].sort()).to.deep.equal(['a', 'b']);
    } finally {
      stop.abort();
      watched.close();
    }
  });
});
