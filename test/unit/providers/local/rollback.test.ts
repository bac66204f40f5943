// Rollback and tamper detection of the local store: the MAC over each entry's
// version list, the manifest that pins each entry's latest generation, the
// in-memory high-water marks, and stores written in format 1 (before all that).
import { expect } from 'chai';
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorInfo } from '../../../../src/api/errors.js';
import { LocalStore, StoreTamperedError } from '../../../../src/providers/local/store.js';
import { rejectionOf } from '../../helpers/index.js';

function fileOf(dir: string, name: string): string {
  return join(dir, `${createHash('sha256').update(name).digest('hex')}.json`);
}

interface RawVersion {
  version: number;
  createdAt: string;
  requestToken?: string;
  [k: string]: unknown;
}

interface RawFile {
  format: number;
  name: string;
  generation?: number;
  versions: RawVersion[];
  mac?: string;
}

interface RawManifest {
  format: number;
  keyId: string;
  counter: number;
  entries: { name: string; generation: number; digest?: string; deleted?: boolean }[];
  mac: string;
}

const readRaw = async (dir: string, name: string) => JSON.parse(await readFile(fileOf(dir, name), 'utf8')) as RawFile;
const writeRaw = (dir: string, name: string, raw: RawFile) => writeFile(fileOf(dir, name), JSON.stringify(raw));
const readManifest = async (dir: string) =>
  JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as RawManifest;

/** Asserts a terminal StoreTampered error about `entry` whose message matches, and that no value leaked. */
function expectTampered(err: Error, entry: string | undefined, message: RegExp, values: string[] = []): void {
  expect(err, err.message).to.be.instanceOf(StoreTamperedError);
  expect(errorInfo(err, 'x')).to.include({ reason: 'StoreTampered', retry: 'terminal' });
  expect((err as StoreTamperedError).entry).to.equal(entry);
  expect(err.message).to.match(message);
  for (const v of values) expect(err.message).to.not.include(v);
}

