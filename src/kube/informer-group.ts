import type { KubeClient, KubeObject } from './client.js';
import { Informer, type InformerHandlers, type InformerOptions } from './informer.js';

/**
 * One informer per watched namespace behind a single cache interface, so the
 * operator can run with Roles in a few namespaces instead of cluster-wide access.
 */
export class InformerGroup<T extends KubeObject> {
  private readonly informers: Informer<T>[];

  constructor(client: KubeClient, paths: string[], options: Omit<InformerOptions<T>, 'path'>) {
    this.informers = paths.map((path) => new Informer<T>(client, { ...options, path }));
  }

  on(handlers: InformerHandlers<T>): void {
    for (const i of this.informers) i.on(handlers);
  }

  get(key: string): T | undefined {
    for (const i of this.informers) {
      const found = i.get(key);
      if (found) return found;
    }
    return undefined;
  }

  list(): T[] {
    return this.informers.flatMap((i) => i.list());
  }

  get size(): number {
    return this.informers.reduce((n, i) => n + i.size, 0);
  }

  hasSynced(): boolean {
    return this.informers.every((i) => i.hasSynced());
  }

  async start(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop()));
  }
}

/** Collection paths for a resource: one cluster-wide, or one per namespace. */
export function collectionPaths(prefix: string, plural: string, namespaces: string[]): string[] {
  if (namespaces.length === 0) return [`${prefix}/${plural}`];
  return namespaces.map((ns) => `${prefix}/namespaces/${ns}/${plural}`);
}
