import { expect } from 'chai';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SecretStore } from '../../../../src/api/types.js';
import { localProvider } from '../../../../src/providers/local/index.js';
import { LocalStore } from '../../../../src/providers/local/store.js';
import { ProviderConfigError, type ProviderClient } from '../../../../src/providers/provider.js';

/** The --local-store-root of these tests (the store of namespace `app` lives in PUT_ROOT/app). */
const PUT_ROOT = join(tmpdir(), 'secretsync-unit-put-root');

describe('local store: rotation writes (putValue, request tokens)', () => {
  let dir: string;
  let key: Buffer;
  let store: LocalStore;
  let client: ProviderClient;

  beforeEach(async () => {
    // Inside <--local-store-root>/<namespace>, as a namespaced store must be.
    await mkdir(join(PUT_ROOT, 'app'), { recursive: true });
    dir = await mkdtemp(join(PUT_ROOT, 'app', 'put-'));
    key = randomBytes(32);
    store = new LocalStore(dir, key);
    const spec: SecretStore = {
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'SecretStore',
      metadata: { name: 'local', namespace: 'app' },
      spec: { provider: { local: { path: dir, masterKeySecretRef: { name: 'mk' } } } },
    };
    client = await localProvider.connect(spec, {
      storeNamespace: 'app',
      allowOperatorIdentityForNamespacedStores: false,
      policy: { allowedEndpoints: [], localStoreRoot: PUT_ROOT },
      observe: (_op, call) => call(),
      requestServiceAccountToken: async () => {
        throw new Error('unused');
      },
      readSecretKey: async (ns, name) => {
        if (`${ns}/${name}` !== 'app/mk') throw new ProviderConfigError('no such Secret');
        return key;
      },
    });
  });
  afterEach(async () => {
    await client.close();
    store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('a property is laid over the latest version, keepVersions prunes, and the same token writes once', async () => {
    await store.put('db', { user: 'app', password: 'old' });
    const put = client.putValue?.bind(client);
    if (!put) throw new Error('putValue missing');
    const token = randomUUID();
    expect(
      await put({ key: 'db', property: 'password' }, 'new', { requestToken: token, keepVersions: 2 }),
    ).to.deep.equal({
      version: '2',
    });
    // A retry (after a crash) with another generated value: the version the first call made, nothing new.
    expect(
      await put({ key: 'db', property: 'password' }, 'other', { requestToken: token, keepVersions: 2 }),
    ).to.deep.equal({ version: '2' });
    expect((await store.get('db')).properties).to.deep.equal({ user: 'app', password: 'new' });
    await put({ key: 'db', property: 'password' }, 'newer', { requestToken: randomUUID(), keepVersions: 2 });
    expect((await store.history('db')).map((v) => v.version)).to.deep.equal([2, 3]);
    // The token is metadata in the file; the value is not in plaintext.
    const [file] = (await readdir(dir)).filter((f) => f.endsWith('.json'));
    const text = await readFile(join(dir, file as string), 'utf8');
    expect(text).to.contain(token);
    expect(text).to.not.contain('newer');
  });

  it('a whole value without a property, and key pairs as two properties', async () => {
    const put = client.putValue?.bind(client);
    if (!put) throw new Error('putValue missing');
    await put({ key: 'token' }, 'abc', { requestToken: randomUUID() });
    expect(await client.getValue({ key: 'token' })).to.equal('abc');
    await put({ key: 'keys' }, { privateKey: 'p', publicKey: 'q' }, { requestToken: randomUUID() });
    expect(await client.getProperties('keys')).to.deep.equal({ privateKey: 'p', publicKey: 'q' });
  });
});

describe('the local provider never creates a missing store directory', () => {
  it('refuses a write when the directory is gone (say, a volume that did not mount)', async () => {
    const { mkdtempSync, existsSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { randomBytes } = await import('node:crypto');
    const { localProvider } = await import('../../../../src/providers/local/index.js');
    const base = mkdtempSync(join(tmpdir(), 'secretsync-nodir-'));
    const dir = join(base, 'ns', 'not-mounted');
    const key = randomBytes(32);
    const client = await localProvider.connect(
      {
        apiVersion: 'secretsync.io/v1alpha1',
        kind: 'SecretStore',
        metadata: { name: 'local', namespace: 'ns' },
        spec: { provider: { local: { path: dir, masterKeySecretRef: { name: 'mk' } } } },
      },
      {
        storeNamespace: 'ns',
        allowOperatorIdentityForNamespacedStores: false,
        policy: { allowedEndpoints: [], localStoreRoot: base },
        observe: (_op, call) => call(),
        requestServiceAccountToken: async () => '',
        readSecretKey: async () => key,
      },
    );
    let failed: unknown;
    try {
      await client.putValue?.({ key: 'db', property: 'password' }, 'x', { requestToken: 't1' });
    } catch (err) {
      failed = err;
    }
    expect(failed, 'the write was refused').to.be.instanceOf(Error);
    expect(String((failed as Error).message)).to.contain('does not exist');
    expect(existsSync(dir)).to.equal(false);
    rmSync(base, { recursive: true, force: true });
  });
});
