// The AWS event source against moto: a real EventBridge rule with the event
// pattern of docs/events-aws.md targets a real SQS queue; events with the
// documented shapes are put on the bus (PutEvents), routed by moto to the
// queue, and consumed by the Secrets Manager / Parameter Store clients'
// watchChanges. The operator side (which ManagedSecrets a key triggers) is
// tested in test/integration/controller/events-sqs.test.ts.
import {
  DeleteRuleCommand,
  EventBridgeClient,
  PutEventsCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
  type PutEventsRequestEntry,
} from '@aws-sdk/client-eventbridge';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { expect } from 'chai';
import type { AwsEventsSpec } from '../../../src/api/types.js';
import { startSqsEvents } from '../../../src/providers/aws/events/sqs-events.js';
import { awsParameterStoreProvider } from '../../../src/providers/aws-parameter-store/index.js';
import { awsSecretsManagerProvider } from '../../../src/providers/aws-secrets-manager/index.js';
import type { ChangeListener, ProviderClient } from '../../../src/providers/provider.js';
import { sharedMoto, uniqueName } from '../env.js';
import { ACCOUNT, EVENT_PATTERN, parameterChange, secretsManagerCall } from './aws-events.js';
import { awsClusterStore, memoryContext, motoKeys, motoSpec, type CountingContext } from './aws-context.js';

/** What a listener was told, in order. */
class RecordingListener implements ChangeListener {
  readonly calls: (
    | { kind: 'changed'; keys: readonly string[] }
    | { kind: 'changedAll' }
    | { kind: 'degraded'; reason: string; message: string }
    | { kind: 'flowing' }
  )[] = [];

  changed(keys: readonly string[]): void {
    this.calls.push({ kind: 'changed', keys: [...keys] });
  }
  changedAll(): void {
    this.calls.push({ kind: 'changedAll' });
  }
  degraded(reason: string, message: string): void {
    this.calls.push({ kind: 'degraded', reason, message });
  }
  flowing(): void {
    this.calls.push({ kind: 'flowing' });
  }

  changedKeys(): string[] {
    return this.calls.flatMap((c) => (c.kind === 'changed' ? c.keys : []));
  }
  count(kind: string): number {
    return this.calls.filter((c) => c.kind === kind).length;
  }
}

