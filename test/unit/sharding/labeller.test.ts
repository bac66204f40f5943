import { Writable } from 'node:stream';
import { expect } from 'chai';
import type { KubeClient } from '../../../src/kube/client.js';
import { createLogger } from '../../../src/observability/logger.js';
import { ShardLabeller, shardLabelFix, unlabelledSelector } from '../../../src/sharding/labeller.js';
import { LABEL_SHARD, shardOf } from '../../../src/sharding/ownership.js';

const ms = (name: string, label?: string) => ({
  metadata: { name, namespace: 'team-a', ...(label === undefined ? {} : { labels: { [LABEL_SHARD]: label } }) },
});

describe('sharding: the shard labeller', () => {
  const computed = String(shardOf('team-a', 'db', 16));
  const other = String((Number(computed) + 1) % 16);

  it('leaves a ManagedSecret with its computed shard label alone', () => {
    expect(shardLabelFix(ms('db', computed), 16)).to.equal(undefined);
  });

  it('labels one without the label, or with a malformed, out-of-range or hand-edited one, with the computed shard', () => {
    for (const label of [undefined, '', 'x', '16', '007', other])
      expect(shardLabelFix(ms('db', label), 16), String(label)).to.equal(computed);
  });

  it('computes the label from the namespace and name (the same on every replica)', () => {
    expect(shardLabelFix({ metadata: { name: 'db', namespace: 'team-b' } }, 16)).to.equal(
      String(shardOf('team-b', 'db', 16)),
    );
  });

  it('selects, server-side, the objects without a valid shard label', () => {
    expect(unlabelledSelector(3)).to.equal(`${LABEL_SHARD} notin (0,1,2)`);
  });
});

describe('sharding: the shard labeller under a flood of new objects', () => {
  /** Our own client's request, faked: each call waits until the test answers it. */
  function fakeClient() {
    const calls: { path: string; answer: (err?: Error) => void }[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const client = {
      request: (_method: string, path: string) =>
        new Promise<void>((resolve, reject) => {
          inFlight += 1;
          maxInFlight = Math.max(maxInFlight, inFlight);
          calls.push({
            path,
            answer: (err) => {
              inFlight -= 1;
              if (err) reject(err);
              else resolve();
            },
          });
        }),
    };
    return { client: client as unknown as KubeClient, calls, peak: () => maxInFlight };
  }
  const flush = () => new Promise((r) => setImmediate(r));
  const silent = createLogger('error', new Writable({ write: (_c, _e, cb) => cb() }));

  it('keeps at most maxInFlight patches in flight and sends every one in turn', async () => {
    const { client, calls, peak } = fakeClient();
    const labeller = new ShardLabeller(client, { paths: [], shardCount: 16, log: silent, maxInFlight: 8 });
    for (let i = 0; i < 50; i++) labeller.label(ms(`ms-${i}`));
    await flush();
    expect(calls.length).to.equal(8);
    expect(labeller.queued).to.equal(42);
    for (let answered = 0; answered < 50; answered++) {
      calls[answered]?.answer();
      await flush();
    }
    expect(calls.length).to.equal(50);
    expect(new Set(calls.map((c) => c.path)).size).to.equal(50);
    expect(peak()).to.equal(8);
    await labeller.stop();
  });

  it('backs off longer after each failure of the same object', async () => {
    const { client, calls } = fakeClient();
    const labeller = new ShardLabeller(client, {
      paths: [],
      shardCount: 16,
      log: silent,
      retryBaseDelayMs: 20,
    });
    labeller.label(ms('db'));
    const sent: number[] = [];
    const started = Date.now();
    for (let attempt = 0; attempt < 4; attempt++) {
      while (calls.length <= attempt) await new Promise((r) => setTimeout(r, 2));
      sent.push(Date.now() - started);
      calls[attempt]?.answer(new Error('no answer within 30s'));
    }
    // Waits of 20, 40 and 80 ms between the attempts (a constant 20 ms before the fix).
    expect(sent[3]! - sent[2]!).to.be.at.least(75);
    expect(sent[2]! - sent[1]!).to.be.at.least(35);
    await labeller.stop();
  });
});
