// What the operator knows of the cluster: informer caches of our kinds, the
// Namespaces (for ClusterSecretStore conditions) and the Secrets we wrote, plus
// the lookups the reconcilers make in them (which store a ManagedSecret uses,
// which ManagedSecrets use a store). Reading only; nothing here writes.
import {
  API_VERSION,
  Reasons,
  type AnyStore,
  type ClusterSecretStore,
  type ManagedSecret,
  type SecretStore,
} from '../api/types.js';
import type { KubeClient, KubeObject } from '../kube/client.js';
import { intern } from '../kube/informer.js';
import { collectionPaths, InformerGroup } from '../kube/informer-group.js';
import { LABEL_MANAGED, type SecretObject } from '../secrets/desired.js';
import { LABEL_SHARD, shardLabelValue } from '../sharding/ownership.js';
import { queueKey } from './keys.js';
import { namespaceAllowed } from './selectors.js';

const GROUP_PREFIX = `/apis/${API_VERSION}`;
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Our own kinds as the caches keep them (the informer already drops
 * managedFields): without kubectl's last-applied copy of the spec, as big as the
 * object itself and never read by the operator (it writes only status, by patch).
 */
function slim<T extends KubeObject>(obj: KubeObject): T {
  const annotations = obj.metadata.annotations;
  if (annotations?.[LAST_APPLIED] !== undefined) {
    // A copy without it, not a delete (which leaves V8 a hash table per object; see Informer.transform).
    const { [LAST_APPLIED]: _dropped, ...rest } = annotations;
    obj.metadata.annotations = rest;
  }
  return obj as T;
}

export type ManagedSecretObject = ManagedSecret & KubeObject;

/** The ManagedSecret fields that repeat across thousands of objects, one copy each (see intern). */
function internStatus(ms: ManagedSecretObject): void {
  const ref = ms.spec?.storeRef as { name?: unknown; kind?: unknown } | undefined;
  if (ref && typeof ref.name === 'string') ref.name = intern(ref.name);
  const status = ms.status as
    { conditions?: unknown; lastSyncTime?: unknown; lastSuccessfulSyncTime?: unknown } | undefined;
  if (!status) return;
  if (typeof status.lastSyncTime === 'string') status.lastSyncTime = intern(status.lastSyncTime);
  if (typeof status.lastSuccessfulSyncTime === 'string')
    status.lastSuccessfulSyncTime = intern(status.lastSuccessfulSyncTime);
  if (!Array.isArray(status.conditions)) return;
  for (const c of status.conditions as Record<string, unknown>[]) {
    if (typeof c !== 'object' || c === null) continue;
    for (const field of ['type', 'status', 'reason', 'lastTransitionTime'] as const) {
      const v = c[field];
      if (typeof v === 'string') c[field] = intern(v);
    }
  }
}

/** ManagedSecrets whose template sources the cache did not keep, with how many bytes they held. */
const withheldTemplates = new WeakMap<ManagedSecret, number>();

/**
 * The UTF-8 bytes of template sources a cached ManagedSecret had over the
 * bound, when the cache dropped them (the reconciler reports TemplateTooLarge
 * from this), or undefined when it kept them.
 */
export function withheldTemplateBytes(ms: ManagedSecret): number | undefined {
  return withheldTemplates.get(ms);
}

/**
 * A ManagedSecret as the ManagedSecret cache keeps it: without template sources
 * over the bound. Such an object is refused anyway (TemplateTooLarge), and a
 * namespace could otherwise make the operator hold a MiB per object.
 */
function withoutOversizedTemplates(ms: ManagedSecretObject, maxTemplateBytes: number): ManagedSecretObject {
  internStatus(ms);
  const data = ms.spec?.target?.template?.data;
  if (!data) return ms;
  let bytes = 0;
  for (const source of Object.values(data)) bytes += typeof source === 'string' ? Buffer.byteLength(source) : 0;
  if (bytes <= maxTemplateBytes) return ms;
  (ms.spec.target as { template: { data: Record<string, string> } }).template.data = {};
  withheldTemplates.set(ms, bytes);
  return ms;
}

/**
 * Objects in one page of the ManagedSecret list. A namespace decides how big
 * they are (up to what the API server admits, about 1.5 MiB), but pages are
 * decoded item by item as their bytes arrive (src/kube/list-decoder.ts), so
 * the page size bounds no allocation of ours; it counts round trips. At
 * 100 a page, a restart at 50,000 spent 16 s listing, most of it waiting for
 * 500 pages fetched one after another (docs/performance.md); 500 is the
 * Secrets' page size and client-go's usual one.
 */
