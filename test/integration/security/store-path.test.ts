// Threat: "read anywhere". A namespaced local store names a directory of the
// operator's filesystem (its volume, its configuration, another namespace's
// store). Here the namespace even knows the master key of every directory it
// points at (the worst case: a copied store, or a key it was once given):
// still, a path outside its own directory of --local-store-root
// (<root>/<namespace>) is refused with PathNotAllowed before anything is
// opened, whether written as another path, escaping with `..`, through a
// symbolic link inside its directory, or as another namespace's directory.
// Nothing is read (no Secret gets a value) and nothing is written there.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { LocalStore } from '../../../src/providers/local/store.js';
import { sharedCluster, uniqueName } from '../env.js';
import {
  adminClient,
  createManagedSecret,
  ensureNamespace,
  getSecret,
  readyOf,
  startOperator,
  waitForSecretData,
  type RunningOperator,
} from '../operator.js';
import { createStore, waitForOutcome, waitForStoreReady } from './tenancy-helpers.js';

/** Every file under `dir` with its size and mtime: equal before and after means nothing was written. */
function snapshot(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .sort()
    .map((f) => {
      const st = statSync(join(dir, f));
      return `${f} ${st.size} ${st.mtimeMs}`;
    });
}

describe('security: a namespaced local store cannot read outside its own directory', function () {
  this.timeout(120_000);
  const namespace = uniqueName('sec-path');
  const neighbour = uniqueName('sec-path-other');
  const client = () => adminClient(sharedCluster());
  const masterKey = randomBytes(32);
  // realpath: the system's temporary directory may itself be a link.
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'secretsync-sec-root-')));
  const outside = realpathSync(mkdtempSync(join(tmpdir(), 'secretsync-sec-outside-')));
  const own = join(root, namespace);
  const neighbourDir = join(root, neighbour);
  let operator: RunningOperator | undefined;
  let untouched: Record<string, string[]> = {};

  /** The stores the namespace writes, each with the path it names. */
  const paths: Record<string, string> = {
    outside,
    dotdot: join(own, '..', '..', basename(outside)),
    symlink: join(own, 'link-out'),
    neighbour: neighbourDir,
    root,
  };

  before(async () => {
    await ensureNamespace(client(), namespace);
    await client().request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'master-key' },
        data: { 'master-key': masterKey.toString('base64') },
      },
    });
    mkdirSync(own);
    mkdirSync(neighbourDir);
    // Same key everywhere: only the path decides.
    for (const [dir, value] of [
      [own, 'own-value'],
      [outside, 'outside-value'],
      [neighbourDir, 'neighbour-value'],
      [root, 'root-value'],
    ] as const) {
      const store = new LocalStore(dir, masterKey);
      await store.put('db', { password: value });
      store.close();
    }
    symlinkSync(outside, join(own, 'link-out'));
    untouched = { outside: snapshot(outside), neighbour: snapshot(neighbourDir) };
    for (const [name, path] of [['own', own], ...Object.entries(paths)] as const) {
      await createStore(client(), namespace, name, { local: { path, masterKeySecretRef: { name: 'master-key' } } });
      await createManagedSecret(client(), namespace, {
        metadata: { name },
        spec: {
          storeRef: { name },
          refreshInterval: '1h',
          data: [{ secretKey: 'password', remoteRef: { key: 'db', property: 'password' } }],
        },
      });
    }
    operator = await startOperator(sharedCluster(), {
      namespaces: [namespace],
      storePolicy: { allowedEndpoints: [], localStoreRoot: root },
    });
  });

  after(async () => {
    await operator?.stop();
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it('its own directory <root>/<namespace> works', async () => {
    await waitForSecretData(client(), namespace, 'own', (d) => d.password === 'own-value', 20_000);
  });

  it('outside the root, through .., through a symbolic link, the root itself, another namespace’s directory: PathNotAllowed', async () => {
    const outcomes = await Promise.all(
      Object.keys(paths).map(async (name) => ({
        name,
        ready: readyOf(await waitForOutcome(client(), namespace, name)),
      })),
    );
    const secrets = await Promise.all(Object.keys(paths).map((name) => getSecret(client(), namespace, name)));
    // Nothing read: no Secret holds a value from any of those directories.
    expect(
      secrets.filter((s) => s !== undefined).map((s) => `${s?.metadata.name}`),
      'Secrets written from directories the namespace may not use',
    ).to.deep.equal([]);
    for (const { name, ready } of outcomes) {
      expect(ready?.reason, `${name}: ${ready?.message}`).to.equal('PathNotAllowed');
      expect(ready?.status).to.equal('False');
      expect(ready?.message, name).to.contain('spec.provider.local.path').and.contain(own);
    }
    for (const name of Object.keys(paths)) {
      expect(await waitForStoreReady(client(), namespace, name), name).to.include({
        status: 'False',
        reason: 'PathNotAllowed',
      });
    }
    // Nothing written either.
    expect({ outside: snapshot(outside), neighbour: snapshot(neighbourDir) }).to.deep.equal(untouched);
  });
});
