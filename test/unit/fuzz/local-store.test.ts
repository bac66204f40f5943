// Fuzzing how the local store (src/providers/local/store.ts) reads its files:
// entry files and manifest.json are bytes on a volume that someone else may
// have written to, restored, or damaged. Whatever they hold, a read ends in
// one of the store's own typed errors, with a bounded one-line message that
// quotes no value and nothing but names from the file; and a file that differs
// from the one the store wrote is never read as valid.
import { expect } from 'chai';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  LocalStore,
  LocalStoreError,
  MANIFEST_FILE,
  MasterKeyMismatchError,
  StoreTamperedError,
  peekEntryFile,
  peekManifestRecords,
  rollbackProblem,
} from '../../../src/providers/local/store.js';
import { KeyNotFoundError } from '../../../src/providers/provider.js';
import { assertTypedError, jsonMutation, mutate, mutateJson, mutation, runs, thrownBy, timeoutFor } from './fuzz.js';

const KEY = Buffer.alloc(32, 0x5e);
const VALUES = {
  first: 'correct-horse-battery-staple',
  second: 'Tr0ub4dor&3-second-version',
  token: 'tok_live_51HxYz-token-value',
};
const STORE_ERRORS = [LocalStoreError, StoreTamperedError, MasterKeyMismatchError, KeyNotFoundError] as const;
/** Where the fuzzed stores live: memory when the machine has it, so runs do not wait for a disk. */
const SCRATCH = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const fileName = (name: string) => `${createHash('sha256').update(name).digest('hex')}.json`;

type Outcome = { ok: unknown } | { error: unknown };

/** Every read the operator and the CLI make, each on its own: one refusal does not hide another read's result. */
async function readEverything(dir: string): Promise<Record<string, Outcome>> {
  const store = new LocalStore(dir, KEY, { createDirectory: false });
  const attempt = async (fn: () => Promise<unknown>): Promise<Outcome> => {
    try {
      return { ok: await fn() };
    } catch (error) {
      return { error };
    }
  };
  const out: Record<string, Outcome> = {};
  out['get db/prod'] = await attempt(() => store.get('db/prod'));
  out['get db/prod 1'] = await attempt(() => store.get('db/prod', 1));
  out['history db/prod'] = await attempt(() => store.history('db/prod'));
  out['get app'] = await attempt(() => store.get('app'));
  out['get gone'] = await attempt(() => store.get('gone'));
  out.list = await attempt(() => store.list());
  out.verify = await attempt(() => store.verifyMasterKey());
  store.close();
  return out;
}