describe('local store rollback detection', () => {
  let dir: string;
  let key: Buffer;
  let store: LocalStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'secretsync-rollback-'));
    key = randomBytes(32);
    store = new LocalStore(dir, key);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe('one entry file swapped for an older copy', () => {
    it('is detected by a fresh reader (the manifest), by get, history and list, and is not written over', async () => {
      await store.put('db/prod', { password: 'old-password' });
      const older = await readFile(fileOf(dir, 'db/prod'), 'utf8');
      await store.put('db/prod', { password: 'new-password' });
      await writeFile(fileOf(dir, 'db/prod'), older);

      const reader = new LocalStore(dir, key);
      const expected =
        /^entry "db\/prod" was rolled back: its file holds generation 1, the store manifest records generation 2; /;
      expectTampered(await rejectionOf(reader.get('db/prod')), 'db/prod', expected, ['old-password', 'new-password']);
      expectTampered(await rejectionOf(reader.history('db/prod')), 'db/prod', expected);
      expectTampered(await rejectionOf(reader.list()), 'db/prod', expected);
      expectTampered(await rejectionOf(reader.put('db/prod', { password: 'x' })), 'db/prod', expected);
      expectTampered(await rejectionOf(reader.patch('db/prod', { password: 'x' })), 'db/prod', expected);
      expect(await readFile(fileOf(dir, 'db/prod'), 'utf8')).to.equal(older);
    });

    it('an older copy of the same generation (a different file) is detected by its digest', async () => {
      // Two stores under one key each write generation 1 of "k"; one file is put in the other's place.
      const twin = await mkdtemp(join(tmpdir(), 'secretsync-rollback-twin-'));
      try {
        await store.put('k', { v: 'mine' });
        await new LocalStore(twin, key).put('k', { v: 'theirs' });
        await cp(fileOf(twin, 'k'), fileOf(dir, 'k'));
        expectTampered(
          await rejectionOf(new LocalStore(dir, key).get('k')),
          'k',
          /^entry "k" was replaced: its file differs from the one the store manifest records for generation 1; /,
        );
      } finally {
        await rm(twin, { recursive: true, force: true });
      }
    });

    it('a deleted entry whose old file is put back is detected (the manifest keeps a tombstone)', async () => {
      await store.put('gone', { v: 'revoked-credential' });
      const older = await readFile(fileOf(dir, 'gone'), 'utf8');
      expect(await store.delete('gone')).to.equal(true);
      await writeFile(fileOf(dir, 'gone'), older);
      expectTampered(
        await rejectionOf(new LocalStore(dir, key).get('gone')),
        'gone',
        /^entry "gone" was deleted at generation 1, and an older copy of its file \(generation 1\) was put back; /,
        ['revoked-credential'],
      );
      // Created again, it goes on past the tombstone and reads fine.
      await unlink(fileOf(dir, 'gone'));
      await store.put('gone', { v: 'new' });
      expect((await readRaw(dir, 'gone')).generation).to.equal(2);
      expect((await new LocalStore(dir, key).get('gone')).properties).to.deep.equal({ v: 'new' });
    });
  });

  describe('the version list of an entry edited', () => {
    beforeEach(async () => {
      await store.put('k', { v: 'one' }, { requestToken: 'token-1' });
      await store.put('k', { v: 'two' });
      await store.put('k', { v: 'three' });
    });

    const edits: [string, (raw: RawFile) => void][] = [
      ['the newest version dropped', (raw) => void raw.versions.pop()],
      [
        'the newest version dropped and the generation lowered to match',
        (raw) => {
          raw.versions.pop();
          raw.generation = 2;
        },
      ],
      ['the oldest version dropped', (raw) => void raw.versions.shift()],
      [
        'versions reordered, numbers kept in order',
        (raw) => {
          const [a, b] = raw.versions;
          if (!a || !b) throw new Error('expected versions');
          raw.versions[0] = { ...b, version: a.version };
          raw.versions[1] = { ...a, version: b.version };
        },
      ],
      ['a createdAt edited', (raw) => void ((raw.versions[1] as RawVersion).createdAt = '2001-01-01T00:00:00.000Z')],
      ['a request token edited', (raw) => void ((raw.versions[0] as RawVersion).requestToken = 'token-2')],
      ['the generation raised', (raw) => void (raw.generation = 99)],
    ];
    for (const [what, edit] of edits) {
      it(`${what}: the MAC fails`, async () => {
        const raw = await readRaw(dir, 'k');
        edit(raw);
        await writeRaw(dir, 'k', raw);
        const reader = new LocalStore(dir, key);
        for (const call of [() => reader.get('k'), () => reader.get('k', 1), () => reader.history('k')]) {
          expectTampered(
            await rejectionOf(call()),
            'k',
            /^entry "k" failed authentication: its version list or metadata was edited \(versions dropped, reordered or changed\)$/,
          );
        }
      });
    }

    it('versions put out of order are refused as tampered, before any MAC', async () => {
      const raw = await readRaw(dir, 'k');
      raw.versions.reverse();
      await writeRaw(dir, 'k', raw);
      expectTampered(await rejectionOf(new LocalStore(dir, key).get('k')), 'k', /versions are out of order/);
    });
  });

  describe('the manifest', () => {
    it('an edited manifest fails authentication', async () => {
      await store.put('a', { v: '1' });
      await store.put('a', { v: '2' });
      const manifest = await readManifest(dir);
      const record = manifest.entries[0];
      if (!record) throw new Error('no record');
      record.generation = 1;
      await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
      expectTampered(
        await rejectionOf(new LocalStore(dir, key).get('a')),
        undefined,
        /^the store manifest manifest\.json failed authentication: it was modified$/,
      );
    });

    it('a removed manifest is detected while format-2 entries exist, and writes are refused', async () => {
      await store.put('a', { v: '1' });
      await unlink(join(dir, 'manifest.json'));
      const reader = new LocalStore(dir, key);
      const missing = /^entry "a" is in format 2 but the store has no manifest\.json: the manifest was removed/;
      expectTampered(await rejectionOf(reader.get('a')), 'a', missing);
      expectTampered(
        await rejectionOf(reader.put('b', { v: '1' })),
        'a',
        /^the store manifest manifest\.json is missing but entry "a" is in format 2/,
      );
      // The instance that had read the manifest says so too.
      expectTampered(await rejectionOf(store.get('a')), undefined, /^the store manifest manifest\.json was removed/);
    });

    it('a crash between the entry write and the manifest write leaves a readable store, repaired by the next write', async () => {
      await store.put('k', { v: '1' });
      const manifestBefore = await readFile(join(dir, 'manifest.json'), 'utf8');
      await store.put('k', { v: '2' });
      // As if the second put had died after renaming the entry file, before the manifest.
      await writeFile(join(dir, 'manifest.json'), manifestBefore);
      const reader = new LocalStore(dir, key);
      expect((await reader.get('k')).properties).to.deep.equal({ v: '2' });
      await reader.put('k', { v: '3' });
      expect((await readRaw(dir, 'k')).generation).to.equal(3);
      expect((await readManifest(dir)).entries).to.deep.include({
        name: 'k',
        generation: 3,
        digest: createHash('sha256')
          .update(await readFile(fileOf(dir, 'k')))
          .digest('hex'),
      });
    });
  });

  describe('the whole directory rolled back (entry files and manifest together)', () => {
    it('is refused by a reader that read the newer state, and accepted by a fresh one (documented limit)', async () => {
      await store.put('k', { v: 'value-A' });
      const snapshot = await mkdtemp(join(tmpdir(), 'secretsync-rollback-snap-'));
      try {
        await cp(dir, snapshot, { recursive: true });
        await store.put('k', { v: 'value-B' });
        const reader = new LocalStore(dir, key);
        expect((await reader.get('k')).properties.v).to.equal('value-B');
        await rm(dir, { recursive: true });
        await cp(snapshot, dir, { recursive: true });
        expectTampered(
          await rejectionOf(reader.get('k')),
          undefined,
          /^the store manifest was rolled back: it holds counter 2, this process read counter 3 before/,
          ['value-A', 'value-B'],
        );
        expect((await new LocalStore(dir, key).get('k')).properties.v).to.equal('value-A');
      } finally {
        await rm(snapshot, { recursive: true, force: true });
      }
    });

    it('an entry older than this process read is refused even after others wrote the rolled-back manifest forward', async () => {
      await store.put('k', { v: 'old' });
      const snapshot = await mkdtemp(join(tmpdir(), 'secretsync-rollback-snap-'));
      try {
        await cp(dir, snapshot, { recursive: true });
        await store.put('k', { v: 'new' });
        const reader = new LocalStore(dir, key);
        expect((await reader.get('k')).properties.v).to.equal('new');
        await rm(dir, { recursive: true });
        await cp(snapshot, dir, { recursive: true });
        // A writer that never saw the newer state moves the manifest's counter past what the reader saw.
        const unaware = new LocalStore(dir, key);
        await unaware.put('other', { v: '1' });
        await unaware.put('other', { v: '2' });
        expect((await readManifest(dir)).counter).to.equal(4);
        expectTampered(
          await rejectionOf(reader.get('k')),
          'k',
          /^entry "k" was rolled back: its file holds generation 1, this process read generation 2 before/,
        );
      } finally {
        await rm(snapshot, { recursive: true, force: true });
      }
    });
  });

  it('concurrent reads in one process while another instance writes never look like a rollback', async function () {
    this.timeout(30_000);
    const writer = new LocalStore(dir, key);
    const reader = new LocalStore(dir, key, { valueCacheTtlMs: 0 });
    await writer.put('hot', { n: '0' });
    const reads: Promise<unknown>[] = [];
    for (let i = 1; i <= 20; i++) {
      await writer.put('hot', { n: String(i) });
      for (let j = 0; j < 10; j++) reads.push(reader.get('hot'), reader.list());
    }
    await Promise.all(reads);
  });

  describe('reseal', () => {
    it('refuses a rolled-back entry unless --accept, then reads it with a generation above the manifest', async () => {
      await store.put('k', { v: 'one' });
      const older = await readFile(fileOf(dir, 'k'), 'utf8');
      await store.put('k', { v: 'two' });
      await writeFile(fileOf(dir, 'k'), older);
      expectTampered(await rejectionOf(store.reseal('k')), 'k', /was rolled back/);
      const result = await store.reseal('k', { accept: true });
      expect(result).to.include({ name: 'k', outcome: 'accepted', generation: 3 });
      expect(result.problem).to.match(/^entry "k" was rolled back/);
      // The instance that read generation 2 accepts generation 3, and so does a fresh one.
      expect((await store.get('k')).properties.v).to.equal('one');
      expect((await new LocalStore(dir, key).get('k')).properties.v).to.equal('one');
    });

    it('never accepts a version that does not decrypt', async () => {
      await store.put('k', { v: 'one' });
      const raw = await readRaw(dir, 'k');
      const v = raw.versions[0] as RawVersion & { ciphertext: string };
      const bytes = Buffer.from(v.ciphertext, 'base64');
      bytes[0] = (bytes[0] ?? 0) ^ 1;
      v.ciphertext = bytes.toString('base64');
      await writeRaw(dir, 'k', raw);
      expectTampered(
        await rejectionOf(store.reseal('k', { accept: true })),
        'k',
        /^entry "k" version 1 failed authentication/,
      );
    });

    it('rebuilds a removed manifest only with --accept', async () => {
      await store.put('a', { v: '1' });
      await store.put('b', { v: '2' });
      await unlink(join(dir, 'manifest.json'));
      const cli = new LocalStore(dir, key);
      const refused = await cli.resealAll();
      expect(refused.map((r) => ('error' in r ? r.error.message : r.outcome))).to.satisfy((m: string[]) =>
        m.every((x) => /manifest\.json is missing/.test(x)),
      );
      const accepted = await cli.resealAll({ accept: true });
      expect(accepted.map((r) => ('error' in r ? r.error.message : r.outcome))).to.deep.equal(['current', 'current']);
      expect((await readManifest(dir)).entries.map((e) => [e.name, e.generation])).to.deep.equal([
        ['a', 1],
        ['b', 1],
      ]);
      expect((await new LocalStore(dir, key).get('b')).properties.v).to.equal('2');
    });
  });
});

