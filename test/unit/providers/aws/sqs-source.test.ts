// SqsChangeSource over a scripted EventQueue (our own interface): what the
// listener is told, what is deleted, how failures degrade the source and how it
// recovers, and that the loop ends with its signal.
import { expect } from 'chai';
import type { ChangeListener } from '../../../../src/providers/provider.js';
import {
  QueueError,
  SqsChangeSource,
  THROTTLED_BEFORE_DEGRADED,
  type EventQueue,
  type QueueMessage,
} from '../../../../src/providers/aws/events/sqs-source.js';

type Step = QueueMessage[] | QueueError;

/** Answers each receive with the next scripted step; then waits (as an empty long poll would) until aborted. */
class ScriptedQueue implements EventQueue {
  readonly deleted: string[] = [];
  readonly polls: boolean[] = [];
  refuseDeletes = 0;

  constructor(private readonly steps: Step[]) {}

  async receive(signal: AbortSignal, long: boolean): Promise<QueueMessage[]> {
    this.polls.push(long);
    const step = this.steps.shift();
    if (step === undefined) {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      return [];
    }
    await Promise.resolve();
    if (step instanceof QueueError) throw step;
    return step;
  }

  async delete(messages: readonly QueueMessage[]): Promise<number> {
    this.deleted.push(...messages.map((m) => m.id));
    const refused = Math.min(this.refuseDeletes, messages.length);
    this.refuseDeletes -= refused;
    return refused;
  }

  get done(): boolean {
    return this.steps.length === 0;
  }
}

class Recorder implements ChangeListener {
  readonly calls: string[] = [];
  changed(keys: readonly string[]): void {
    this.calls.push(`changed:${[...keys].sort().join(',')}`);
  }
  changedAll(): void {
    this.calls.push('changedAll');
  }
  degraded(reason: string): void {
    this.calls.push(`degraded:${reason}`);
  }
  flowing(): void {
    this.calls.push('flowing');
  }
}

let nextId = 0;
function message(body: string): QueueMessage {
  nextId += 1;
  return { id: `m${nextId}`, receiptHandle: `h${nextId}`, body };
}

function parameterChange(name: string): QueueMessage {
  return message(JSON.stringify({ source: 'aws.ssm', 'detail-type': 'Parameter Store Change', detail: { name } }));
}