/** Strings of the input that must never appear in a message: anything that is not a plain name. */
function unquotable(value: unknown): string[] {
  const out: string[] = [...Object.values(VALUES)];
  const walk = (v: unknown) => {
    if (typeof v === 'string') {
      if (!/^[A-Za-z0-9._/-]*$/.test(v)) out.push(v);
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object' && v !== null) Object.values(v).forEach(walk);
  };
  walk(value);
  return out;
}

function assertStoreError(err: unknown, secrets: string[]): void {
  assertTypedError(err, STORE_ERRORS, secrets);
}

describe('fuzz: local store files', function () {
  this.timeout(timeoutFor(30_000));

  /** The files of a store with two versions of db/prod, one of app and a deleted entry, by file name. */
  let files: Map<string, Buffer>;
  let expected: Record<string, Outcome>;
  const ENTRY_FILE = fileName('db/prod');

  before(async () => {
    const dir = await mkdtemp(join(SCRATCH, 'secretsync-fuzz-store-'));
    const store = new LocalStore(dir, KEY);
    await store.put('db/prod', { password: VALUES.first });
    await store.put('db/prod', { password: VALUES.second, user: 'app' }, { requestToken: 'req-2' });
    await store.put('app', { token: VALUES.token });
    await store.put('gone', { x: 'y' });
    await store.delete('gone');
    store.close();
    files = new Map();
    for (const n of await readdir(dir)) files.set(n, await readFile(join(dir, n)));
    expect([...files.keys()].sort()).to.deep.equal([fileName('app'), ENTRY_FILE, MANIFEST_FILE].sort());
    expected = await readEverything(dir);
    for (const [op, outcome] of Object.entries(expected))
      if (op !== 'get gone') expect(outcome, op).to.have.property('ok');
    await rm(dir, { recursive: true, force: true });
  });

  /** A copy of the store with `changed` files replaced, read back in full. */
  async function readWith(changed: Record<string, Buffer>): Promise<Record<string, Outcome>> {
    const dir = await mkdtemp(join(SCRATCH, 'secretsync-fuzz-store-'));
    try {
      for (const [n, bytes] of files) await writeFile(join(dir, n), changed[n] ?? bytes);
      return await readEverything(dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** What a changed entry file or manifest must lead to: refusals where it is read, the original answers elsewhere. */
  function check(outcomes: Record<string, Outcome>, changed: 'entry' | 'manifest', secrets: string[]): void {
    for (const [op, outcome] of Object.entries(outcomes)) {
      if ('error' in outcome) {
        assertStoreError(outcome.error, secrets);
        continue;
      }
      // Every read reads the manifest; the entry file is read by its own gets, its history and the listing
      // (verifyMasterKey only compares key ids, which the entry's MAC does not need to cover to be safe).
      const readsChanged = changed === 'manifest' || op === 'list' || op.includes('db/prod');
      if (readsChanged)
        throw new Error(`${op} accepted a changed ${changed} file: ${JSON.stringify(outcome.ok).slice(0, 200)}`);
      expect(outcome.ok, op).to.deep.equal((expected[op] as { ok: unknown }).ok);
    }
  }

  it('reads arbitrary bytes in an entry file or the manifest as a typed refusal, never a crash', async () => {
    const text = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
      fc.string({ maxLength: 200, unit: 'grapheme' }).map((s) => Buffer.from(s)),
      fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
      fc
        .record({
          format: fc.oneof(fc.constantFrom(1, 2), fc.jsonValue({ maxDepth: 2 })),
          name: fc.oneof(fc.constantFrom('db/prod', 'app'), fc.string({ maxLength: 300 })),
          keyId: fc.oneof(fc.constant(new LocalStore(SCRATCH, KEY).keyId), fc.string({ maxLength: 300 })),
          generation: fc.oneof(fc.integer(), fc.jsonValue({ maxDepth: 1 })),
          counter: fc.oneof(fc.integer(), fc.jsonValue({ maxDepth: 1 })),
          versions: fc.array(fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 })), {
            maxLength: 3,
          }),
          entries: fc.array(fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 })), {
            maxLength: 3,
          }),
          mac: fc.string({ maxLength: 60 }),
        })
        .map((v) => Buffer.from(JSON.stringify(v))),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(ENTRY_FILE, MANIFEST_FILE), text, async (target, bytes) => {
        const outcomes = await readWith({ [target]: bytes });
        const secrets = unquotable(bytes.toString('utf8'));
        check(
          outcomes,
          target === MANIFEST_FILE ? 'manifest' : 'entry',
          bytes.equals(files.get(target) as Buffer) ? [] : secrets,
        );
      }),
      runs(11, 150),
    );
  });

  it('refuses every byte-level change of an entry file, and of the manifest unless its JSON is unchanged', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(ENTRY_FILE, MANIFEST_FILE),
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        async (target, ms) => {
          const original = files.get(target) as Buffer;
          const changed = ms.reduce(mutate, original);
          fc.pre(!changed.equals(original));
          const outcomes = await readWith({ [target]: changed });
          if (target === MANIFEST_FILE && sameJson(changed, original)) {
            for (const [op, outcome] of Object.entries(outcomes)) expect(outcome, op).to.deep.equal(expected[op]);
            return;
          }
          check(outcomes, target === MANIFEST_FILE ? 'manifest' : 'entry', Object.values(VALUES));
        },
      ),
      runs(12, 200),
    );
  });

  it('refuses every structural change of an entry file or the manifest (fields replaced, removed, repeated, swapped)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(ENTRY_FILE, MANIFEST_FILE),
        fc.array(jsonMutation, { minLength: 1, maxLength: 2 }),
        fc.boolean(),
        async (target, ms, pretty) => {
          const original = JSON.parse((files.get(target) as Buffer).toString('utf8')) as unknown;
          const doc = ms.reduce(mutateJson, original);
          const text = Buffer.from(JSON.stringify(doc, null, pretty ? 2 : undefined) ?? 'null');
          const outcomes = await readWith({ [target]: text });
          if (target === MANIFEST_FILE && sameJson(text, files.get(target) as Buffer)) {
            for (const [op, outcome] of Object.entries(outcomes)) expect(outcome, op).to.deep.equal(expected[op]);
            return;
          }
          // The entry file's own bytes are pinned by the manifest: even an unchanged JSON value re-serialised is refused.
          check(outcomes, target === MANIFEST_FILE ? 'manifest' : 'entry', unquotable(doc));
        },
      ),
      runs(13, 200),
    );
  });

  it('peeks and judges arbitrary text without throwing (restore reads files without the master key)', () => {
    const records = peekManifestRecords((files.get(MANIFEST_FILE) as Buffer).toString('utf8'));
    expect(records?.size).to.equal(3);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? ''),
          fc
            .tuple(fc.constantFrom(ENTRY_FILE, MANIFEST_FILE), fc.array(jsonMutation, { minLength: 1, maxLength: 2 }))
            .map(
              ([t, ms]) =>
                JSON.stringify(ms.reduce(mutateJson, JSON.parse((files.get(t) as Buffer).toString('utf8')))) ?? '',
            ),
        ),
        (text) => {
          const entry = peekEntryFile(text);
          const manifest = peekManifestRecords(text);
          if (entry) {
            expect(Number.isSafeInteger(entry.generation) && entry.generation >= 0).to.equal(true);
            const problem = rollbackProblem('db/prod', entry, manifest ?? records);
            if (problem !== undefined) {
              expect(problem.length).to.be.lessThan(1_000);
              expect(problem).to.not.match(/[\r\n]/);
            }
          }
        },
      ),
      runs(14, 500),
    );
  });
});

