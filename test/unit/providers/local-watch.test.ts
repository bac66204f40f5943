// The local store's change watcher on a real directory (no fakes below our
// ChangeListener interface): puts and deletes are reported by entry name, a
// manifest rewrite that changes nothing reports nothing, an unreadable
// directory degrades the source and its return reports what changed meanwhile,
// and a watcher started again for the same store reports what happened between.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStore } from '../../../src/providers/local/store.js';
import { localWatchSettings, watchLocalStore } from '../../../src/providers/local/watch.js';
import type { ChangeListener } from '../../../src/providers/provider.js';

function recorder() {
  const log: string[] = [];
  const listener: ChangeListener = {
    changed: (keys) => log.push(`changed ${[...keys].sort().join(',')}`),
    changedAll: () => log.push('all'),
    degraded: (reason) => log.push(`degraded ${reason}`),
    flowing: () => log.push('flowing'),
  };
  return { log, listener };
}

const until = async (what: string, check: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('local store watcher', function () {
  this.timeout(20_000);
  let dir: string;
  let key: Buffer;
  let writer: LocalStore;
  let watched: LocalStore;
  const stops: AbortController[] = [];
  const saved = { ...localWatchSettings };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'secretsync-watch-'));
    key = randomBytes(32);
    writer = new LocalStore(dir, Buffer.from(key));
    await writer.put('seed', { value: 's' });
    watched = new LocalStore(dir, Buffer.from(key));
  });

  afterEach(() => {
    for (const s of stops.splice(0)) s.abort();
    Object.assign(localWatchSettings, saved);
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}.away`, { recursive: true, force: true });
  });

  const start = (id: string, listener: ChangeListener) => {
    const stop = new AbortController();
    stops.push(stop);
    watchLocalStore(watched, id, listener, stop.signal);
    return stop;
  };

  it('reports each put and delete by entry name, once', async () => {
    const { log, listener } = recorder();
    start('a', listener);
    await new Promise((r) => setTimeout(r, 100));
    await writer.put('db/prod', { value: '1' });
    await until('the put', () => log.includes('changed db/prod'));
    await writer.delete('seed');
    await until('the delete', () => log.includes('changed seed'));
    await new Promise((r) => setTimeout(r, 1_200));
    expect(log).to.deep.equal(['changed db/prod', 'changed seed']);
  });

  it('degrades while the directory is gone, and reports what changed meanwhile when it is back', async () => {
    localWatchSettings.retryMs = 300;
    const { log, listener } = recorder();
    start('b', listener);
    await new Promise((r) => setTimeout(r, 100));
    renameSync(dir, `${dir}.away`);
    await until('degraded', () => log.some((l) => l.startsWith('degraded')), 3_000);
    expect(log[0]).to.equal('degraded StoreUnreadable');
    const away = new LocalStore(`${dir}.away`, Buffer.from(key));
    await away.put('while/away', { value: 'x' });
    renameSync(`${dir}.away`, dir);
    await until('flowing', () => log.includes('flowing'), 5_000);
    expect(log).to.include('changed while/away');
  });

  it('a watcher started again for the same store reports what changed while none ran', async () => {
    const first = recorder();
    const stop = start('c', first.listener);
    await new Promise((r) => setTimeout(r, 100));
    stop.abort();
    await writer.put('between', { value: 'b' });
    const second = recorder();
    start('c', second.listener);
    await until('the change made between the two', () => second.log.includes('changed between'));
    // Another store identity starts blind: nothing to compare with.
    const other = recorder();
    start('d', other.listener);
    await new Promise((r) => setTimeout(r, 300));
    expect(other.log).to.deep.equal([]);
  });
});