/** The master key of the format-1 fixtures (a test key, nothing else uses it). */
const FIXTURE_KEY = Buffer.from('5ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2e75ec2', 'hex');

describe('local store written in format 1 (before the manifest)', () => {
  // fixtures/format1 was written by the previous store code (commit adb8663): db/prod (2 versions),
  // api/token (2 versions, the first with a request token), app/flags; fixtures/format1-older holds
  // db/prod and api/token as they were after their first version.
  const fixture = join(import.meta.dirname, 'fixtures', 'format1');
  const older = join(import.meta.dirname, 'fixtures', 'format1-older');
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'secretsync-format1-'));
    await cp(fixture, dir, { recursive: true });
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is read as before, and reading writes nothing', async () => {
    const store = new LocalStore(dir, FIXTURE_KEY);
    await store.verifyMasterKey();
    expect((await store.get('db/prod')).properties).to.deep.equal({ user: 'app', password: 'format1-password-v2' });
    expect((await store.get('db/prod', 1)).properties.password).to.equal('format1-password-v1');
    expect((await store.history('api/token')).map((v) => v.version)).to.deep.equal([1, 2]);
    expect((await store.list()).map((e) => [e.name, e.latestVersion])).to.deep.equal([
      ['api/token', 2],
      ['app/flags', 1],
      ['db/prod', 2],
    ]);
    expect(await readdir(dir)).to.not.include('manifest.json');
  });

  it('the first write creates the manifest, rewrites that entry in format 2 and pins the others by digest', async () => {
    const store = new LocalStore(dir, FIXTURE_KEY);
    const flagsBefore = await readFile(fileOf(dir, 'app/flags'));
    expect(await store.patch('db/prod', { password: 'format2-password' })).to.deep.equal({ version: 3 });
    const raw = await readRaw(dir, 'db/prod');
    expect(raw).to.include({ format: 2, generation: 1 });
    expect(raw.versions.map((v) => v.version)).to.deep.equal([1, 2, 3]);
    expect((await readRaw(dir, 'app/flags')).format).to.equal(1);
    const manifest = await readManifest(dir);
    expect(manifest.entries).to.deep.include({
      name: 'app/flags',
      generation: 0,
      digest: createHash('sha256').update(flagsBefore).digest('hex'),
    });
    const reader = new LocalStore(dir, FIXTURE_KEY);
    expect((await reader.get('db/prod', 1)).properties.password).to.equal('format1-password-v1');
    expect((await reader.get('db/prod')).properties).to.deep.equal({ user: 'app', password: 'format2-password' });
    // A retry of a put made before the upgrade is still recognised by its token.
    expect(await reader.put('api/token', { value: 'again' }, { requestToken: 'tok-1' })).to.deep.equal({ version: 3 });
  });

  it('after the upgrade, an older format-1 copy of an entry is detected, migrated or not', async () => {
    const store = new LocalStore(dir, FIXTURE_KEY);
    await store.put('app/flags', { a: 'x' }); // creates the manifest; db/prod and api/token stay format 1
    await store.put('api/token', { value: 'format2-token' });
    await cp(fileOf(older, 'db/prod'), fileOf(dir, 'db/prod'));
    await cp(fileOf(older, 'api/token'), fileOf(dir, 'api/token'));
    const reader = new LocalStore(dir, FIXTURE_KEY);
    expectTampered(
      await rejectionOf(reader.get('db/prod')),
      'db/prod',
      /^entry "db\/prod" was replaced: its file differs from the one the store manifest records for generation 0/,
    );
    expectTampered(
      await rejectionOf(reader.get('api/token')),
      'api/token',
      /^entry "api\/token" was rolled back: its file holds generation 0, the store manifest records generation 1/,
    );
  });

  it('reseal upgrades every entry to format 2 with its versions intact', async () => {
    const store = new LocalStore(dir, FIXTURE_KEY);
    const results = await store.resealAll();
    expect(results.map((r) => ('error' in r ? r.error.message : [r.name, r.outcome, r.generation]))).to.deep.equal([
      ['api/token', 'upgraded', 1],
      ['app/flags', 'upgraded', 1],
      ['db/prod', 'upgraded', 1],
    ]);
    for (const f of (await readdir(dir)).filter((n) => n !== 'manifest.json')) {
      expect((JSON.parse(await readFile(join(dir, f), 'utf8')) as RawFile).format, f).to.equal(2);
    }
    const reader = new LocalStore(dir, FIXTURE_KEY);
    expect((await reader.get('db/prod', 1)).properties.password).to.equal('format1-password-v1');
    expect((await reader.get('api/token')).properties.value).to.equal('format1-token-v2');
    expect((await store.resealAll()).map((r) => ('error' in r ? r.error.message : r.outcome))).to.deep.equal([
      'current',
      'current',
      'current',
    ]);
  });

  it('a wrong key is refused on the first write instead of starting a manifest under it', async () => {
    const err = await rejectionOf(new LocalStore(dir, randomBytes(32)).put('new/entry', { v: 'x' }));
    expect(err.message).to.match(/^the master key does not match the store: entry "[^"]+" version \d+ was written/);
    expect(await readdir(dir)).to.not.include('manifest.json');
  });
});
