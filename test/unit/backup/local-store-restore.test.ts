// Restoring local store files from a backup next to the store's rollback
// detection: the manifest travels with the entries, a restore into an empty
// directory reads, and a restore that puts back what the store's manifest
// says is older is reported (and refused when read) instead of passing silently.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportLocalStore, exportLocalStoreManifest } from '../../../src/backup/export.js';
import type { BackupPayload } from '../../../src/backup/format.js';
import { restoreLocalStore } from '../../../src/backup/import.js';
import { LocalStore, StoreTamperedError } from '../../../src/providers/local/store.js';
import { rejectionOf } from '../helpers/index.js';

describe('backup and restore of a local store with a manifest', () => {
  let tmp: string;
  let source: string;
  let key: Buffer;
  let store: LocalStore;
  let backup: BackupPayload;

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'secretsync-restore-local-'));
    source = join(tmp, 'source');
    key = randomBytes(32);
    store = new LocalStore(source, key);
    await store.put('a', { v: 'a1' });
    await store.put('b', { v: 'b1' });
    // As exportCluster does: the manifest first, then the entries.
    const { manifest } = await exportLocalStoreManifest(source);
    backup = { objects: [], localStore: await exportLocalStore(source), localStoreManifest: manifest };
    await store.put('a', { v: 'a2' });
  });

  afterEach(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  const outcomes = (items: { what: string; outcome: string; note?: string }[]) =>
    items.map((i) => `${i.outcome} ${i.what}${i.note ? ` (${i.note})` : ''}`).sort();

  it('the backup holds the manifest; into an empty directory the restored store reads', async () => {
    expect(backup.localStoreManifest).to.be.a('string');
    const target = join(tmp, 'target');
    const items = await restoreLocalStore(backup, { localStoreDir: target });
    expect(outcomes(items)).to.have.members([
      'created local store entry a',
      'created local store entry b',
      'created local store manifest',
    ]);
    const restored = new LocalStore(target, key);
    expect((await restored.get('a')).properties.v).to.equal('a1');
    expect((await restored.get('b')).properties.v).to.equal('b1');
    await restored.put('a', { v: 'a3' });
    expect((await restored.get('a')).properties.v).to.equal('a3');
  });

  it('over the newer store: left alone by default; with --overwrite-local-store the store goes back as a whole', async () => {
    expect(outcomes(await restoreLocalStore(backup, { localStoreDir: source }))).to.have.members([
      'kept local store entry a (its file differs from the backup; --overwrite-local-store replaces it)',
      'unchanged local store entry b',
      "kept local store manifest (the directory's manifest differs from the backup's; --overwrite-local-store replaces it, taking the whole store back to the backup)",
    ]);
    expect((await new LocalStore(source, key).get('a')).properties.v).to.equal('a2');

    const items = await restoreLocalStore(backup, { localStoreDir: source, overwriteLocalStore: true });
    expect(outcomes(items)).to.have.members([
      'changed local store entry a',
      'unchanged local store entry b',
      'changed local store manifest',
    ]);
    expect((await new LocalStore(source, key).get('a')).properties.v).to.equal('a1');
    // The instance that read the newer store refuses the rollback it did not make.
    expect(await rejectionOf(store.get('a'))).to.be.instanceOf(StoreTamperedError);
  });

  it('an entry deleted since the backup, restored without the manifest, is reported and refused until reseal --accept', async () => {
    await store.delete('b');
    const items = await restoreLocalStore(backup, { localStoreDir: source });
    const b = items.find((i) => i.what === 'local store entry b');
    expect(b?.outcome).to.equal('created');
    expect(b?.note).to.match(
      /^the store will refuse it as tampered: entry "b" was deleted at generation 1, and an older copy of its file \(generation 1\) was put back;/,
    );
    const reader = new LocalStore(source, key);
    expect(await rejectionOf(reader.get('b'))).to.be.instanceOf(StoreTamperedError);
    expect(await reader.reseal('b', { accept: true })).to.include({ outcome: 'accepted' });
    expect((await reader.get('b')).properties.v).to.equal('b1');
  });
});

describe('backup and restore of a large local store (manifest journal)', () => {
  let tmp: string;
  let source: string;
  let key: Buffer;
  let store: LocalStore;
  let backup: BackupPayload;
  // From two entries on, writes go to manifest.journal (see src/providers/local/store.ts).
  const options = { journalMinEntries: 2 };

  beforeEach(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'secretsync-restore-journal-'));
    source = join(tmp, 'source');
    key = randomBytes(32);
    store = new LocalStore(source, Buffer.from(key), options);
    await store.put('a', { v: 'a1' });
    await store.put('b', { v: 'b1' });
    await store.put('a', { v: 'a2' });
    await store.delete('b');
    const { manifest, journal } = await exportLocalStoreManifest(source);
    backup = {
      objects: [],
      localStore: await exportLocalStore(source),
      localStoreManifest: manifest,
      localStoreManifestJournal: journal,
    };
  });

  afterEach(async () => {
    store.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('the backup holds the journal with the manifest, and the restored store reads as the source did', async () => {
    expect(backup.localStoreManifestJournal?.split('\n').filter((l) => l !== '')).to.have.length(2);
    const target = join(tmp, 'target');
    await restoreLocalStore(backup, { localStoreDir: target });
    const restored = new LocalStore(target, Buffer.from(key), options);
    expect((await restored.get('a')).properties.v).to.equal('a2');
    expect((await rejectionOf(restored.get('b'))).message).to.match(/not found/);
    restored.close();
  });

  it("with --overwrite-local-store replaces the directory's longer journal too, so the store reads as backed up", async () => {
    await store.put('a', { v: 'a3' });
    const items = await restoreLocalStore(backup, { localStoreDir: source, overwriteLocalStore: true });
    expect(items.map((i) => `${i.outcome} ${i.what}`)).to.include.members([
      'changed local store entry a',
      'changed local store manifest',
    ]);
    const restored = new LocalStore(source, Buffer.from(key), options);
    expect((await restored.get('a')).properties.v).to.equal('a2');
    restored.close();
  });

  it('an old copy of an entry the journal moved past is reported as one the store will refuse', async () => {
    const older = { ...backup, localStore: backup.localStore?.map((e) => ({ ...e })) };
    const target = join(tmp, 'target');
    await restoreLocalStore(backup, { localStoreDir: target });
    // The entry file of "a" as it was at generation 1, restored over the directory with the journal's manifest.
    const first = new LocalStore(join(tmp, 'first'), Buffer.from(key), options);
    await first.put('a', { v: 'a1' });
    first.close();
    const [oldA] = await exportLocalStore(join(tmp, 'first'));
    older.localStore = [oldA as { name: string; file: string }];
    const items = await restoreLocalStore(older, { localStoreDir: target, overwriteLocalStore: true });
    const a = items.find((i) => i.what === 'local store entry a');
    expect(a?.note).to.match(
      /the store will refuse it as tampered: entry "a" was rolled back: its file holds generation 1, the store manifest records generation 2/,
    );
  });
});
