import { expect } from 'chai';
import { rejectionOf } from '../../helpers/index.js';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdtemp, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  InvalidEntryNameError,
  LocalStore,
  LocalStoreError,
  MasterKeyMismatchError,
  StoreTamperedError,
} from '../../../../src/providers/local/store.js';
import { KeyNotFoundError, ProviderConfigError } from '../../../../src/providers/provider.js';

const SECRET = 'hunter2-correct-horse-battery';

function fileOf(dir: string, name: string): string {
  return join(dir, `${createHash('sha256').update(name).digest('hex')}.json`);
}

interface RawFile {
  format: number;
  name: string;
  generation?: number;
  mac?: string;
  versions: { version: number; ciphertext: string; keyId: string; [k: string]: unknown }[];
}

async function readRaw(dir: string, name: string): Promise<RawFile> {
  return JSON.parse(await readFile(fileOf(dir, name), 'utf8')) as RawFile;
}

describe('LocalStore', () => {
  let dir: string;
  let key: Buffer;
  let store: LocalStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'secretsync-store-'));
    key = randomBytes(32);
    store = new LocalStore(dir, key);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips properties, numbering versions from 1', async () => {
    expect(await store.put('db/prod', { user: 'app', password: SECRET })).to.deep.equal({ version: 1 });
    const got = await store.get('db/prod');
    expect(got.version).to.equal(1);
    expect(got.properties).to.deep.equal({ user: 'app', password: SECRET });
    expect(Date.parse(got.createdAt)).to.be.closeTo(Date.now(), 10_000);
    expect(await store.put('db/prod', { user: 'app', password: 'two' })).to.deep.equal({ version: 2 });
    expect((await store.get('db/prod')).properties.password).to.equal('two');
  });

  it('writes a versioned format with names and metadata in the clear and values encrypted', async () => {
    await store.put('db/prod', { password: SECRET });
    const raw = await readRaw(dir, 'db/prod');
    expect(raw.format).to.equal(2);
    expect(raw.name).to.equal('db/prod');
    expect(raw.generation).to.equal(1);
    expect(raw.mac).to.be.a('string');
    expect(raw.versions[0]).to.include.keys('version', 'createdAt', 'keyId', 'wrappedKey', 'iv', 'tag', 'ciphertext');
    expect(raw.versions[0]?.keyId).to.equal(store.keyId);
  });

  it('keeps no plaintext value on disk, in any encoding', async () => {
    await store.put('db/prod', { password: SECRET });
    await store.put('db/prod', { password: SECRET, other: SECRET });
    await store.patch('db/other', { password: SECRET });
    const needles = [SECRET, Buffer.from(SECRET).toString('base64'), Buffer.from(SECRET).toString('hex')];
    const haystacks = [key.toString('base64'), key.toString('hex')];
    for (const f of await readdir(dir)) {
      const content = await readFile(join(dir, f), 'utf8');
      for (const n of [...needles, ...haystacks]) expect(content, f).to.not.include(n);
    }
  });

  it('pins versions by number or numeric string, and prunes the oldest beyond keepVersions', async () => {
    for (let i = 1; i <= 5; i++) await store.put('app/key', { value: `v${i}` }, { keepVersions: 3 });
    expect((await store.history('app/key')).map((v) => v.version)).to.deep.equal([3, 4, 5]);
    expect((await store.get('app/key', 4)).properties.value).to.equal('v4');
    expect((await store.get('app/key', '3')).properties.value).to.equal('v3');
    const pruned = await rejectionOf(store.get('app/key', '1'));
    expect(pruned).to.be.instanceOf(KeyNotFoundError);
    expect(pruned.message).to.equal('entry "app/key" has no version 1');
    expect((pruned as KeyNotFoundError).key).to.equal('app/key');
    // Numbers keep counting after pruning; they are never reused within an entry.
    expect(await store.put('app/key', { value: 'v6' })).to.deep.equal({ version: 6 });
  });

  it('keeps 10 versions by default', async () => {
    for (let i = 1; i <= 12; i++) await store.put('k', { value: String(i) });
    const versions = (await store.history('k')).map((v) => v.version);
    expect(versions).to.deep.equal([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('refuses version strings that are not positive whole numbers', async () => {
    await store.put('k', { value: 'x' });
    for (const v of ['0', '-1', '1.5', 'latest', '', '01']) {
      const err = await rejectionOf(store.get('k', v));
      expect(err, v).to.be.instanceOf(KeyNotFoundError);
      expect(err.message).to.include('entry "k" has no version');
    }
  });

  it('a missing entry is a KeyNotFoundError naming it', async () => {
    await store.put('present', { value: SECRET });
    for (const call of [() => store.get('db/missing'), () => store.history('db/missing')]) {
      const err = await rejectionOf(call());
      expect(err).to.be.instanceOf(KeyNotFoundError);
      expect(err.message).to.equal('entry "db/missing" not found');
      expect((err as KeyNotFoundError).key).to.equal('db/missing');
    }
  });

  it('validates entry names', async () => {
    for (const bad of ['', '/abs', 'a/../b', '..', 'a//b', 'a/', 'sp ace', 'ü', 'x'.repeat(254), 'a/./b']) {
      expect(await rejectionOf(store.put(bad, { v: 'x' })), JSON.stringify(bad)).to.be.instanceOf(
        InvalidEntryNameError,
      );
    }
    for (const good of ['a', 'db/prod', 'A.b_c-d/e.f', '..a', 'x'.repeat(253)]) {
      await store.put(good, { v: 'x' });
    }
    expect((await store.list()).map((e) => e.name)).to.have.length(5);
  });

  it('refuses property values that are not strings, and keeps a __proto__ property as data', async () => {
    const bad = { n: 1 } as unknown as Record<string, string>;
    expect((await rejectionOf(store.put('k', bad))).message).to.equal('property "n" must be a string');
    const tricky = JSON.parse('{"__proto__":"p","a":"b"}') as Record<string, string>;
    await store.put('k', tricky);
    const got = (await store.get('k')).properties;
    expect(Object.getPrototypeOf(got)).to.equal(Object.prototype);
    expect(Object.keys(got)).to.deep.equal(['__proto__', 'a']);
  });

  it('patch lays properties over the latest version, as a new version', async () => {
    await store.put('db', { user: 'app', password: 'old' });
    expect(await store.patch('db', { password: 'new' })).to.deep.equal({ version: 2 });
    expect((await store.get('db')).properties).to.deep.equal({ user: 'app', password: 'new' });
    expect(await store.patch('fresh', { only: 'one' })).to.deep.equal({ version: 1 });
    expect((await store.get('fresh')).properties).to.deep.equal({ only: 'one' });
  });

  it('lists by prefix, sorted by name, with metadata only', async () => {
    await store.put('z/last', { v: SECRET });
    await store.put('app/b', { v: '1' });
    await store.put('app/b', { v: '2' });
    await store.put('app/a', { v: '1' });
    const all = await store.list();
    expect(all.map((e) => e.name)).to.deep.equal(['app/a', 'app/b', 'z/last']);
    const b = all.find((e) => e.name === 'app/b');
    expect(b).to.include({ latestVersion: 2, versions: 2 });
    expect(b?.updatedAt).to.be.a('string');
    expect(JSON.stringify(all)).to.not.include(SECRET);
    expect((await store.list('app/')).map((e) => e.name)).to.deep.equal(['app/a', 'app/b']);
    expect(await store.list('nothing/')).to.deep.equal([]);
  });

  it('history lists versions and times, never values', async () => {
    await store.put('k', { v: SECRET });
    await store.put('k', { v: SECRET });
    const history = await store.history('k');
    expect(history.map((h) => h.version)).to.deep.equal([1, 2]);
    expect(Object.keys(history[0] ?? {})).to.deep.equal(['version', 'createdAt']);
    expect(JSON.stringify(history)).to.not.include(SECRET);
  });

  it('deletes an entry with all its versions', async () => {
    await store.put('k', { v: 'x' });
    await store.put('k', { v: 'y' });
    expect(await store.delete('k')).to.equal(true);
    expect(await store.delete('k')).to.equal(false);
    expect(await rejectionOf(store.get('k'))).to.be.instanceOf(KeyNotFoundError);
    // Only the manifest stays, with the entry's tombstone.
    expect(await readdir(dir)).to.deep.equal(['manifest.json']);
    // A re-created entry starts over.
    expect(await store.put('k', { v: 'z' })).to.deep.equal({ version: 1 });
  });

  describe('master key', () => {
    it('a wrong key is refused by comparing key ids before any decryption', async () => {
      await store.put('db/prod', { password: SECRET });
      const other = new LocalStore(dir, randomBytes(32));
      const err = await rejectionOf(other.get('db/prod'));
      expect(err).to.be.instanceOf(MasterKeyMismatchError);
      expect(err).to.be.instanceOf(ProviderConfigError);
      expect(err.message).to.match(
        /^the master key does not match the store: its manifest was written with master key id/,
      );
      expect(err.message).to.include(store.keyId).and.include(other.keyId);
      expect(err.message).to.not.include(SECRET);
      await other.verifyMasterKey().then(
        () => expect.fail('verifyMasterKey passed with the wrong key'),
        (e: unknown) => expect(e).to.be.instanceOf(MasterKeyMismatchError),
      );
      await store.verifyMasterKey();
    });

    it('a wrong key cannot add versions to an entry, nor start new entries in a store', async () => {
      await store.put('db/prod', { password: SECRET });
      const other = new LocalStore(dir, randomBytes(32));
      expect(await rejectionOf(other.put('db/prod', { password: 'x' }))).to.be.instanceOf(MasterKeyMismatchError);
      expect(await rejectionOf(other.put('db/new', { password: 'x' }))).to.be.instanceOf(MasterKeyMismatchError);
      expect((await store.history('db/prod')).length).to.equal(1);
      expect(await store.list()).to.have.length(1);
    });

    it('a check reads again only the entries written since the last check of this process (any instance)', async () => {
      for (let i = 0; i < 5; i++) await store.put(`e/${i}`, { v: String(i) });
      await store.verifyMasterKey();
      // Garbage in a file whose manifest record did not move: a later check (even by a new instance, as a
      // rebuilt client is) does not read it; the get that uses it refuses it.
      const files = (await readdir(dir)).filter((f) => !f.startsWith('manifest') && !f.startsWith('.'));
      const victim = join(dir, files[0] ?? '');
      await writeFile(victim, '{"not":"an entry"}');
      await new LocalStore(dir, key).verifyMasterKey();
      const names = await Promise.all(
        [0, 1, 2, 3, 4].map((i) => rejectionOf(store.get(`e/${i}`)).catch(() => undefined)),
      );
      expect(names.filter((e) => e instanceof Error)).to.have.length(1);
      // The key itself is still checked every time, by the manifest's MAC.
      await store.put('e/new', { v: 'x' });
      await store.verifyMasterKey();
      const other = new LocalStore(dir, randomBytes(32));
      await other.verifyMasterKey().then(
        () => expect.fail('verifyMasterKey passed with the wrong key'),
        (e: unknown) => expect(e).to.be.instanceOf(MasterKeyMismatchError),
      );
    });

    it('forgets what it checked of a directory no check used for 30 minutes (a deleted store leaves nothing behind)', async () => {
      for (let i = 0; i < 3; i++) await store.put(`f/${i}`, { v: String(i) });
      await store.verifyMasterKey();
      const files = (await readdir(dir)).filter((f) => !f.startsWith('manifest') && !f.startsWith('.'));
      await writeFile(join(dir, files[0] ?? ''), '{"not":"an entry"}');
      await new LocalStore(dir, key).verifyMasterKey();
      const realNow = Date.now;
      Date.now = () => realNow() + 31 * 60_000;
      try {
        // Forgotten: the check reads every file again and finds the one changed behind the manifest's back.
        expect(await rejectionOf(new LocalStore(dir, key).verifyMasterKey())).to.be.instanceOf(Error);
      } finally {
        Date.now = realNow;
      }
    });

    it('an empty or missing store accepts any key', async () => {
      await new LocalStore(dir, randomBytes(32)).verifyMasterKey();
      const nested = new LocalStore(join(dir, 'a', 'b'), randomBytes(32));
      await nested.put('k', { v: 'x' });
      await nested.verifyMasterKey();
    });
  });

  describe('tampering', () => {
    it('a modified ciphertext fails authentication, with no value in the message', async () => {
      await store.put('db/prod', { password: SECRET });
      const raw = await readRaw(dir, 'db/prod');
      const v = raw.versions[0];
      if (!v) throw new Error('no version');
      const bytes = Buffer.from(v.ciphertext, 'base64');
      bytes[0] = (bytes[0] ?? 0) ^ 0xff;
      v.ciphertext = bytes.toString('base64');
      await writeFile(fileOf(dir, 'db/prod'), JSON.stringify(raw));
      const err = await rejectionOf(new LocalStore(dir, key).get('db/prod'));
      // The MAC over the version list covers the ciphertext's digest, so it fails before decryption.
      expect(err).to.be.instanceOf(StoreTamperedError);
      expect(err).to.include({ reason: 'StoreTampered', retry: 'terminal', entry: 'db/prod' });
      expect(err.message).to.match(/^entry "db\/prod" failed authentication: its version list or metadata was edited/);
    });

    it('a file copied over another entry is refused, even with the name inside rewritten', async () => {
      await store.put('db/a', { password: 'for-a' });
      await store.put('db/b', { password: 'for-b' });
      const a = await readRaw(dir, 'db/a');
      await writeFile(fileOf(dir, 'db/b'), JSON.stringify(a));
      const moved = await rejectionOf(new LocalStore(dir, key).get('db/b'));
      expect(moved).to.be.instanceOf(StoreTamperedError);
      expect(moved.message).to.equal('entry file for "db/b" holds entry "db/a"; it was moved or replaced');
      await writeFile(fileOf(dir, 'db/b'), JSON.stringify({ ...a, name: 'db/b' }));
      const renamed = await rejectionOf(new LocalStore(dir, key).get('db/b'));
      expect(renamed).to.be.instanceOf(StoreTamperedError);
      expect(renamed.message).to.match(/^entry "db\/b" failed authentication/);
    });

    it('swapped or renumbered versions fail authentication', async () => {
      await store.put('k', { v: 'one' });
      await store.put('k', { v: 'two' });
      const raw = await readRaw(dir, 'k');
      const [first, second] = raw.versions;
      if (!first || !second) throw new Error('expected two versions');
      // Version 2's sealed data under version 1's number and vice versa, order kept valid.
      raw.versions = [
        { ...second, version: 1 },
        { ...first, version: 2 },
      ];
      await writeFile(fileOf(dir, 'k'), JSON.stringify(raw));
      const reader = new LocalStore(dir, key);
      // Caught by the MAC over the list; each version's own AES-GCM tag would catch it too (format-1 test below).
      for (const err of [await rejectionOf(reader.get('k', 1)), await rejectionOf(reader.get('k'))]) {
        expect(err).to.be.instanceOf(StoreTamperedError);
        expect(err.message).to.match(/^entry "k" failed authentication/);
      }
    });

    it('a file that is not a store file is a clear LocalStoreError', async () => {
      await store.put('k', { v: 'x' });
      await writeFile(fileOf(dir, 'k'), '{"format": 3, "name": "k", "versions": []}');
      const err = await rejectionOf(new LocalStore(dir, key).get('k'));
      expect(err).to.be.instanceOf(LocalStoreError);
      expect(err.message).to.match(/is not a valid local store file: unsupported format 3 \(expected 1 or 2\)$/);
    });
  });

  describe('atomicity and locking', () => {
    it('leaves no temp or lock files behind', async () => {
      for (let i = 0; i < 5; i++) await store.put(`k${i % 2}`, { v: String(i) });
      await store.delete('k0');
      const files = (await readdir(dir)).sort();
      expect(files).to.have.length(2);
      expect(files[0]).to.match(/^[0-9a-f]{64}\.json$/);
      expect(files[1]).to.equal('manifest.json');
    });

    it('ignores a temp file a crashed writer left, and the next put of that entry removes it', async () => {
      await store.put('db/prod', { password: 'committed' });
      // A crash between write and rename: a torn temp file next to the real one.
      const stray = `${fileOf(dir, 'db/prod')}.4242.abcdef012345.tmp`;
      await writeFile(stray, '{"format": 1, "name": "db/prod", "versions": [{"vers');
      const reader = new LocalStore(dir, key);
      expect((await reader.get('db/prod')).properties).to.deep.equal({ password: 'committed' });
      expect((await reader.list()).map((e) => e.name)).to.deep.equal(['db/prod']);
      await reader.verifyMasterKey();
      expect(existsSync(stray)).to.equal(true);
      await reader.put('db/prod', { password: 'next' });
      expect(existsSync(stray)).to.equal(false);
      expect((await reader.get('db/prod')).properties).to.deep.equal({ password: 'next' });
    });

    it('concurrent puts from two store instances each get a distinct version, none lost', async function () {
      // Twenty writers queue on one lock; a loaded machine needs more than mocha's default 2 s.
      this.timeout(20_000);
      const a = new LocalStore(dir, key);
      const b = new LocalStore(dir, key);
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).put('shared', { n: String(i) }, { keepVersions: 100 })),
      );
      const versions = results.map((r) => r.version).sort((x, y) => x - y);
      expect(versions).to.deep.equal(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(await a.history('shared')).to.have.length(20);
      // Every write is readable under the version it was given.
      for (const [i, r] of results.entries()) {
        expect((await b.get('shared', r.version)).properties.n).to.equal(String(i));
      }
    });

    it('concurrent patches of different properties all survive', async function () {
      this.timeout(20_000);
      const a = new LocalStore(dir, key);
      const b = new LocalStore(dir, key);
      await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).patch('merged', { [`p${i}`]: 'x' })));
      expect(Object.keys((await a.get('merged')).properties).sort()).to.deep.equal(
        Array.from({ length: 10 }, (_, i) => `p${i}`).sort(),
      );
    });

    it('takes over a stale lock left by a crashed writer', async () => {
      await store.put('k', { v: '1' });
      const lock = `${fileOf(dir, 'k')}.lock`;
      await writeFile(lock, '999999 crashed\n');
      const old = new Date(Date.now() - 60_000);
      await utimes(lock, old, old);
      expect(await new LocalStore(dir, key, { lockTimeoutMs: 2_000 }).put('k', { v: '2' })).to.deep.equal({
        version: 2,
      });
      expect(existsSync(lock)).to.equal(false);
    });

    it('gives up on a live lock after the timeout with a clear error', async () => {
      await store.put('k', { v: '1' });
      const lock = `${fileOf(dir, 'k')}.lock`;
      await writeFile(lock, `${process.pid} now\n`);
      const err = await rejectionOf(new LocalStore(dir, key, { lockTimeoutMs: 200 }).put('k', { v: '2' }));
      expect(err).to.be.instanceOf(LocalStoreError);
      expect(err.message).to.match(/^entry "k" is locked by another writer/);
      expect((await store.get('k')).properties.v).to.equal('1');
    });
  });

  describe('reading cost and freshness', () => {
    it('does not re-parse an unchanged file, and sees another writer’s put at once', async () => {
      await store.put('hot', { v: 'one' });
      const reader = new LocalStore(dir, key);
      expect((await reader.get('hot')).properties.v).to.equal('one');
      const parse = JSON.parse;
      let parses = 0;
      JSON.parse = ((...args: Parameters<typeof parse>) => {
        parses++;
        return parse(...args);
      }) as typeof JSON.parse;
      try {
        for (let i = 0; i < 2000; i++) await reader.get('hot');
      } finally {
        JSON.parse = parse;
      }
      expect(parses).to.equal(0);
      await store.put('hot', { v: 'two' });
      expect((await reader.get('hot')).properties.v).to.equal('two');
      expect((await reader.get('hot', 1)).properties.v).to.equal('one');
    });

    it('sees a new version that left the same inode, mtime and size behind (a reused inode in one clock tick)', async () => {
      await store.put('same', { v: 'aaaa' }, { keepVersions: 1 });
      const path = join(dir, `${createHash('sha256').update('same', 'utf8').digest('hex')}.json`);
      // One file time for both files (utimes rounds what it is given the same way each time).
      const tick = Date.now() / 1000;
      await utimes(path, tick, tick);
      const reader = new LocalStore(dir, key);
      expect((await reader.get('same')).properties.v).to.equal('aaaa');
      const before = await stat(path);
      // Keep the old inode, let another writer replace the file, then put the new bytes into the old
      // inode with the old mtime: what a freed inode number reused within one tick of the file clock looks like.
      await link(path, `${path}.keep`);
      await new LocalStore(dir, key).put('same', { v: 'bbbb' }, { keepVersions: 1 });
      const replaced = await readFile(path);
      await rename(`${path}.keep`, path);
      await writeFile(path, replaced);
      await utimes(path, tick, tick);
      const after = await stat(path);
      expect([after.ino, after.mtimeMs, after.size], 'the file looks the same').to.deep.equal([
        before.ino,
        before.mtimeMs,
        before.size,
      ]);
      expect((await reader.get('same')).properties.v).to.equal('bbbb');
    });

    it('lists shared by concurrent callers still see every write this process finished before they asked', async function () {
      // Enough entries that a listing is still running when a put finishes (each put rewrites the manifest).
      this.timeout(30_000);
      for (let i = 0; i < 300; i++) await store.put(`list/e-${i}`, { v: String(i) });
      const together = await Promise.all(Array.from({ length: 8 }, () => store.list('list/')));
      for (const listing of together) expect(listing.map((e) => e.name)).to.have.length(300);
      for (let round = 0; round < 20; round++) {
        // A listing starts while the put holds its lock; the listing asked for after the put must include it.
        const put = store.put(`list/new-${round}`, { v: 'n' });
        const during = store.list('list/');
        await put;
        const after = await store.list('list/');
        expect(
          after.map((e) => e.name),
          `round ${round}`,
        ).to.include(`list/new-${round}`);
        await during;
      }
    });

    it('without the value cache still parses the file once, decrypting per read', async () => {
      await store.put('hot', { v: 'one' });
      const reader = new LocalStore(dir, key, { valueCacheTtlMs: 0 });
      await reader.get('hot');
      const parse = JSON.parse;
      let parses = 0;
      JSON.parse = ((...args: Parameters<typeof parse>) => {
        parses++;
        return parse(...args);
      }) as typeof JSON.parse;
      try {
        for (let i = 0; i < 100; i++) await reader.get('hot');
      } finally {
        JSON.parse = parse;
      }
      // One parse per read is the decrypted properties; the file itself is not parsed again.
      expect(parses).to.equal(100);
    });

    it('returns copies, so a caller cannot change what others read', async () => {
      await store.put('k', { v: 'x' });
      const first = await store.get('k');
      first.properties.v = 'changed';
      expect((await store.get('k')).properties.v).to.equal('x');
    });
  });

  it('a missing directory is a LocalStoreError naming it; put creates it', async () => {
    const missing = join(dir, 'not-there');
    const s = new LocalStore(missing, key);
    const calls = [
      () => s.get('k'),
      () => s.history('k'),
      () => s.list(),
      () => s.verifyMasterKey(),
      () => s.delete('k'),
    ];
    for (const call of calls) {
      const err = await rejectionOf(call());
      expect(err).to.be.instanceOf(LocalStoreError);
      expect(err.message).to.include(`local store directory ${missing} does not exist or is unreadable`);
    }
    await s.put('k', { v: 'x' });
    expect((await s.get('k')).properties.v).to.equal('x');
  });

  it('is unusable after close', async () => {
    await store.put('k', { v: 'x' });
    store.close();
    expect((await rejectionOf(store.get('k'))).message).to.equal('the local store was closed');
  });
});
