import { expect } from 'chai';
import { DeadlineError, LimitError, SpecError } from '../../../../src/api/errors.js';
import { rejectionOf } from '../../helpers/index.js';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AnyStore, ClusterSecretStore, LocalProviderSpec, SecretStore } from '../../../../src/api/types.js';
import { localProvider } from '../../../../src/providers/local/index.js';
import { LocalStore, StoreTamperedError } from '../../../../src/providers/local/store.js';
import { errorInfo } from '../../../../src/api/errors.js';
import {
  KeyNotFoundError,
  ProviderConfigError,
  ProviderError,
  type ProviderClient,
  type ProviderContext,
} from '../../../../src/providers/provider.js';
import { providerFor } from '../../../../src/providers/registry.js';

/**
 * The --local-store-root of these tests: a namespaced store's directory must be
 * inside <root>/<its namespace>, so each test's store lives under ROOT/team-a.
 */
const ROOT = join(tmpdir(), 'secretsync-unit-local-root');

/** Secrets in memory, keyed "namespace/name", recording which were read. */
function memoryContext(
  secrets: Record<string, Record<string, Buffer>>,
  storeNamespace: string | undefined,
): ProviderContext & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    storeNamespace,
    allowOperatorIdentityForNamespacedStores: false,
    // The stores of these tests live under ROOT/team-a.
    policy: { allowedEndpoints: [], localStoreRoot: ROOT },
    observe: (_operation, call) => call(),
    requestServiceAccountToken: async () => {
      throw new Error('not used by the local provider');
    },
    async readSecretKey(namespace, name, key) {
      reads.push(`${namespace}/${name}/${key}`);
      const value = secrets[`${namespace}/${name}`]?.[key];
      if (value === undefined) throw new ProviderConfigError(`Secret ${namespace}/${name} has no key "${key}"`);
      return value;
    },
  };
}

function secretStore(local: LocalProviderSpec, namespace = 'team-a'): SecretStore {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'SecretStore',
    metadata: { name: 'local', namespace },
    spec: { provider: { local } },
  };
}

function clusterStore(local: LocalProviderSpec): ClusterSecretStore {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'ClusterSecretStore',
    metadata: { name: 'local' },
    spec: { provider: { local } },
  };
}