const MANAGED_SECRET_LIST_PAGE = 500;
export type StoreObject = AnyStore & KubeObject;

/** The store a ManagedSecret uses, or why it cannot use one. */
export type ResolvedStore =
  | { store: AnyStore; storeKey: string }
  | { reason: typeof Reasons.StoreNotFound | typeof Reasons.StoreNotAllowed; message: string };

export interface CacheOptions {
  /** Namespaces to watch; empty means the whole cluster. */
  namespaces: string[];
  /** Template sources of one ManagedSecret kept up to this many bytes (--max-template-bytes). */
  maxTemplateBytes: number;
  onWatchError(resource: string, err: unknown): void;
  /**
   * Sharded mode: ManagedSecrets and our Secrets are cached per held shard
   * (`setShards`), by their shard label; stores and namespaces stay cluster-wide.
   */
  shardCount?: number;
}

/** The key of the store a ManagedSecret names, whether or not that store exists. */
export function storeKeyOf(ms: ManagedSecret): string {
  const ref = ms.spec.storeRef;
  return (ref.kind ?? 'SecretStore') === 'ClusterSecretStore'
    ? queueKey.clusterStore(ref.name)
    : queueKey.secretStore(ms.metadata.namespace ?? '', ref.name);
}

export class ClusterCache {
  readonly managedSecrets: InformerGroup<ManagedSecretObject>;
  readonly secretStores: InformerGroup<SecretStore & KubeObject>;
  readonly clusterStores: InformerGroup<ClusterSecretStore & KubeObject>;
  readonly namespaces: InformerGroup<KubeObject>;
  /** Only Secrets that carry our label: memory follows what we manage, not the cluster's size. */
  readonly secrets: InformerGroup<SecretObject>;
  /** Store key → queue keys of the ManagedSecrets that name it: a store change touches only its users. */
  private readonly users = new Map<string, Set<string>>();
  /** Sharded mode: the shards whose members are in the caches (or on their way in). */
  private readonly shardsCached = new Set<number>();
  /** Shard changes one after another: a shard lost while still being gained is removed once it is in. */
  private shardChanges: Promise<void> = Promise.resolve();
  readonly shardCount: number | undefined;

  constructor(client: KubeClient, options: CacheOptions) {
    const ns = options.namespaces;
    const common = (resource: string) => ({
      onError: (err: unknown) => options.onWatchError(resource, err),
    });
    this.shardCount = options.shardCount;
    const fixed = options.shardCount === undefined;
    this.managedSecrets = new InformerGroup(
      client,
      collectionPaths(GROUP_PREFIX, 'managedsecrets', ns),
      {
        ...common('managedsecrets'),
        listPageSize: MANAGED_SECRET_LIST_PAGE,
        transform: (obj) => withoutOversizedTemplates(slim<ManagedSecretObject>(obj), options.maxTemplateBytes),
      },
      fixed,
    );
    this.secretStores = new InformerGroup(client, collectionPaths(GROUP_PREFIX, 'secretstores', ns), {
      ...common('secretstores'),
      transform: slim<SecretStore & KubeObject>,
    });
    this.clusterStores = new InformerGroup(client, [`${GROUP_PREFIX}/clustersecretstores`], {
      ...common('clustersecretstores'),
      transform: slim<ClusterSecretStore & KubeObject>,
    });
    this.namespaces = new InformerGroup<KubeObject>(client, ['/api/v1/namespaces'], {
      ...common('namespaces'),
      transform: (o) => ({
        metadata: { name: o.metadata.name, labels: o.metadata.labels, resourceVersion: o.metadata.resourceVersion },
      }),
    });
    this.secrets = new InformerGroup<SecretObject>(
      client,
      collectionPaths('/api/v1', 'secrets', ns),
      {
        ...common('secrets'),
        labelSelector: `${LABEL_MANAGED}=true`,
      },
      fixed,
    );
    // The index follows the ManagedSecret cache (registered first, so it is current for later handlers).
    const index = (ms: ManagedSecret) => this.addUser(ms);
    this.managedSecrets.on({
      add: index,
      update: (old, cur) => {
        if (storeKeyOf(old) !== storeKeyOf(cur)) this.removeUser(old);
        this.addUser(cur);
      },
      delete: (ms) => this.removeUser(ms),
    });
    this.managedSecrets.onEvict((ms) => this.removeUser(ms));
  }

