// Fuzzing backup files (src/backup/format.ts) and what a restore reads before
// applying one (src/backup/import.ts): a backup file is handed to `secretsync
// restore` and `backup inspect` by a person who may have been given a forged
// one. Whatever its bytes, reading it ends in a BackupFileError with a bounded
// one-line message that says nothing was applied and quotes no value; a file
// that differs in any byte from the one written is never opened; a restore's
// look at local store files (the backup's and the directory's) ends in a
// RestorePreflightError at worst.
import { expect } from 'chai';
import fc from 'fast-check';
import { hkdfSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BackupFileError,
  MAGIC_LINE,
  NOTHING_APPLIED,
  describeHeader,
  openBackup,
  readHeader,
  sealBackup,
  type BackupContents,
  type BackupKey,
  type BackupPayload,
} from '../../../src/backup/format.js';
import { RestorePreflightError, restoreLocalStore } from '../../../src/backup/import.js';
import { seal } from '../../../src/crypto/aead.js';
import { FakeKms } from '../providers/aws-kms/fake-kms.js';
import {
  assertTypedError,
  jsonMutation,
  mutate,
  mutateJson,
  mutation,
  rejectionOf,
  runs,
  thrownBy,
  timeoutFor,
} from './fuzz.js';

const SECRET = 'pw-9f8e7d6c5b4a-secret';
const payload: BackupPayload = {
  objects: [
    {
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'SecretStore',
      metadata: { name: 'local', namespace: 'team-a' },
      spec: { provider: { local: { path: '/store', masterKeySecretRef: { name: 'mk' } } } },
    },
  ],
  syncedSecrets: [
    {
      namespace: 'team-a',
      name: 'db',
      type: 'Opaque',
      data: { password: Buffer.from(SECRET).toString('base64') },
      labels: {},
      annotations: {},
      immutable: false,
    },
  ],
};
const contents: BackupContents = {
  secretStores: 1,
  clusterSecretStores: 0,
  replicationTargets: null,
  managedSecrets: 0,
  syncedSecrets: 1,
};
const options = { secretsyncVersion: '0.1.0', source: { server: 'https://127.0.0.1:6443' }, contents };
const keyFile = Buffer.alloc(32, 0x4b);
const KEY: BackupKey = { mode: 'key-file', keyFile };
const SCRATCH = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

/** A backup's error: a BackupFileError on one bounded line that ends in "nothing was applied". */
function assertBackupError(err: unknown, secrets: string[] = []): void {
  assertTypedError(err, [BackupFileError], [SECRET, Buffer.from(SECRET).toString('base64'), ...secrets]);
  expect((err as Error).message).to.include(NOTHING_APPLIED);
}

