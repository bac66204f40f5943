// Which ManagedSecrets use a remote key, per store: when a store's event source
// (or the webhook) says "these entries changed", the operator syncs only the
// ManagedSecrets that read them, at a cost proportional to those ManagedSecrets,
// not to every ManagedSecret of the store. Exact keys (data[].remoteRef.key,
// dataFrom.extract.key) are a map lookup; dataFrom.find specs are matched by
// prefix or name pattern (a changed key a find would list triggers its
// ManagedSecret, whatever its tags: tags are not known without a read).
import type { FindSpec, ManagedSecret } from '../api/types.js';
import { compileNamePattern, type NamePattern } from '../secrets/pattern.js';
import { storeKeyOf } from './caches.js';
import { queueKey } from './keys.js';

/** Whether an entry named `key` is one a `find` would list (prefix and name pattern; tags are not looked at). */
export function findMayList(find: FindSpec, key: string, pattern?: NamePattern): boolean {
  if (find.prefix !== undefined && !key.startsWith(find.prefix)) return false;
  if (find.nameRegexp !== undefined) {
    try {
      return (pattern ?? compileNamePattern(find.nameRegexp)).test(key);
    } catch {
      // A pattern RE2 refuses is a spec error reported on the object; it lists nothing.
      return false;
    }
  }
  return true;
}

interface FindUse {
  find: FindSpec;
  /** Compiled once per indexed ManagedSecret generation; undefined without nameRegexp or when it does not compile. */
  pattern: NamePattern | undefined;
}

/** What one ManagedSecret was indexed under, so that an update or delete takes exactly that out again. */
interface Indexed {
  storeKey: string;
  keys: string[];
  finds: FindUse[];
}

interface StoreIndex {
  /** Remote key → queue keys of the ManagedSecrets that read it by name. */
  byKey: Map<string, Set<string>>;
  /** Queue key → the find specs of that ManagedSecret (only those that have any). */
  finds: Map<string, FindUse[]>;
}

function compileOrUndefined(find: FindSpec): NamePattern | undefined {
  if (find.nameRegexp === undefined) return undefined;
  try {
    return compileNamePattern(find.nameRegexp);
  } catch {
    return undefined;
  }
}

export class ChangeIndex {
  private readonly stores = new Map<string, StoreIndex>();
  private readonly indexed = new Map<string, Indexed>();

  /** Indexes a ManagedSecret as it is now (replacing what it was indexed under before). */
  set(ms: ManagedSecret): void {
    const key = queueKey.managedSecret(ms.metadata.namespace ?? '', ms.metadata.name);
    this.remove(key);
    const keys = new Set<string>();
    for (const item of ms.spec.data ?? []) if (item.remoteRef) keys.add(item.remoteRef.key);
    const finds: FindUse[] = [];
    for (const item of ms.spec.dataFrom ?? []) {
      if (item.extract) keys.add(item.extract.key);
      else if (item.find) {
        const pattern = compileOrUndefined(item.find);
        // A pattern that does not compile lists nothing: nothing to index.
        if (item.find.nameRegexp === undefined || pattern) finds.push({ find: item.find, pattern });
      }
    }
    const storeKey = storeKeyOf(ms);
    let store = this.stores.get(storeKey);
    if (!store) this.stores.set(storeKey, (store = { byKey: new Map(), finds: new Map() }));
    for (const k of keys) {
      let users = store.byKey.get(k);
      if (!users) store.byKey.set(k, (users = new Set()));
      users.add(key);
    }
    if (finds.length > 0) store.finds.set(key, finds);
    this.indexed.set(key, { storeKey, keys: [...keys], finds });
  }

  /** Takes a ManagedSecret (by queue key) out of the index. */
  remove(msKey: string): void {
    const was = this.indexed.get(msKey);
    if (!was) return;
    this.indexed.delete(msKey);
    const store = this.stores.get(was.storeKey);
    if (!store) return;
    for (const k of was.keys) {
      const users = store.byKey.get(k);
      users?.delete(msKey);
      if (users?.size === 0) store.byKey.delete(k);
    }
    store.finds.delete(msKey);
    if (store.byKey.size === 0 && store.finds.size === 0) this.stores.delete(was.storeKey);
  }

  /**
   * Queue keys of the ManagedSecrets of `storeKey` that read any of `keys`. The
   * cost is one map lookup per key plus one match per find spec of the store.
   */
  usersOf(storeKey: string, keys: Iterable<string>): Set<string> {
    const out = new Set<string>();
    const store = this.stores.get(storeKey);
    if (!store) return out;
    const changed = [...keys];
    for (const k of changed) for (const user of store.byKey.get(k) ?? []) out.add(user);
    for (const [user, finds] of store.finds) {
      if (out.has(user)) continue;
      if (finds.some((f) => changed.some((k) => findMayList(f.find, k, f.pattern)))) out.add(user);
    }
    return out;
  }

  /** The remote keys ManagedSecrets of a store read by name (not their finds). */
  keysOf(storeKey: string): IterableIterator<string> {
    return (this.stores.get(storeKey)?.byKey ?? new Map<string, Set<string>>()).keys();
  }

  /** Queue keys of the ManagedSecrets of a store that list entries with `find` (a relayed hash cannot be matched against a find). */
  findUsersOf(storeKey: string): IterableIterator<string> {
    return (this.stores.get(storeKey)?.finds ?? new Map<string, FindUse[]>()).keys();
  }

  /** How many ManagedSecrets are indexed (for tests and gauges). */
  get size(): number {
    return this.indexed.size;
  }
}
