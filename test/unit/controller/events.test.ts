import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { EventRecorder } from '../../../src/controller/events.js';
import type { KubeClient } from '../../../src/kube/client.js';
import { createLogger } from '../../../src/observability/logger.js';

interface Posted {
  type: string;
  reason: string;
  message: string;
}

/** Our KubeClient's one method the recorder uses, recording the Events it is asked to create. */
function recordingClient(): { client: KubeClient; posted: Posted[] } {
  const posted: Posted[] = [];
  const client = {
    request: (_method: string, _path: string, opts: { body: Posted }) => {
      posted.push({ type: opts.body.type, reason: opts.body.reason, message: opts.body.message });
      return Promise.resolve({});
    },
  } as unknown as KubeClient;
  return { client, posted };
}

const target = (i: number) => ({
  apiVersion: 'secretsync.io/v1alpha1',
  kind: 'ManagedSecret',
  name: `ms-${i}`,
  namespace: 'apps',
  uid: `uid-${i}`,
});

describe('EventRecorder', () => {
  const logger = createLogger('error', new PassThrough());

  it('records the same reason and message for one object once per repeat window', () => {
    const { client, posted } = recordingClient();
    const recorder = new EventRecorder(client, logger);
    for (let i = 0; i < 5; i++) recorder.emit(target(1), 'Warning', 'KeyNotFound', 'key db/password not found');
    recorder.emit(target(1), 'Warning', 'KeyNotFound', 'key db/user not found');
    expect(posted.map((p) => p.message)).to.deep.equal(['key db/password not found', 'key db/user not found']);
  });

  it('drops Events beyond the budget of their type, counts them, and keeps the other type going', () => {
    const { client, posted } = recordingClient();
    const dropped: string[] = [];
    const recorder = new EventRecorder(client, logger, {
      repeatAfterMs: 60_000,
      budget: { normalPerSecond: 0.001, normalBurst: 10, warningPerSecond: 0.001, warningBurst: 3 },
      onDropped: (type) => dropped.push(type),
    });
    for (let i = 0; i < 1000; i++) recorder.emit(target(i), 'Normal', 'Synced', `Secret apps/s-${i} created`);
    for (let i = 0; i < 5; i++) recorder.emit(target(i), 'Warning', 'ProviderError', 'store unreachable');
    expect(posted.filter((p) => p.type === 'Normal')).to.have.length(10);
    expect(posted.filter((p) => p.type === 'Warning')).to.have.length(3);
    expect(dropped.filter((t) => t === 'Normal')).to.have.length(990);
    expect(dropped.filter((t) => t === 'Warning')).to.have.length(2);
  });

  it('a dropped Event is not remembered as sent: it is recorded once the budget refills', async () => {
    const { client, posted } = recordingClient();
    const recorder = new EventRecorder(client, logger, {
      repeatAfterMs: 60_000,
      budget: { normalPerSecond: 50, normalBurst: 1, warningPerSecond: 50, warningBurst: 1 },
    });
    recorder.emit(target(1), 'Normal', 'Synced', 'first');
    recorder.emit(target(2), 'Normal', 'Synced', 'second');
    expect(posted).to.have.length(1);
    await new Promise((r) => setTimeout(r, 60));
    recorder.emit(target(2), 'Normal', 'Synced', 'second');
    expect(posted.map((p) => p.message)).to.deep.equal(['first', 'second']);
  });
});