  /**
   * Sharded mode: caches the ManagedSecrets and Secrets of exactly `owned`.
   * A gained shard's Secrets are listed before its ManagedSecrets (whose `add`
   * handlers queue them), so its first syncs find their Secrets in the cache
   * and a takeover of Secrets in sync writes nothing. A lost shard's objects
   * are dropped (evict handlers), not deleted. Resolves when this change and
   * every earlier one are done.
   */
  setShards(owned: ReadonlySet<number>): Promise<void> {
    const run = async () => {
      for (const shard of [...this.shardsCached]) {
        if (owned.has(shard)) continue;
        await this.managedSecrets.removeMember(String(shard));
        await this.secrets.removeMember(String(shard));
        this.shardsCached.delete(shard);
      }
      const gained = [...owned].filter((shard) => !this.shardsCached.has(shard));
      for (const shard of gained) this.shardsCached.add(shard);
      const failed = await Promise.all(
        gained.map(async (shard) => {
          const label = `${LABEL_SHARD}=${shardLabelValue(shard)}`;
          try {
            await this.secrets.addMember(String(shard), `${LABEL_MANAGED}=true,${label}`);
            await this.managedSecrets.addMember(String(shard), label);
            return undefined;
          } catch (err) {
            // Not cached after all: the next call (the caller retries) lists it again from scratch.
            this.shardsCached.delete(shard);
            await this.managedSecrets.removeMember(String(shard));
            await this.secrets.removeMember(String(shard));
            return err;
          }
        }),
      );
      const error = failed.find((err) => err !== undefined);
      if (error !== undefined) throw error;
    };
    const next = this.shardChanges.then(run, run);
    this.shardChanges = next.catch(() => undefined);
    return next;
  }

  /** Sharded mode: the shards whose objects are cached now. */
  cachedShards(): number[] {
    return [...this.shardsCached].sort((a, b) => a - b);
  }

  private addUser(ms: ManagedSecret): void {
    const storeKey = storeKeyOf(ms);
    let set = this.users.get(storeKey);
    if (!set) this.users.set(storeKey, (set = new Set()));
    set.add(queueKey.managedSecret(ms.metadata.namespace ?? '', ms.metadata.name));
  }

  private removeUser(ms: ManagedSecret): void {
    const storeKey = storeKeyOf(ms);
    const set = this.users.get(storeKey);
    set?.delete(queueKey.managedSecret(ms.metadata.namespace ?? '', ms.metadata.name));
    if (set?.size === 0) this.users.delete(storeKey);
  }

  /** Queue keys of the ManagedSecrets that name a store (by its queue key). */
  usersOf(storeKey: string): readonly string[] {
    return [...(this.users.get(storeKey) ?? [])];
  }

  store(storeKey: string): AnyStore | undefined {
    const slash = storeKey.indexOf('/');
    const kind = storeKey.slice(0, slash);
    const cacheKey = storeKey.slice(slash + 1);
    return kind === 'ss' ? this.secretStores.get(cacheKey) : this.clusterStores.get(cacheKey);
  }

  /** The store a ManagedSecret may use: it exists and, for a ClusterSecretStore, admits the namespace. */
  resolveStore(ms: ManagedSecret): ResolvedStore {
    const kind = ms.spec.storeRef.kind ?? 'SecretStore';
    const name = ms.spec.storeRef.name;
    const ns = ms.metadata.namespace ?? '';
    const storeKey = storeKeyOf(ms);
    if (kind === 'SecretStore') {
      const store = this.secretStores.get(`${ns}/${name}`);
      if (!store) return { reason: Reasons.StoreNotFound, message: `SecretStore ${ns}/${name} not found` };
      return { store, storeKey };
    }
    const store = this.clusterStores.get(name);
    if (!store) return { reason: Reasons.StoreNotFound, message: `ClusterSecretStore ${name} not found` };
    const labels = this.namespaces.get(ns)?.metadata.labels ?? {};
    if (!namespaceAllowed(store.spec.conditions, ns, labels))
      return { reason: Reasons.StoreNotAllowed, message: `ClusterSecretStore ${name} does not allow namespace ${ns}` };
    return { store, storeKey };
  }

  async start(): Promise<void> {
    await Promise.all([
      this.managedSecrets.start(),
      this.secretStores.start(),
      this.clusterStores.start(),
      this.namespaces.start(),
      this.secrets.start(),
    ]);
  }

  async stop(): Promise<void> {
    await Promise.all([
      this.managedSecrets.stop(),
      this.secretStores.stop(),
      this.clusterStores.stop(),
      this.namespaces.stop(),
      this.secrets.stop(),
    ]);
  }
}
