// The local store's event source: tells the operator which entries
// `secretsync store put` (or delete, or a rotation) changed, within
// milliseconds, so that their ManagedSecrets sync without polling. Every write
// ends with a new manifest (written to a temporary file and renamed into
// place) or a line appended to its journal (large stores), and the manifest
// records each entry's generation (and tombstone): the watcher wakes
// on either (node:fs watch, inotify on Linux), reads it as every
// read does (MAC, rollback checks) and reports the entries whose record
// moved. A cheap stat of the manifest every second catches what a filesystem
// without change notifications (NFS, some FUSE volumes) never announces. While
// the directory or its manifest cannot be read, or the watch itself fails, the
// source is degraded and tries again with back-off. node:fs watch rather than
// chokidar: one directory, one file that matters, and the manifest comparison
// already does what chokidar's normalisation would (duplicate and coalesced
// notifications cost one manifest read and report nothing new).
import { watch, type FSWatcher } from 'node:fs';
import * as fs from 'node:fs/promises';
import { join } from 'node:path';
import type { ChangeListener } from '../provider.js';
import { MANIFEST_FILE, MANIFEST_JOURNAL_FILE, type LocalStore } from './store.js';

/** Timing of the local watcher; module-level so that tests (and only they) can shorten the retry. */
export const localWatchSettings = {
  /** How often the manifest is stat'ed when no notification came (filesystems without events). */
  pollMs: 1_000,
  /** First retry after a failure; doubles up to maxRetryMs. */
  retryMs: 5_000,
  maxRetryMs: 60_000,
  /** Notifications within this window cause one manifest read. */
  coalesceMs: 5,
};

/**
 * What the last watcher of a store reported up to (store identity → entry
 * marks): a watcher started for a rebuilt client reports what changed
 * in between instead of starting blind. Bounded by the stores the operator has
 * watched.
 */
const lastReported = new Map<string, Map<string, string>>();

/** Forgets what was reported for a store (it was deleted). */
export function forgetLocalWatch(sourceId: string): void {
  lastReported.delete(sourceId);
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * Watches `store` until `signal` aborts. `sourceId` names the store (kind,
 * namespace, name and directory) for the hand-over between watchers.
 */
export function watchLocalStore(
  store: LocalStore,
  sourceId: string,
  listener: ChangeListener,
  signal: AbortSignal,
): void {
  const manifestPath = join(store.dir, MANIFEST_FILE);
  const journalPath = join(store.dir, MANIFEST_JOURNAL_FILE);
  let watcher: FSWatcher | undefined;
  let pollTimer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let coalesceTimer: NodeJS.Timeout | undefined;
  /** Failures in a row: the retry waits retryMs × 2^failures (read when it is scheduled). */
  let failures = 0;
  let degraded = false;
  let checking = false;
  let checkAgain = false;
  let lastStat = '';
  let known = lastReported.get(sourceId);
  let knownCounter = -1;

  const stopWatching = () => {
    watcher?.close();
    watcher = undefined;
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = undefined;
    if (coalesceTimer) clearTimeout(coalesceTimer);
    coalesceTimer = undefined;
  };

  const fail = (reason: string, message: string) => {
    if (signal.aborted) return;
    stopWatching();
    if (!degraded) {
      degraded = true;
      listener.degraded(reason, message);
    }
    if (retryTimer) return;
    const delay = Math.min(localWatchSettings.retryMs * 2 ** failures, localWatchSettings.maxRetryMs);
    failures++;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      start();
    }, delay);
    retryTimer.unref();
  };

  const soon = () => {
    if (coalesceTimer || signal.aborted) return;
    coalesceTimer = setTimeout(() => {
      coalesceTimer = undefined;
      void check();
    }, localWatchSettings.coalesceMs);
    coalesceTimer.unref();
  };

  /** Reads the manifest and reports the entries whose record moved since the last report. */
  const check = async (): Promise<void> => {
    if (checking) {
      checkAgain = true;
      return;
    }
    checking = true;
    try {
      do {
        checkAgain = false;
        let state: Awaited<ReturnType<LocalStore['changeState']>>;
        let since: Awaited<ReturnType<LocalStore['changeStateSince']>>;
        try {
          // A store without a manifest is an empty one, as long as its directory is there.
          await fs.access(store.dir);
          // Only the entries journalled since the last look, when the store can tell (a large store, no fold since).
          since = known && knownCounter > 0 ? await store.changeStateSince(knownCounter) : undefined;
          state = since ? undefined : await store.changeState();
        } catch (err) {
          fail('StoreUnreadable', `the local store directory cannot be read: ${errorText(err)}`);
          return;
        }
        if (signal.aborted) return;
        if (since && known) {
          const changed = [...since.marks].filter(([name, mark]) => known?.get(name) !== mark).map(([name]) => name);
          for (const [name, mark] of since.marks) known.set(name, mark);
          knownCounter = since.counter;
          if (changed.length > 0) listener.changed(changed);
          if (degraded) {
            degraded = false;
            failures = 0;
            listener.flowing();
          }
          continue;
        }
        const counter = state?.counter ?? 0;
        const marks = state?.marks ?? new Map<string, string>();
        if (known && counter !== knownCounter) {
          const changed: string[] = [];
          for (const [name, mark] of marks) if (known.get(name) !== mark) changed.push(name);
          for (const name of known.keys()) if (!marks.has(name)) changed.push(name);
          if (changed.length > 0) listener.changed(changed);
        }
        known = marks;
        knownCounter = counter;
        lastReported.set(sourceId, marks);
        if (degraded) {
          degraded = false;
          failures = 0;
          listener.flowing();
        }
      } while (checkAgain && !signal.aborted);
    } finally {
      checking = false;
    }
  };

  /** The fallback for filesystems without notifications: a stat, and a manifest read only when it moved. */
  const poll = async () => {
    try {
      const st = await fs.stat(manifestPath);
      const journal = await fs.stat(journalPath).catch(() => undefined);
      const journalId = journal ? `${journal.ino}:${journal.size}:${journal.mtimeMs}` : '-';
      const id = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${journalId}`;
      if (id === lastStat) return;
      lastStat = id;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        fail('StoreUnreadable', `the local store manifest cannot be read: ${errorText(err)}`);
        return;
      }
      // No manifest: an empty store, or the directory is gone (check tells which).
      if (lastStat === 'none') return;
      lastStat = 'none';
    }
    await check();
  };

  function start(): void {
    if (signal.aborted) return;
    try {
      watcher = watch(store.dir, { persistent: false }, (_event, filename) => {
        if (filename === null || filename === MANIFEST_FILE || filename === MANIFEST_JOURNAL_FILE) soon();
      });
      watcher.on('error', (err) =>
        fail('WatcherError', `watching the local store directory failed: ${errorText(err)}`),
      );
    } catch (err) {
      fail('WatcherError', `cannot watch the local store directory: ${errorText(err)}`);
      return;
    }
    pollTimer = setInterval(() => void poll(), localWatchSettings.pollMs);
    pollTimer.unref();
    void poll();
  }

  signal.addEventListener(
    'abort',
    () => {
      stopWatching();
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = undefined;
    },
    { once: true },
  );
  start();
}
