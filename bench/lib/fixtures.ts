// Objects the scenarios create, and a watch-based tracker of their progress.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { API_VERSION, type ManagedSecret } from '../../src/api/types.js';
import type { KubeClient, KubeObject } from '../../src/kube/client.js';
import { Informer } from '../../src/kube/informer.js';
import { LocalStore } from '../../src/providers/local/index.js';
import { FORMAT } from '../../src/providers/local/store.js';
import { LABEL_MANAGED } from '../../src/secrets/desired.js';
import { ensureNamespace, type BenchContext } from './context.js';
import { pool, range, sleep } from './util.js';

export const msPath = (ns: string): string => `/apis/${API_VERSION}/namespaces/${ns}/managedsecrets`;
export const storePath = (ns: string): string => `/apis/${API_VERSION}/namespaces/${ns}/secretstores`;

export const entryName = (i: number): string => `app/entry-${i}`;
export const msName = (i: number): string => `ms-${i}`;
export const PROPERTIES = ['a', 'b', 'c'] as const;

export interface LocalFixture {
  namespace: string;
  store: LocalStore;
  dir: string;
  cleanup(): void;
}

/**
 * Store directories already filled, by entry count: later fixtures of the same
 * size copy one (with its master key) instead of putting every entry again.
 * Every put syncs its files to disk, so filling 50,000 entries takes minutes
 * on a loaded machine and every scenario would pay it; the copy takes seconds.
 * From PERSIST_FROM entries on, a filled store is also kept between runs in
 * ~/.cache/secretsync/bench-stores/ (with its bench-only master key), by entry
 * count and store format. The values are random per filling, which no figure
 * depends on.
 */
const filledStores = new Map<number, { dir: string; masterKey: Buffer }>();
const PERSIST_FROM = 5_000;
const persistRoot = join(homedir(), '.cache', 'secretsync', 'bench-stores');
const temporaryFills: string[] = [];
process.once('exit', () => {
  for (const dir of temporaryFills) rmSync(dir, { recursive: true, force: true });
});

export async function filledStore(entries: number): Promise<{ dir: string; masterKey: Buffer }> {
  const known = filledStores.get(entries);
  if (known) return known;
  const kept = join(persistRoot, `format${FORMAT}-n${entries}`);
  const persist = entries >= PERSIST_FROM;
  if (persist && existsSync(`${kept}.key`)) {
    const found = { dir: kept, masterKey: Buffer.from(readFileSync(`${kept}.key`, 'utf8').trim(), 'hex') };
    filledStores.set(entries, found);
    return found;
  }
  if (persist) mkdirSync(persistRoot, { recursive: true, mode: 0o700 });
  const dir = mkdtempSync(persist ? `${kept}.filling-` : join(tmpdir(), 'secretsync-bench-filled-'));
  temporaryFills.push(dir);
  const masterKey = randomBytes(32);
  // A copy: close() zeroes the key it was given.
  const store = new LocalStore(dir, Buffer.from(masterKey));
  await pool(range(entries), 32, async (i) => {
    await store.put(
      entryName(i),
      Object.fromEntries(PROPERTIES.map((p) => [p, `${p}-${i}-${randomBytes(8).toString('hex')}`])),
    );
  });
  store.close();
  let filled = { dir, masterKey };
  if (persist) {
    // Complete, then in place: a run killed while filling leaves only a `.filling-` directory behind.
    rmSync(kept, { recursive: true, force: true });
    renameSync(dir, kept);
    writeFileSync(`${kept}.key`, `${masterKey.toString('hex')}\n`, { mode: 0o600 });
    filled = { dir: kept, masterKey };
  }
  filledStores.set(entries, filled);
  return filled;
}

/** A namespace with a local store holding `entries` entries of 3 properties and a SecretStore `local` for it. */
export async function localStoreNamespace(
  ctx: BenchContext,
  namespace: string,
  entries: number,
): Promise<LocalFixture> {
  await ensureNamespace(ctx.kube, namespace);
  // In <--local-store-root>/<namespace>: a namespaced store may use no other directory.
  mkdirSync(join(tmpdir(), namespace), { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), namespace, 'secretsync-bench-store-'));
  const filled = await filledStore(entries);
  cpSync(filled.dir, dir, { recursive: true });
  const masterKey = Buffer.from(filled.masterKey);
  await ctx.kube.request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
    body: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'master-key' },
      data: { 'master-key': masterKey.toString('base64') },
    },
  });
  const store = new LocalStore(dir, masterKey);
  await ctx.kube.request('POST', storePath(namespace), {
    body: {
      apiVersion: API_VERSION,
      kind: 'SecretStore',
      metadata: { name: 'local' },
      spec: { provider: { local: { path: dir, masterKeySecretRef: { name: 'master-key' } } } },
    },
  });
  const cleanup = () => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(tmpdir(), namespace), { recursive: true, force: true });
  };
  return { namespace, store, dir, cleanup };
}