async function runUntilDone(
  queue: ScriptedQueue,
  listener: ChangeListener,
  extra: { log?: (level: string, message: string, fields: Record<string, string | number>) => void } = {},
): Promise<SqsChangeSource> {
  const source = new SqsChangeSource({
    queue,
    service: 'parameterStore',
    store: 'SecretStore ns/s',
    initialBackoffMs: 1,
    maxBackoffMs: 5,
    ...extra,
  });
  const stop = new AbortController();
  const running = source.run(listener, stop.signal);
  const end = Date.now() + 5000;
  while (!queue.done && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
  await new Promise((r) => setTimeout(r, 20));
  stop.abort();
  await running;
  return source;
}

describe('AWS events: SqsChangeSource', () => {
  it('tells the keys of a batch once (duplicates merged), then deletes every message of it', async () => {
    const batch = [parameterChange('/a'), parameterChange('/a'), parameterChange('/b')];
    const queue = new ScriptedQueue([batch]);
    const listener = new Recorder();
    const source = await runUntilDone(queue, listener);
    expect(listener.calls).to.deep.equal(['changed:/a,/b']);
    expect(queue.deleted).to.deep.equal(batch.map((m) => m.id));
    expect(source.stats).to.include({ received: 3, handled: 3, poison: 0 });
  });

  it('sets poison messages aside (deleted, counted, logged by id and size, never by content) without blocking the rest', async () => {
    const poison = message('{"password": "hunter2"');
    const good = parameterChange('/next');
    const queue = new ScriptedQueue([[poison], [good]]);
    const listener = new Recorder();
    const lines: string[] = [];
    const source = await runUntilDone(queue, listener, {
      log: (level, text, fields) => lines.push(JSON.stringify({ level, text, fields })),
    });
    expect(listener.calls).to.deep.equal(['changed:/next']);
    expect(queue.deleted).to.deep.equal([poison.id, good.id]);
    expect(source.stats.poison).to.equal(1);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.contain(poison.id).and.contain('not JSON').and.not.contain('hunter2');
  });

  it('counts messages by outcome for the metrics', async () => {
    const ignored = message(JSON.stringify({ source: 'aws.secretsmanager', 'detail-type': 'X', detail: {} }));
    const queue = new ScriptedQueue([[parameterChange('/a'), parameterChange('/b'), ignored, message('nope')]]);
    queue.refuseDeletes = 1;
    const counted: Record<string, number> = {};
    const source = new SqsChangeSource({
      queue,
      service: 'parameterStore',
      store: 's',
      count: (outcome, n) => {
        counted[outcome] = (counted[outcome] ?? 0) + n;
      },
    });
    const stop = new AbortController();
    const running = source.run(new Recorder(), stop.signal);
    while (!queue.done) await new Promise((r) => setTimeout(r, 2));
    await new Promise((r) => setTimeout(r, 20));
    stop.abort();
    await running;
    expect(counted).to.deep.equal({ handled: 2, ignored: 1, poison: 1, undeleted: 1 });
  });

  it('a message naming too many keys: changedAll, not a huge changed()', async () => {
    const resources = Array.from({ length: 1000 }, (_, i) => `/p${i}`);
    const hostile = message(
      JSON.stringify({ source: 'aws.ssm', 'detail-type': 'Parameter Store Change', resources, detail: { name: '/x' } }),
    );
    const queue = new ScriptedQueue([[hostile, parameterChange('/y')]]);
    const listener = new Recorder();
    const source = await runUntilDone(queue, listener);
    expect(listener.calls).to.deep.equal(['changedAll']);
    expect(source.stats.overflowed).to.equal(1);
  });

  it('a failure degrades the source once; the first good receive says flowing and changedAll; short polls meanwhile', async () => {
    const gone = new QueueError('QueueNotFound', 'SecretStore ns/s: SQS ReceiveMessage on q: QueueDoesNotExist');
    const queue = new ScriptedQueue([[], gone, gone, gone, [], [parameterChange('/after')]]);
    const listener = new Recorder();
    const source = await runUntilDone(queue, listener);
    expect(listener.calls).to.deep.equal(['degraded:QueueNotFound', 'flowing', 'changedAll', 'changed:/after']);
    expect(source.stats.receiveErrors).to.equal(3);
    // Long poll, then short polls while failing (and the first after), then long again.
    expect(queue.polls.slice(0, 6)).to.deep.equal([true, true, false, false, false, true]);
  });

  it('started degraded (its client could not be built at first): the first good receive, even empty, says flowing', async () => {
    const queue = new ScriptedQueue([[]]);
    const listener = new Recorder();
    const source = new SqsChangeSource({
      queue,
      service: 'parameterStore',
      store: 's',
      startDegraded: 'InvalidProviderConfig',
    });
    const stop = new AbortController();
    const running = source.run(listener, stop.signal);
    while (!queue.done) await new Promise((r) => setTimeout(r, 2));
    await new Promise((r) => setTimeout(r, 20));
    stop.abort();
    await running;
    expect(listener.calls).to.deep.equal(['flowing', 'changedAll']);
    expect(queue.polls[0]).to.equal(false);
  });

  it('a new reason while degraded is told; the same one is not repeated', async () => {
    const denied = new QueueError('AccessDenied', 'denied');
    const gone = new QueueError('QueueNotFound', 'gone');
    const queue = new ScriptedQueue([denied, denied, gone, []]);
    const listener = new Recorder();
    await runUntilDone(queue, listener);
    expect(listener.calls).to.deep.equal(['degraded:AccessDenied', 'degraded:QueueNotFound', 'flowing', 'changedAll']);
  });

  it(`throttling degrades only after ${THROTTLED_BEFORE_DEGRADED} in a row, and waits at least the Retry-After`, async () => {
    const throttled = new QueueError('Throttled', 'slow down', 30);
    const brief = new ScriptedQueue([throttled, throttled, []]);
    const calm = new Recorder();
    await runUntilDone(brief, calm);
    expect(calm.calls).to.deep.equal([]);

    const steps: Step[] = Array.from({ length: THROTTLED_BEFORE_DEGRADED }, () => throttled);
    const long = new ScriptedQueue([...steps, []]);
    const listener = new Recorder();
    const started = Date.now();
    await runUntilDone(long, listener);
    expect(listener.calls).to.deep.equal(['degraded:Throttled', 'flowing', 'changedAll']);
    expect(Date.now() - started).to.be.at.least(30 * THROTTLED_BEFORE_DEGRADED);
  });

  it('a listener that throws is not told again by deleting: its messages stay for redelivery', async () => {
    const queue = new ScriptedQueue([[parameterChange('/a')]]);
    const throwing: ChangeListener = {
      changed: () => {
        throw new Error('listener bug');
      },
      changedAll: () => undefined,
      degraded: () => undefined,
      flowing: () => undefined,
    };
    await runUntilDone(queue, throwing);
    expect(queue.deleted).to.deep.equal([]);
  });

  it('counts deletes the queue refused (they come back as harmless duplicates)', async () => {
    const queue = new ScriptedQueue([[parameterChange('/a'), parameterChange('/b')]]);
    queue.refuseDeletes = 1;
    const source = await runUntilDone(queue, new Recorder());
    expect(source.stats.deleteErrors).to.equal(1);
  });

  it('ends when its signal aborts, during a long poll or a back-off wait', async () => {
    const source = new SqsChangeSource({
      queue: new ScriptedQueue([new QueueError('QueueUnreachable', 'down')]),
      service: 'parameterStore',
      store: 's',
      initialBackoffMs: 60_000,
    });
    const stop = new AbortController();
    const running = source.run(new Recorder(), stop.signal);
    await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    stop.abort();
    await running;
    expect(Date.now() - started).to.be.below(100);
  });
});