/** The lines `backup inspect` prints must be lines: a forged header cannot add lines or control characters. */
function assertPrintable(lines: string[]): void {
  for (const line of lines) {
    expect(line.length, line.slice(0, 100)).to.be.at.most(1_000);
    // eslint-disable-next-line no-control-regex
    expect(line).to.not.match(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
  }
}

describe('fuzz: backup files', function () {
  this.timeout(timeoutFor(30_000));
  let file: Buffer;
  let kmsFile: Buffer;
  const kms = new FakeKms();
  const kmsKeyId = kms.createKey();
  const kmsKey: BackupKey = { mode: 'kms', kms, keyId: kmsKeyId };

  before(async () => {
    file = await sealBackup(payload, KEY, options);
    kmsFile = await sealBackup(payload, kmsKey, options);
    expect((await openBackup(file, KEY)).payload).to.deep.equal(payload);
  });

  it('reads arbitrary bytes as a BackupFileError, never a crash', async () => {
    const magic = Buffer.from(`${MAGIC_LINE}\n`);
    const bytes = fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a));
    const input = fc.oneof(
      bytes,
      bytes.map((b) => Buffer.concat([magic, b])),
      fc
        .tuple(fc.jsonValue({ maxDepth: 3 }), fc.string({ maxLength: 80 }))
        .map(([h, body]) => Buffer.from(`${MAGIC_LINE}\n${JSON.stringify(h)}\n${body}\n`)),
    );
    await fc.assert(
      fc.asyncProperty(input, fc.boolean(), async (bytes, useKms) => {
        const headerError = thrownBy(() => assertPrintable(describeHeader(readHeader(bytes))));
        if (headerError !== undefined) assertBackupError(headerError);
        assertBackupError(await rejectionOf(() => openBackup(bytes, useKms ? kmsKey : KEY)));
      }),
      runs(21, 500),
    );
  });

  it('refuses every byte-level change of a backup, in both key modes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(mutation, { minLength: 1, maxLength: 3 }), async (useKms, ms) => {
        const original = useKms ? kmsFile : file;
        const changed = ms.reduce(mutate, original);
        fc.pre(!changed.equals(original));
        assertBackupError(await rejectionOf(() => openBackup(changed, useKms ? kmsKey : KEY)));
      }),
      runs(22, 300),
    );
  });

  it('refuses every structural change of the header, and prints a forged header as plain lines', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(jsonMutation, { minLength: 1, maxLength: 2 }),
        fc.constantFrom<BackupKey['mode']>('kms', 'key-file'),
        async (useKms, ms, keyMode) => {
          const original = useKms ? kmsFile : file;
          const [magic, header, body] = original.toString('utf8').split('\n') as [string, string, string];
          const forged = JSON.stringify(ms.reduce(mutateJson, JSON.parse(header))) ?? 'null';
          fc.pre(forged !== header);
          const changed = Buffer.from(`${magic}\n${forged}\n${body}\n`);
          const inspected = thrownBy(() => assertPrintable(describeHeader(readHeader(changed))));
          if (inspected !== undefined) assertBackupError(inspected);
          const err = await rejectionOf(() => openBackup(changed, keyMode === 'kms' ? kmsKey : KEY));
          assertBackupError(err);
        },
      ),
      runs(23, 300),
    );
  });

  it('refuses a payload that authenticates but is not what secretsync writes, with a BackupFileError', async () => {
    // Someone with the key, but not secretsync, wrote it: any JSON, or not even gzip.
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue({ maxDepth: 4 }),
          fc.record({
            objects: fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 3 }),
            localStore: fc.option(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 2 }), { nil: undefined }),
            syncedSecrets: fc.option(fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 2 }), { nil: undefined }),
          }),
        ),
        fc.boolean(),
        async (value, gzip) => {
          const forged = gzip
            ? await sealBackup(value as unknown as BackupPayload, KEY, options)
            : await sealRaw(Buffer.from(JSON.stringify(value) ?? ''));
          const err = await rejectionOf(() => openBackup(forged, KEY));
          if (err !== undefined) assertBackupError(err);
        },
      ),
      runs(24, 200),
    );
  });

  it('plans a local store restore from arbitrary entry files and manifests, refusing only with RestorePreflightError', async () => {
    const keyId = fc.oneof(
      fc.constantFrom('0123456789abcdef', 'fedcba9876543210', 'line\nbreak', 'x'.repeat(5_000)),
      fc.string({ maxLength: 20 }),
    );
    const text = fc.oneof(
      fc.string({ maxLength: 100 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? ''),
      fc
        .record({
          keyId: keyId,
          versions: fc.oneof(
            fc.array(fc.record({ keyId: fc.oneof(keyId, fc.jsonValue({ maxDepth: 1 })) })),
            fc.jsonValue({ maxDepth: 2 }),
          ),
        })
        .map((v) => JSON.stringify(v)),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ name: fc.oneof(fc.constantFrom('db/prod', 'app'), fc.string({ maxLength: 20 })), file: text }),
          {
            maxLength: 3,
          },
        ),
        fc.option(text, { nil: undefined }),
        fc.option(text, { nil: undefined }),
        fc.option(text, { nil: undefined }),
        async (entries, manifest, onDiskEntry, onDiskManifest) => {
          const dir = await mkdtemp(join(SCRATCH, 'secretsync-fuzz-restore-'));
          try {
            if (onDiskEntry !== undefined) await writeFile(join(dir, `${'a'.repeat(64)}.json`), onDiskEntry);
            if (onDiskManifest !== undefined) await writeFile(join(dir, 'manifest.json'), onDiskManifest);
            const p: BackupPayload = { objects: [], localStore: entries, localStoreManifest: manifest };
            let items: Awaited<ReturnType<typeof restoreLocalStore>> | undefined;
            const err = await rejectionOf(async () => {
              items = await restoreLocalStore(p, { localStoreDir: dir, dryRun: true });
            });
            if (err !== undefined) {
              assertTypedError(err, [RestorePreflightError]);
              return;
            }
            for (const item of items ?? []) {
              const note = item.note ?? '';
              expect(note.length + item.what.length).to.be.at.most(2_000);
              expect(`${item.what} ${note}`).to.not.match(/[\r\n]/);
            }
          } finally {
            await rm(dir, { recursive: true, force: true });
          }
        },
      ),
      runs(25, 150),
    );
  });
});