function sameJson(a: Buffer, b: Buffer): boolean {
  const parse = (x: Buffer) =>
    thrownBy(() => JSON.parse(x.toString('utf8'))) === undefined
      ? (JSON.parse(x.toString('utf8')) as unknown)
      : Symbol('invalid');
  const [x, y] = [parse(a), parse(b)];
  try {
    expect(x).to.deep.equal(y);
    return true;
  } catch {
    return false;
  }
}

describe('fuzz findings: local store files (fixed examples)', () => {
  let dir: string;
  let manifest: Record<string, unknown>;
  const entryPath = () => join(dir, fileName('db/prod'));
  const manifestPath = () => join(dir, MANIFEST_FILE);

  beforeEach(async () => {
    dir = await mkdtemp(join(SCRATCH, 'secretsync-fuzz-store-'));
    const store = new LocalStore(dir, KEY);
    await store.put('db/prod', { password: VALUES.first });
    await store.put('gone', { x: 'y' });
    await store.delete('gone');
    store.close();
    manifest = JSON.parse(await readFile(manifestPath(), 'utf8')) as Record<string, unknown>;
  });

  afterEach(() => rm(dir, { recursive: true, force: true }));

  async function refusal(): Promise<Error> {
    const store = new LocalStore(dir, KEY, { createDirectory: false });
    try {
      await store.get('db/prod');
    } catch (err) {
      assertStoreError(err, Object.values(VALUES));
      return err as Error;
    } finally {
      store.close();
    }
    throw new Error('the changed file was read as valid');
  }

  const editManifest = (edit: (m: Record<string, unknown>) => void) => {
    const copy = structuredClone(manifest);
    edit(copy);
    return writeFile(manifestPath(), JSON.stringify(copy, null, 2));
  };

  it('refuses a manifest with a field the store never writes (the MAC covers meaning, not bytes)', async () => {
    await editManifest((m) => (m.format_ = 2));
    expect((await refusal()).message).to.include('unexpected fields');
  });

  it('refuses a tombstone that also carries a digest', async () => {
    await editManifest((m) => {
      for (const e of m.entries as Record<string, unknown>[]) if (e.deleted) e.digest = '0'.repeat(64);
    });
    expect(await refusal()).to.be.instanceOf(StoreTamperedError);
  });

  for (const [what, edit] of [
    // 32 bytes in base64 leave two spare bits in the last character: four characters decode alike.
    [
      'with another last character that decodes to the same bytes',
      (mac: string) => `${mac.slice(0, 42)}${BASE64[BASE64.indexOf(mac[42] as string) ^ 1]}=`,
    ],
    ['with a character Node skips when decoding', (mac: string) => `${mac.slice(0, 10)}!${mac.slice(10)}`],
    ['without its padding', (mac: string) => mac.slice(0, -1)],
  ] as const) {
    it(`refuses a manifest whose MAC is written ${what}`, async () => {
      const mac = manifest.mac as string;
      const edited = edit(mac);
      expect(Buffer.from(edited, 'base64').equals(Buffer.from(mac, 'base64'))).to.equal(true);
      await editManifest((m) => (m.mac = edited));
      expect(await refusal()).to.be.instanceOf(StoreTamperedError);
    });
  }

  it('refuses an entry file whose format is deeply nested with a LocalStoreError, not a stack overflow', async () => {
    const raw = JSON.parse(await readFile(entryPath(), 'utf8')) as Record<string, unknown>;
    const text = JSON.stringify(raw).replace('"format":2', `"format":${'['.repeat(20_000)}${']'.repeat(20_000)}`);
    await writeFile(entryPath(), text);
    const err = await refusal();
    expect(err).to.be.instanceOf(LocalStoreError);
    expect(err.message).to.include('unsupported format');
  });

  for (const [field, value] of [
    ['name', `db/prod\n${'x'.repeat(100_000)}`],
    ['keyId', `${'k'.repeat(100_000)}\nforged log line`],
  ] as const) {
    it(`keeps the message bounded and on one line when an entry file's ${field} is 100 KB over two lines`, async () => {
      const raw = JSON.parse(await readFile(entryPath(), 'utf8')) as Record<string, unknown> & {
        versions: Record<string, unknown>[];
      };
      if (field === 'name') raw.name = value;
      else for (const v of raw.versions) v.keyId = value;
      await writeFile(entryPath(), JSON.stringify(raw));
      const err = await refusal();
      expect(err.message).to.not.include('xxxxxxxx').and.not.include('kkkkkkkk');
    });
  }

  it('keeps the message bounded when the manifest names another master key id of 100 KB', async () => {
    await editManifest((m) => (m.keyId = `${'k'.repeat(100_000)}\nforged`));
    const err = await refusal();
    expect(err.message).to.not.include('kkkkkkkk');
  });
});
