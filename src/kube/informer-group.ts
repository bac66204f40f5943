import type { KubeClient, KubeObject } from './client.js';
import { Informer, objectKey, type InformerHandlers, type InformerOptions } from './informer.js';

/**
 * One informer per watched namespace behind a single cache interface, so the
 * operator can run with Roles in a few namespaces instead of cluster-wide access.
 * In sharded mode the group's members come and go with the shards this replica
 * holds (one member per shard, each with its own label selector): `addMember`
 * starts one, `removeMember` stops it and drops what it cached.
 */
export class InformerGroup<T extends KubeObject> {
  /** Member id → its informers (one per path). The fixed members of an unsharded group are under ''. */
  private readonly members = new Map<string, Informer<T>[]>();
  private readonly handlers: InformerHandlers<T>[] = [];
  private readonly evictHandlers: ((obj: T) => void)[] = [];
  private running = false;

  constructor(
    private readonly client: KubeClient,
    private readonly paths: string[],
    private readonly options: Omit<InformerOptions<T>, 'path'>,
    /** False: the group starts empty and holds only members added later (sharded mode). */
    fixed = true,
  ) {
    if (fixed) this.members.set('', this.informersFor(options));
  }

  private informersFor(options: Omit<InformerOptions<T>, 'path'>): Informer<T>[] {
    return this.paths.map((path) => {
      const informer = new Informer<T>(this.client, { ...options, path });
      for (const h of this.handlers) informer.on(this.forMember(h));
      return informer;
    });
  }

  /**
   * A handler as one member calls it. An object can sit in two members for a
   * moment (relabelled from one shard to another, both held here): its going
   * from one is then not a deletion from the group but a change to the copy
   * the other holds.
   */
  private forMember(h: InformerHandlers<T>): InformerHandlers<T> {
    return {
      add: (obj) => h.add?.(obj),
      update: (old, cur) => h.update?.(old, cur),
      delete: (obj) => {
        const other = this.get(objectKey(obj));
        if (other) h.update?.(obj, other);
        else h.delete?.(obj);
      },
    };
  }

  private all(): Informer<T>[] {
    return [...this.members.values()].flat();
  }

  /** Handlers of every member, present and future. */
  on(handlers: InformerHandlers<T>): void {
    this.handlers.push(handlers);
    for (const i of this.all()) i.on(this.forMember(handlers));
  }

  /**
   * Told of each object a removed member held: dropped from this cache because
   * this replica no longer watches it, not deleted (so no `delete` handler runs).
   */
  onEvict(handler: (obj: T) => void): void {
    this.evictHandlers.push(handler);
  }

  get(key: string): T | undefined {
    // Called for every sync and watch event: no array built per call.
    for (const informers of this.members.values())
      for (const i of informers) {
        const found = i.get(key);
        if (found) return found;
      }
    return undefined;
  }

  list(): T[] {
    return this.all().flatMap((i) => i.list());
  }

  get size(): number {
    let n = 0;
    for (const informers of this.members.values()) for (const i of informers) n += i.size;
    return n;
  }

  /** Objects held by one member (say, one shard's). */
  sizeOf(id: string): number {
    return (this.members.get(id) ?? []).reduce((n, i) => n + i.size, 0);
  }

  memberIds(): string[] {
    return [...this.members.keys()];
  }

  hasMember(id: string): boolean {
    return this.members.has(id);
  }

  hasSynced(): boolean {
    return this.all().every((i) => i.hasSynced());
  }

  /**
   * Adds a member watching the group's paths with `labelSelector`; once the
   * group runs, resolves when its first list is in the cache (its objects came
   * through the `add` handlers).
   */
  async addMember(id: string, labelSelector: string): Promise<void> {
    if (this.members.has(id)) return;
    const informers = this.informersFor({ ...this.options, labelSelector });
    this.members.set(id, informers);
    if (this.running) await Promise.all(informers.map((i) => i.start()));
  }

  /** Stops a member and drops its objects (evict handlers), as if it had never been added. */
  async removeMember(id: string): Promise<void> {
    const informers = this.members.get(id);
    if (!informers) return;
    this.members.delete(id);
    await Promise.all(informers.map((i) => i.stop()));
    for (const informer of informers)
      for (const obj of informer.list()) {
        // Also held by another member (moving between shards): still cached, as that member's copy.
        const other = this.get(objectKey(obj));
        if (other) for (const h of this.handlers) h.update?.(obj, other);
        else for (const h of this.evictHandlers) h(obj);
      }
  }

  async start(): Promise<void> {
    this.running = true;
    await Promise.all(this.all().map((i) => i.start()));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.all().map((i) => i.stop()));
  }
}

/** Collection paths for a resource: one cluster-wide, or one per namespace. */
export function collectionPaths(prefix: string, plural: string, namespaces: string[]): string[] {
  if (namespaces.length === 0) return [`${prefix}/${plural}`];
  return namespaces.map((ns) => `${prefix}/namespaces/${ns}/${plural}`);
}