async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const got = await probe();
    if (got !== undefined && got !== false) return got;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('AWS event source: EventBridge → SQS → watchChanges (moto)', function () {
  this.timeout(90_000);
  let sqs: SQSClient;
  let events: EventBridgeClient;
  let queueUrl: string;
  let queueName: string;
  let ruleName: string;
  let client: ProviderClient | undefined;
  let ctx: CountingContext;
  let logLines: { level: string; message: string; fields: Record<string, string | number> }[];
  let stop: AbortController;

  async function createQueueAndRule(): Promise<void> {
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: queueName }))).QueueUrl ?? '';
    const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
    await events.send(new PutRuleCommand({ Name: ruleName, EventPattern: JSON.stringify(EVENT_PATTERN) }));
    await events.send(
      new PutTargetsCommand({ Rule: ruleName, Targets: [{ Id: 'queue', Arn: attrs.Attributes?.QueueArn }] }),
    );
  }

  async function inQueue(): Promise<number> {
    const attrs = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    return (
      Number(attrs.Attributes?.ApproximateNumberOfMessages ?? 0) +
      Number(attrs.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
    );
  }

  async function put(...entries: PutEventsRequestEntry[]): Promise<void> {
    const out = await events.send(new PutEventsCommand({ Entries: entries }));
    expect(out.FailedEntryCount ?? 0).to.equal(0);
  }

  function eventsSpec(extra: Partial<AwsEventsSpec['sqs']> = {}): AwsEventsSpec {
    return { sqs: { queueUrl, endpoint: sharedMoto().endpoint, ...extra } };
  }

  async function watch(
    block: 'awsSecretsManager' | 'awsParameterStore',
    spec: AwsEventsSpec | undefined = eventsSpec(),
  ): Promise<RecordingListener> {
    ctx = memoryContext(motoKeys.secrets, undefined);
    ctx.log = (level, message, fields) => logLines.push({ level, message, fields });
    const store = awsClusterStore(block, motoSpec({ auth: motoKeys.auth, ...(spec ? { events: spec } : {}) }));
    const provider = block === 'awsSecretsManager' ? awsSecretsManagerProvider : awsParameterStoreProvider;
    client = await provider.connect(store, ctx);
    const listener = new RecordingListener();
    expect(client.watchChanges?.(listener, stop.signal)).to.equal(true);
    return listener;
  }

  beforeEach(async () => {
    await sharedMoto().reset();
    sqs = new SQSClient(sharedMoto().clientConfig());
    events = new EventBridgeClient(sharedMoto().clientConfig());
    queueName = uniqueName('events');
    ruleName = uniqueName('secretsync');
    logLines = [];
    stop = new AbortController();
    await createQueueAndRule();
  });

  afterEach(async () => {
    stop.abort();
    await client?.close();
    client = undefined;
    sqs.destroy();
    events.destroy();
  });

  it('a store without events.sqs has no event source', async () => {
    ctx = memoryContext(motoKeys.secrets, undefined);
    client = await awsSecretsManagerProvider.connect(
      awsClusterStore('awsSecretsManager', motoSpec({ auth: motoKeys.auth })),
      ctx,
    );
    expect(client.watchChanges?.(new RecordingListener(), stop.signal)).to.equal(false);
  });

  it('Secrets Manager: a PutSecretValue event names the secret by name and ARN forms, within a second, and is deleted', async () => {
    const listener = await watch('awsSecretsManager');
    // The first long poll is in flight before the change happens, as in steady state.
    await until('the first ReceiveMessage', () => ctx.count('ReceiveMessage') >= 1);
    const arn = `arn:aws:secretsmanager:${sharedMoto().region}:${ACCOUNT}:secret:app/db-AbC123`;
    const sent = Date.now();
    await put(secretsManagerCall('PutSecretValue', { secretId: 'app/db' }, { arn, versionId: 'v2' }));
    const keys = await until('the changed keys', () =>
      listener.count('changed') > 0 ? listener.changedKeys() : false,
    );
    const latencyMs = Date.now() - sent;
    expect(keys).to.include.members([
      'app/db',
      arn,
      `arn:aws:secretsmanager:${sharedMoto().region}:${ACCOUNT}:secret:app/db`,
    ]);
    expect(latencyMs).to.be.below(2000);
    await until('the message deleted', async () => (await inQueue()) === 0);
    expect(listener.count('degraded')).to.equal(0);
  });

  it('Parameter Store: a Parameter Store Change event names the parameter; a Secrets Manager event is ignored and deleted', async () => {
    const listener = await watch('awsParameterStore');
    await put(
      secretsManagerCall('PutSecretValue', { secretId: 'not-a-parameter' }),
      parameterChange('/app/db/password'),
    );
    await until('the changed keys', () => listener.count('changed') > 0);
    await until('both messages deleted', async () => (await inQueue()) === 0);
    expect(listener.changedKeys()).to.include('/app/db/password');
    expect(listener.changedKeys()).to.not.include('not-a-parameter');
  });

  it('a poison message is set aside (deleted, counted, logged without its body) and the next message is handled', async () => {
    const listener = await watch('awsSecretsManager');
    const body = 'not json: hunter2-secret-value';
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
    await sqs.send(
      new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify({ source: 'aws.secretsmanager' }) }),
    );
    await put(secretsManagerCall('UpdateSecret', { secretId: 'after-poison' }));
    await until('the good event', () => listener.changedKeys().includes('after-poison'));
    await until('two poison lines', () => logLines.filter((l) => l.message.includes('poison')).length >= 2);
    const text = JSON.stringify(logLines);
    expect(text).to.not.contain('hunter2');
    const poison = logLines.filter((l) => l.message.includes('poison'));
    expect(poison[0]?.fields).to.include({ why: 'not JSON', bytes: Buffer.byteLength(body) });
    expect(poison[0]?.fields.messageId).to.be.a('string');
    // Deleted, not left for the visibility timeout (nothing in flight either).
    await until('the queue empty', async () => (await inQueue()) === 0);
  });

  it('a message naming more keys than allowed means "anything may have changed"; a larger one than EventBridge sends is poison', async () => {
    const listener = await watch('awsSecretsManager');
    // About 200 KB: under EventBridge's 256 KB, with 2,500 secrets named.
    const many = Array.from(
      { length: 2500 },
      (_, i) => `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:s${i}-AbC123`,
    );
    const hostile = (resources: string[]) =>
      JSON.stringify({
        source: 'aws.secretsmanager',
        'detail-type': 'AWS API Call via CloudTrail',
        resources,
        detail: { eventName: 'TagResource', requestParameters: { secretId: 's0' } },
      });
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: hostile(many) }));
    await until('changedAll', () => listener.count('changedAll') > 0);
    expect(listener.changedKeys()).to.deep.equal([]);
    // About 900 KB: SQS takes it, EventBridge could not have sent it.
    await sqs.send(
      new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: hostile([...many, ...many, ...many, ...many]) }),
    );
    await until('poison', () => logLines.some((l) => l.message.includes('poison')));
    expect(listener.count('changedAll')).to.equal(1);
    await until('the queue empty', async () => (await inQueue()) === 0);
  });

  it('the queue going away degrades the source (QueueNotFound); recreated, events flow again with one full sync', async () => {
    const listener = await watch('awsSecretsManager');
    await until('the first ReceiveMessage', () => ctx.count('ReceiveMessage') >= 1);
    const deletedAt = Date.now();
    await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
    const degraded = await until('degraded', () => listener.calls.find((c) => c.kind === 'degraded'), 30_000);
    expect(degraded).to.include({ reason: 'QueueNotFound' });
    expect((degraded as { message: string }).message)
      .to.contain(queueName)
      .and.contain('ClusterSecretStore aws');
    expect(listener.count('flowing')).to.equal(0);
    const degradedAfterMs = Date.now() - deletedAt;

    await events.send(new RemoveTargetsCommand({ Rule: ruleName, Ids: ['queue'] }));
    await events.send(new DeleteRuleCommand({ Name: ruleName }));
    await createQueueAndRule();
    const recreatedAt = Date.now();
    await until('flowing', () => listener.count('flowing') > 0, 30_000);
    console.log(
      `      degraded ${degradedAfterMs} ms after the delete; flowing ${Date.now() - recreatedAt} ms after the recreate`,
    );
    const flowingAt = listener.calls.findIndex((c) => c.kind === 'flowing');
    expect(listener.calls[flowingAt + 1]).to.deep.equal({ kind: 'changedAll' });
    await put(secretsManagerCall('PutSecretValue', { secretId: 'after-recovery' }));
    await until('the event after recovery', () => listener.changedKeys().includes('after-recovery'));
    expect(listener.count('degraded')).to.equal(1);
  });

  it('sends its requests to events.sqs.endpoint, never to the host the queue URL names', async () => {
    // The queue URL's host does not exist: only the configured endpoint (moto) can answer.
    const elsewhere = `http://unreachable.invalid:9/${ACCOUNT}/${queueName}`;
    const listener = await watch('awsSecretsManager', {
      sqs: { queueUrl: elsewhere, endpoint: sharedMoto().endpoint },
    });
    await put(secretsManagerCall('PutSecretValue', { secretId: 'via-endpoint' }));
    await until('the event', () => listener.changedKeys().includes('via-endpoint'));
    expect(listener.count('degraded')).to.equal(0);
  });

  it("events.sqs.auth naming a Secret that is not there: degraded (the Secret's name, no value); once it exists, events flow", async () => {
    const secrets: Record<string, Record<string, string>> = { ...motoKeys.secrets };
    ctx = memoryContext(secrets, undefined);
    const queueAuth = {
      secretRef: {
        accessKeyIdSecretRef: { name: 'queue', key: 'id', namespace: 'creds' },
        secretAccessKeySecretRef: { name: 'queue', key: 'secret', namespace: 'creds' },
      },
    };
    const spec = motoSpec({ auth: motoKeys.auth, events: eventsSpec({ auth: queueAuth }) });
    const store = awsClusterStore('awsSecretsManager', spec);
    const listener = new RecordingListener();
    const running = startSqsEvents(
      { store, spec, service: 'secretsManager', ctx, configRetryMs: 200 },
      listener,
      stop.signal,
    );
    const degraded = await until('degraded', () => listener.calls.find((c) => c.kind === 'degraded'));
    expect(degraded).to.include({ reason: 'InvalidProviderConfig' });
    expect((degraded as { message: string }).message)
      .to.contain('Secret creds/queue')
      .and.contain('events.sqs');
    secrets['creds/queue'] = { id: 'testing', secret: 'testing' };
    await until('flowing', () => listener.count('flowing') > 0);
    expect(listener.calls.slice(-2)).to.deep.equal([{ kind: 'flowing' }, { kind: 'changedAll' }]);
    await put(secretsManagerCall('PutSecretValue', { secretId: 'with-queue-keys' }));
    await until('the event', () => listener.changedKeys().includes('with-queue-keys'));
    stop.abort();
    await running;
  });

  it('an endpoint that refuses connections: degraded with QueueUnreachable, retried with back-off', async () => {
    const listener = await watch('awsSecretsManager', { sqs: { queueUrl, endpoint: 'http://127.0.0.1:9' } });
    const degraded = await until('degraded', () => listener.calls.find((c) => c.kind === 'degraded'));
    expect(degraded).to.include({ reason: 'QueueUnreachable' });
    expect((degraded as { message: string }).message).to.contain('SQS ReceiveMessage');
    // Back-off: 1 s, then 2 s: a handful of tries in 3 s, not hundreds.
    await new Promise((r) => setTimeout(r, 3000));
    expect(ctx.count('ReceiveMessage')).to.be.within(2, 4);
    expect(listener.count('degraded')).to.equal(1);
  });

  it('stops polling when the signal aborts', async () => {
    await watch('awsSecretsManager');
    await until('the first ReceiveMessage', () => ctx.count('ReceiveMessage') >= 1);
    stop.abort();
    await new Promise((r) => setTimeout(r, 300));
    const polls = ctx.count('ReceiveMessage');
    await put(secretsManagerCall('PutSecretValue', { secretId: 'after-stop' }));
    await new Promise((r) => setTimeout(r, 1000));
    expect(ctx.count('ReceiveMessage')).to.equal(polls);
    expect(await inQueue()).to.equal(1);
  });
});