describe('local provider', () => {
  let dir: string;
  let key: Buffer;
  let ctx: ReturnType<typeof memoryContext>;
  let client: ProviderClient | undefined;

  beforeEach(async () => {
    await mkdir(join(ROOT, 'team-a'), { recursive: true });
    dir = await mkdtemp(join(ROOT, 'team-a', 'provider-'));
    key = randomBytes(32);
    ctx = memoryContext(
      {
        'team-a/store-key': { 'master-key': key, custom: Buffer.from(key.toString('base64') + '\n') },
        'ops/store-key': { 'master-key': Buffer.from(key.toString('hex')) },
        'team-a/bad-key': { 'master-key': Buffer.from('too short') },
      },
      'team-a',
    );
    const seed = new LocalStore(dir, key);
    await seed.put('db/prod', { user: 'app', password: 'pw-prod' });
    await seed.put('db/prod', { user: 'app', password: 'pw-prod-2' });
    await seed.put('db/staging', { user: 'app', password: 'pw-staging' });
    await seed.put('api/token', { token: 'tok-1' });
  });

  afterEach(async () => {
    await client?.close();
    client = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  async function connect(store: AnyStore, context: ProviderContext = ctx): Promise<ProviderClient> {
    client = await localProvider.connect(store, context);
    return client;
  }

  it('is registered as "local"', () => {
    expect(localProvider.name).to.equal('local');
    expect(providerFor({ local: { path: dir, masterKeySecretRef: { name: 'x' } } })).to.equal(localProvider);
  });

  it('reads the master key from the SecretStore’s own namespace, with key "master-key" by default', async () => {
    const c = await connect(secretStore({ path: dir, masterKeySecretRef: { name: 'store-key' } }));
    expect(ctx.reads).to.deep.equal(['team-a/store-key/master-key']);
    expect(await c.getValue({ key: 'db/prod', property: 'password' })).to.equal('pw-prod-2');
    await c.check();
  });

  it('a cancelled call reads and writes nothing and ends with the signal’s error', async () => {
    const c = await connect(secretStore({ path: dir, masterKeySecretRef: { name: 'store-key' } }));
    const controller = new AbortController();
    controller.abort(new DeadlineError('sync deadline passed'));
    const signal = controller.signal;
    for (const call of [
      () => c.getValue({ key: 'db/prod' }, { signal }),
      () => c.getProperties('db/prod', undefined, { signal }),
      () => c.find({ prefix: 'db/' }, { signal }),
      () => c.check({ signal }),
      () =>
        c.putValue?.({ key: 'db/prod', property: 'password' }, 'x', { requestToken: 't', signal }) ?? Promise.resolve(),
    ]) {
      const err = await rejectionOf(call());
      expect(err).to.be.instanceOf(DeadlineError);
      expect(err.message).to.equal('sync deadline passed');
    }
    expect((await new LocalStore(dir, key).get('db/prod')).version).to.equal(2);
    // Not even the store's Secret is read when connect is cancelled.
    const reads = ctx.reads.length;
    expect(
      await rejectionOf(
        localProvider.connect(secretStore({ path: dir, masterKeySecretRef: { name: 'store-key' } }), ctx, { signal }),
      ),
    ).to.be.instanceOf(DeadlineError);
    expect(ctx.reads.length).to.equal(reads);
  });

  it('accepts a named key holding base64 text', async () => {
    const c = await connect(secretStore({ path: dir, masterKeySecretRef: { name: 'store-key', key: 'custom' } }));
    expect(ctx.reads).to.deep.equal(['team-a/store-key/custom']);
    expect(await c.getValue({ key: 'api/token' })).to.equal('tok-1');
  });

  it('a ClusterSecretStore reads from the namespace in the ref, which it must give', async () => {
    const clusterCtx = memoryContext(
      { 'ops/store-key': { 'master-key': Buffer.from(key.toString('hex')) } },
      undefined,
    );
    const c = await connect(
      clusterStore({ path: dir, masterKeySecretRef: { name: 'store-key', namespace: 'ops' } }),
      clusterCtx,
    );
    expect(clusterCtx.reads).to.deep.equal(['ops/store-key/master-key']);
    expect(await c.getValue({ key: 'db/staging', property: 'password' })).to.equal('pw-staging');
    const err = await rejectionOf(
      localProvider.connect(clusterStore({ path: dir, masterKeySecretRef: { name: 'store-key' } }), clusterCtx),
    );
    expect(err).to.be.instanceOf(ProviderConfigError);
    expect(err.message).to.match(/namespace is required on a ClusterSecretStore/);
  });

  it('a SecretStore may not name another namespace', async () => {
    const err = await rejectionOf(
      localProvider.connect(
        secretStore({ path: dir, masterKeySecretRef: { name: 'store-key', namespace: 'ops' } }),
        ctx,
      ),
    );
    expect(err).to.be.instanceOf(ProviderConfigError);
    expect(err.message).to.match(/namespace is not allowed on a SecretStore/);
    expect(ctx.reads).to.deep.equal([]);
  });

  it('spec and master-key problems are ProviderConfigErrors that hold no key material', async () => {
    const cases: [LocalProviderSpec, RegExp][] = [
      [{ path: 'relative/dir', masterKeySecretRef: { name: 'store-key' } }, /path must be an absolute/],
      [{ path: dir, masterKeySecretRef: { name: '' } }, /masterKeySecretRef.name is required/],
      [{ path: dir, masterKeySecretRef: { name: 'missing' } }, /Secret team-a\/missing has no key "master-key"/],
      [
        { path: dir, masterKeySecretRef: { name: 'bad-key' } },
        /^key "master-key" of Secret team-a\/bad-key: master key must be 32 bytes \(raw, base64 or hex\)$/,
      ],
    ];
    for (const [spec, message] of cases) {
      const err = await rejectionOf(localProvider.connect(secretStore(spec), ctx));
      expect(err, message.source).to.be.instanceOf(ProviderConfigError);
      expect(err.message).to.match(message);
      expect(err.message).to.not.include('too short');
    }
    const noLocal = { ...secretStore({ path: dir, masterKeySecretRef: { name: 'x' } }), spec: { provider: {} } };
    expect((await rejectionOf(localProvider.connect(noLocal, ctx))).message).to.equal('spec.provider.local is not set');
  });

  describe('a connected client', () => {
    let c: ProviderClient;
    beforeEach(async () => {
      c = await connect(secretStore({ path: dir, masterKeySecretRef: { name: 'store-key' } }));
    });

    it('getValue: a property; the single value of a one-property entry; else the JSON of all properties', async () => {
      expect(await c.getValue({ key: 'db/prod', property: 'user' })).to.equal('app');
      expect(await c.getValue({ key: 'api/token' })).to.equal('tok-1');
      expect(JSON.parse(await c.getValue({ key: 'db/prod' }))).to.deep.equal({ user: 'app', password: 'pw-prod-2' });
    });

    it('getValue and getProperties honour a pinned version', async () => {
      expect(await c.getValue({ key: 'db/prod', property: 'password', version: '1' })).to.equal('pw-prod');
      expect(await c.getProperties('db/prod', '1')).to.deep.equal({ user: 'app', password: 'pw-prod' });
      expect(await c.getProperties('db/prod')).to.deep.equal({ user: 'app', password: 'pw-prod-2' });
    });

    it('missing entries, versions and properties are KeyNotFoundErrors naming them, never a value', async () => {
      const cases: [() => Promise<unknown>, string][] = [
        [() => c.getValue({ key: 'db/nope' }), 'entry "db/nope" not found'],
        [() => c.getValue({ key: 'db/prod', version: '9' }), 'entry "db/prod" has no version 9'],
        [() => c.getValue({ key: 'db/prod', property: 'host' }), 'entry "db/prod" has no property "host"'],
        [
          () => c.getValue({ key: 'db/prod', property: 'host', version: '1' }),
          'entry "db/prod" version 1 has no property "host"',
        ],
        [() => c.getProperties('../escape'), 'invalid entry name "../escape": no empty, "." or ".." path segments'],
      ];
      for (const [call, message] of cases) {
        const err = await rejectionOf(call());
        expect(err, message).to.be.instanceOf(KeyNotFoundError);
        expect(err.message).to.equal(message);
        expect(err.message).to.not.match(/pw-prod|app"/);
      }
      expect(((await rejectionOf(c.getValue({ key: 'db/nope' }))) as KeyNotFoundError).key).to.equal('db/nope');
    });

    it('a property inherited from Object.prototype is not a property', async () => {
      expect(await rejectionOf(c.getValue({ key: 'db/prod', property: 'toString' }))).to.be.instanceOf(
        KeyNotFoundError,
      );
    });

    it('find by prefix and by regular expression returns the latest properties', async () => {
      const byPrefix = await c.find({ prefix: 'db/' });
      expect([...byPrefix.keys()]).to.deep.equal(['db/prod', 'db/staging']);
      expect(byPrefix.get('db/prod')).to.deep.equal({ user: 'app', password: 'pw-prod-2' });
      const byRegexp = await c.find({ nameRegexp: 'token$|staging' });
      expect([...byRegexp.keys()]).to.deep.equal(['api/token', 'db/staging']);
      expect([...(await c.find({ prefix: 'db/', nameRegexp: 'prod' })).keys()]).to.deep.equal(['db/prod']);
      expect((await c.find({})).size).to.equal(3);
      expect((await c.find({ prefix: 'none/' })).size).to.equal(0);
      const invalid = await rejectionOf(c.find({ nameRegexp: '(' }));
      expect(invalid).to.be.instanceOf(SpecError);
      expect(invalid.message).to.match(/is not a valid RE2 regular expression: missing closing \)/);
      // RE2, not JavaScript's RegExp: no lookaround.
      expect((await rejectionOf(c.find({ nameRegexp: 'db/(?!prod)' }))).message).to.include('negative lookahead');
    });

    it('find refuses more matching entries than maxEntries (TooManyEntries, transient), counting after the regexp', async () => {
      const err = await rejectionOf(c.find({ prefix: 'db/' }, { maxEntries: 1 }));
      expect(err).to.be.instanceOf(LimitError);
      expect((err as LimitError).reason).to.equal('TooManyEntries');
      expect((err as LimitError).retry).to.equal('transient');
      expect(err.message).to.include('prefix "db/"').and.include('more than 1 entries');
      expect((await c.find({ prefix: 'db/' }, { maxEntries: 2 })).size).to.equal(2);
      expect((await c.find({ nameRegexp: 'prod' }, { maxEntries: 1 })).size).to.equal(1);
    });

    it('sees a put made after connecting', async () => {
      await new LocalStore(dir, key).put('db/prod', { user: 'app', password: 'pw-prod-3' });
      expect(await c.getValue({ key: 'db/prod', property: 'password' })).to.equal('pw-prod-3');
    });
  });

  it('check fails with a ProviderError when the directory is missing', async () => {
    const missing = join(dir, 'gone');
    const c = await connect(secretStore({ path: missing, masterKeySecretRef: { name: 'store-key' } }));
    const err = await rejectionOf(c.check());
    expect(err).to.be.instanceOf(ProviderError);
    expect(err.message).to.include(`local store directory ${missing} does not exist or is unreadable`);
    expect(await rejectionOf(c.getValue({ key: 'db/prod' }))).to.be.instanceOf(ProviderError);
  });

  it('check fails with a ProviderError when the path is not a directory', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    const c = await connect(secretStore({ path: file, masterKeySecretRef: { name: 'store-key' } }));
    const err = await rejectionOf(c.check());
    expect(err).to.be.instanceOf(ProviderError);
    expect(err.message).to.include(`local store directory ${file} does not exist or is unreadable`);
  });

  it('check passes for an empty directory and fails for a store written with another key', async () => {
    const empty = join(dir, 'empty');
    await mkdir(empty);
    const c = await connect(secretStore({ path: empty, masterKeySecretRef: { name: 'store-key' } }));
    await c.check();
    await c.close();
    await new LocalStore(empty, randomBytes(32)).put('foreign', { v: 'x' });
    const c2 = await connect(secretStore({ path: empty, masterKeySecretRef: { name: 'store-key' } }));
    const err = await rejectionOf(c2.check());
    expect(err).to.be.instanceOf(ProviderConfigError);
    expect(err.message).to.match(/^the master key does not match the store/);
  });

  it('a tampered file is a terminal StoreTampered error naming the entry, never the value', async () => {
    const c = await connect(secretStore({ path: dir, masterKeySecretRef: { name: 'store-key' } }));
    for (const f of await readdir(dir)) {
      const text = await readFile(join(dir, f), 'utf8');
      // Flip the tag's first character to another one (replacing it with a fixed letter is a no-op when it already is that letter).
      if (text.includes('"api/token"'))
        await writeFile(
          join(dir, f),
          text.replace(/"tag": "(.)/, (_m, c: string) => `"tag": "${c === 'A' ? 'B' : 'A'}`),
        );
    }
    const err = await rejectionOf(c.getValue({ key: 'api/token' }));
    expect(err).to.be.instanceOf(StoreTamperedError);
    expect(errorInfo(err, 'ProviderError')).to.include({ reason: 'StoreTampered', retry: 'terminal' });
    expect(err.message).to.match(/^entry "api\/token" failed authentication/);
  });
});