/** ManagedSecret i: three keys a, b, c from entry i of the local store. */
export const localSpec = (i: number, refreshInterval: string): ManagedSecret['spec'] => ({
  storeRef: { name: 'local' },
  refreshInterval,
  data: PROPERTIES.map((p) => ({ secretKey: p, remoteRef: { key: entryName(i), property: p } })),
});

export async function createManagedSecrets(
  ctx: BenchContext,
  namespace: string,
  n: number,
  spec: (i: number) => ManagedSecret['spec'],
): Promise<void> {
  await pool(range(n), ctx.options.createConcurrency, async (i) => {
    await ctx.kube.request('POST', msPath(namespace), {
      body: { apiVersion: API_VERSION, kind: 'ManagedSecret', metadata: { name: msName(i) }, spec: spec(i) },
    });
  });
}

const isReady = (ms: ManagedSecret): boolean =>
  ms.status?.observedGeneration === ms.metadata.generation &&
  (ms.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/**
 * Watches a namespace's ManagedSecrets and labelled Secrets (two watches, not
 * polling) and resolves when N are Ready and N Secrets exist.
 */
export class Progress {
  readonly managed: Informer<ManagedSecret & KubeObject>;
  readonly secrets: Informer<KubeObject & { data?: Record<string, string> }>;
  private readonly ready = new Set<string>();
  private readonly listeners = new Set<() => void>();
  private readonly secretUpdateListeners = new Set<(secret: KubeObject & { data?: Record<string, string> }) => void>();

  constructor(kube: KubeClient, namespace: string) {
    this.managed = new Informer<ManagedSecret & KubeObject>(kube, {
      path: msPath(namespace),
      transform: (o) => {
        delete o.metadata.managedFields;
        return o as ManagedSecret & KubeObject;
      },
    });
    this.secrets = new Informer(kube, {
      path: `/api/v1/namespaces/${namespace}/secrets`,
      labelSelector: `${LABEL_MANAGED}=true`,
    });
    const track = (ms: ManagedSecret & KubeObject) => {
      if (isReady(ms)) this.ready.add(ms.metadata.name);
      else this.ready.delete(ms.metadata.name);
      this.notify();
    };
    this.managed.on({
      add: track,
      update: (_o, cur) => track(cur),
      delete: (ms) => this.ready.delete(ms.metadata.name),
    });
    this.secrets.on({
      add: () => this.notify(),
      update: (_old, cur) => {
        for (const l of this.secretUpdateListeners) l(cur);
        this.notify();
      },
      delete: () => this.notify(),
    });
  }

  /** Calls `listener` with every updated Secret until the returned function is called. */
  onSecretUpdate(listener: (secret: KubeObject & { data?: Record<string, string> }) => void): () => void {
    this.secretUpdateListeners.add(listener);
    return () => this.secretUpdateListeners.delete(listener);
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(): void {
    for (const l of this.listeners) l();
  }

  async start(): Promise<this> {
    await Promise.all([this.managed.start(), this.secrets.start()]);
    return this;
  }

  async stop(): Promise<void> {
    await Promise.all([this.managed.stop(), this.secrets.stop()]);
  }

  get readyCount(): number {
    return this.ready.size;
  }

  /** Resolves at the moment N ManagedSecrets are Ready and N Secrets exist. */
  async waitAll(
    n: number,
    timeoutMs: number,
    what = 'every ManagedSecret Ready and every Secret written',
  ): Promise<number> {
    const done = () => this.ready.size >= n && this.secrets.size >= n;
    if (done()) return Date.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}: ${this.ready.size} Ready, ${this.secrets.size} Secrets of ${n}`,
          ),
        );
      }, timeoutMs);
      const off = this.onChange(() => {
        if (!done()) return;
        clearTimeout(timer);
        off();
        resolve(Date.now());
      });
    });
  }
}

/** Polls `check` until it returns true. */
export async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  everyMs = 250,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return Date.now();
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A generous limit for waiting on N objects. */
export const timeoutFor = (n: number): number => 120_000 + n * 30;