/** A key-file backup whose (authenticated) payload is `plaintext` as it is, not gzipped by sealBackup. */
async function sealRaw(plaintext: Buffer): Promise<Buffer> {
  // Take a real file's header (its salt fixes the data key), and seal the given bytes under it.
  const real = await sealBackup({ objects: [] }, KEY, {
    ...options,
    contents: { ...contents, secretStores: 0, syncedSecrets: undefined },
  });
  const headerEnd = real.indexOf(0x0a, real.indexOf(0x0a) + 1) + 1;
  const head = real.subarray(0, headerEnd);
  const header = readHeader(real);
  if (header.encryption.mode !== 'key-file') throw new Error('expected a key-file backup');
  const dataKey = Buffer.from(
    hkdfSync('sha256', keyFile, Buffer.from(header.encryption.salt, 'base64'), 'secretsync-backup/v1 payload key', 32),
  );
  const sealed = seal(dataKey, plaintext, head);
  const body = Buffer.concat([sealed.iv, sealed.tag, sealed.ciphertext]).toString('base64');
  return Buffer.concat([head, Buffer.from(`${body}\n`)]);
}

describe('fuzz findings: backup files (fixed examples)', () => {
  const FLOOD = `${'x'.repeat(100_000)}\n\u001b[2Jforged line`;

  /** `file` with its header edited (the payload left as it was: the header is not authenticated until opened). */
  function withHeader(
    file: Buffer,
    edit: (h: Record<string, unknown> & { encryption: Record<string, unknown> }) => void,
  ) {
    const [magic, header, body] = file.toString('utf8').split('\n') as [string, string, string];
    const h = JSON.parse(header) as Record<string, unknown> & { encryption: Record<string, unknown> };
    edit(h);
    return Buffer.from(`${magic}\n${JSON.stringify(h)}\n${body}\n`);
  }

  it('refuses a key-file fingerprint that is not one, instead of quoting 100 KB of it', async () => {
    const file = await sealBackup(payload, KEY, options);
    const forged = withHeader(file, (h) => (h.encryption.keyFingerprint = FLOOD));
    const err = await rejectionOf(() => openBackup(forged, KEY));
    assertBackupError(err);
    expect((err as Error).message).to.include("header's encryption is missing or malformed");
  });

  it('quotes a forged KMS key id as one bounded line', async () => {
    const kms = new FakeKms();
    const file = await sealBackup(payload, { mode: 'kms', kms, keyId: kms.createKey() }, options);
    const forged = withHeader(file, (h) => (h.encryption.keyId = FLOOD));
    for (const key of [KEY, { mode: 'kms' as const, kms }]) {
      const err = await rejectionOf(() => openBackup(forged, key));
      assertBackupError(err);
      expect((err as Error).message).to.not.include('forged line\n');
    }
    assertPrintable(describeHeader(readHeader(forged)));
  });

  it('prints a forged header as plain lines: no line breaks or terminal escapes from its fields', async () => {
    const file = await sealBackup(payload, KEY, options);
    const forged = withHeader(file, (h) => {
      h.createdAt = '2026-01-01T00:00:00Z\nbackup 00000000 (verified)';
      h.secretsyncVersion = '\u001b[2J';
      h.source = { server: FLOOD, context: 'ctx\r\nline' };
    });
    const lines = describeHeader(readHeader(forged));
    assertPrintable(lines);
    expect(lines).to.have.length(6);
  });

  it('refuses a header whose source context is not text', async () => {
    const file = await sealBackup(payload, KEY, options);
    const forged = withHeader(file, (h) => (h.source = { server: 's', context: { nested: true } }));
    assertBackupError(thrownBy(() => readHeader(forged)));
  });

  it('names at most a few bounded key ids when a restore directory belongs to another store', async () => {
    const dir = await mkdtemp(join(SCRATCH, 'secretsync-fuzz-restore-'));
    try {
      for (let i = 0; i < 10; i++)
        await writeFile(
          join(dir, `${String(i).repeat(64)}.json`),
          JSON.stringify({ versions: [{ keyId: `${i}${'k'.repeat(5_000)}\nforged` }] }),
        );
      const err = await rejectionOf(() =>
        restoreLocalStore(
          {
            objects: [],
            localStore: [{ name: 'db', file: JSON.stringify({ versions: [{ keyId: '0123456789abcdef' }] }) }],
          },
          { localStoreDir: dir, dryRun: true },
        ),
      );
      assertTypedError(err, [RestorePreflightError]);
      expect((err as Error).message).to.match(/and 6 more, the backup's entries use 0123456789abcdef;/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
