// Event-driven sync from AWS through the operator and the real control plane:
// a Secrets Manager change announced on the EventBridge bus (the documented
// CloudTrail shape), routed by a real rule (docs/events-aws.md's pattern) to a
// real SQS queue in moto, reaches the Secret within 2 s although the
// ManagedSecret refreshes hourly; an event for a secret no ManagedSecret reads
// causes no backend read; a duplicate event writes nothing; a poison message is
// set aside; and when the queue goes away the store says EventsDegraded, its
// ManagedSecrets poll at the fallback interval, and events resume once the
// queue is back.
import {
  DeleteRuleCommand,
  EventBridgeClient,
  PutEventsCommand,
  PutRuleCommand,
  PutTargetsCommand,
  RemoveTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import { CreateSecretCommand, PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { expect } from 'chai';
import { API_VERSION, type SecretStore } from '../../../src/api/types.js';
import { waitFor } from '../../../tools/testenv/index.js';
import { sharedCluster, sharedMoto, uniqueName } from '../env.js';
import {
  adminClient,
  createManagedSecret,
  createMotoSecretsManagerStore,
  decoded,
  ensureNamespace,
  getSecret,
  listEvents,
  startOperator,
  waitForSecretData,
  type RunningOperator,
} from '../operator.js';
import { EVENT_PATTERN, parameterChange, secretsManagerCall } from '../providers/aws-events.js';

const client = () => adminClient(sharedCluster());

describe('events: SQS fed by EventBridge, through the operator (moto)', function () {
  this.timeout(120_000);
  const namespace = uniqueName('events-sqs');
  const queueName = uniqueName('secretsync-events');
  const ruleName = uniqueName('secretsync');
  let operator: RunningOperator | undefined;
  let sm: SecretsManagerClient;
  let ssm: SSMClient;
  let sqs: SQSClient;
  let bus: EventBridgeClient;
  let queueUrl = '';
  let dbArn = '';

  async function createQueueAndRule(): Promise<void> {
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: queueName }))).QueueUrl ?? '';
    const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
    await bus.send(new PutRuleCommand({ Name: ruleName, EventPattern: JSON.stringify(EVENT_PATTERN) }));
    await bus.send(
      new PutTargetsCommand({ Rule: ruleName, Targets: [{ Id: 'queue', Arn: attrs.Attributes?.QueueArn }] }),
    );
  }

  /** Writes a new value and announces it as CloudTrail does (by name in the request, the ARN in the response). */
  async function change(name: string, value: string): Promise<void> {
    const out = await sm.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }));
    await announce(name, out.ARN ?? '');
  }

  async function announce(name: string, arn: string): Promise<void> {
    const sent = await bus.send(
      new PutEventsCommand({
        Entries: [secretsManagerCall('PutSecretValue', { secretId: name }, { arn, versionId: 'v' })],
      }),
    );
    expect(sent.FailedEntryCount ?? 0).to.equal(0);
  }

  async function storeCondition(): Promise<{ status: string; reason?: string; message?: string } | undefined> {
    const store = await client().get<SecretStore>(`/apis/${API_VERSION}/namespaces/${namespace}/secretstores/sm`);
    return store.status?.conditions?.find((c) => c.type === 'EventsDegraded');
  }

  async function waitForEventsDegraded(status: 'True' | 'False', timeoutMs = 15_000) {
    return waitFor(
      `EventsDegraded=${status}`,
      async () => {
        const c = await storeCondition();
        return c?.status === status ? c : undefined;
      },
      timeoutMs,
      50,
    );
  }

  /** Requests to Secrets Manager itself (reads of values), not to the queue. */
  async function backendReads(): Promise<number> {
    if (!operator) throw new Error('no operator');
    return (await operator.metrics.providerRequests.get()).values
      .filter((v) => v.labels.provider === 'awsSecretsManager')
      .filter((v) => ['GetSecretValue', 'BatchGetSecretValue'].includes(String(v.labels.operation)))
      .reduce((n, v) => n + v.value, 0);
  }

  async function queueCalls(operation: string): Promise<number> {
    if (!operator) throw new Error('no operator');
    return (await operator.metrics.providerRequests.get()).values
      .filter((v) => v.labels.operation === operation)
      .reduce((n, v) => n + v.value, 0);
  }

  async function syncCounts(): Promise<{ synced: number; unchanged: number }> {
    if (!operator) throw new Error('no operator');
    const values = (await operator.metrics.syncs.get()).values;
    const sum = (result: string) => values.filter((v) => v.labels.result === result).reduce((n, v) => n + v.value, 0);
    return { synced: sum('synced'), unchanged: sum('unchanged') };
  }

  async function latencyOf(
    secret: string,
    key: string,
    expected: string,
    act: () => Promise<unknown>,
  ): Promise<number> {
    const start = performance.now();
    await act();
    await waitFor(
      `Secret ${namespace}/${secret} ${key}=${expected}`,
      async () => ((decoded(await getSecret(client(), namespace, secret))[key] ?? '') === expected ? true : undefined),
      10_000,
      10,
    );
    return performance.now() - start;
  }

  before(async () => {
    await sharedMoto().reset();
    sm = new SecretsManagerClient(sharedMoto().clientConfig());
    ssm = new SSMClient(sharedMoto().clientConfig());
    sqs = new SQSClient(sharedMoto().clientConfig());
    bus = new EventBridgeClient(sharedMoto().clientConfig());
    dbArn = (await sm.send(new CreateSecretCommand({ Name: 'app/db', SecretString: 'v0' }))).ARN ?? '';
    await sm.send(new CreateSecretCommand({ Name: 'app/api', SecretString: 'a0' }));
    await sm.send(new CreateSecretCommand({ Name: 'unused', SecretString: 'u0' }));
    await createQueueAndRule();

    await ensureNamespace(client(), namespace);
    await createMotoSecretsManagerStore(client(), namespace, 'sm', {
      extra: { events: { sqs: { queueUrl, endpoint: sharedMoto().endpoint }, fallbackRefreshInterval: '2s' } },
    });
    // Two readers of app/db (by name, and by its full ARN), one of app/api; nobody reads `unused`.
    const reader = (name: string, key: string) =>
      createManagedSecret(client(), namespace, {
        metadata: { name },
        spec: {
          storeRef: { name: 'sm' },
          refreshInterval: '1h',
          data: [{ secretKey: 'value', remoteRef: { key } }],
        },
      });
    // A Parameter Store store on a queue of its own, fed by a rule for aws.ssm only.
    const ssmQueueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: `${queueName}-ssm` }))).QueueUrl ?? '';
    const ssmQueueArn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: ssmQueueUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes?.QueueArn;
    await bus.send(
      new PutRuleCommand({
        Name: `${ruleName}-ssm`,
        EventPattern: JSON.stringify({ ...EVENT_PATTERN, source: ['aws.ssm'] }),
      }),
    );
    await bus.send(new PutTargetsCommand({ Rule: `${ruleName}-ssm`, Targets: [{ Id: 'queue', Arn: ssmQueueArn }] }));
    await ssm.send(new PutParameterCommand({ Name: '/app/param', Value: 'p0', Type: 'SecureString' }));
    await client().request('POST', `/apis/${API_VERSION}/namespaces/${namespace}/secretstores`, {
      body: {
        apiVersion: API_VERSION,
        kind: 'SecretStore',
        metadata: { name: 'ssm' },
        spec: {
          provider: {
            awsParameterStore: {
              region: sharedMoto().region,
              endpoint: sharedMoto().endpoint,
              auth: {
                secretRef: {
                  accessKeyIdSecretRef: { name: 'aws-creds', key: 'access-key-id' },
                  secretAccessKeySecretRef: { name: 'aws-creds', key: 'secret-access-key' },
                },
              },
              events: { sqs: { queueUrl: ssmQueueUrl, endpoint: sharedMoto().endpoint } },
            },
          },
        },
      },
    });
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'param' },
      spec: {
        storeRef: { name: 'ssm' },
        refreshInterval: '1h',
        data: [{ secretKey: 'value', remoteRef: { key: '/app/param' } }],
      },
    });
    await reader('db-by-name', 'app/db');
    await reader('db-by-arn', dbArn);
    await reader('api', 'app/api');
    operator = await startOperator(sharedCluster(), { namespaces: [namespace] });
    await waitForSecretData(client(), namespace, 'db-by-name', (d) => d.value === 'v0');
    await waitForSecretData(client(), namespace, 'db-by-arn', (d) => d.value === 'v0');
    await waitForSecretData(client(), namespace, 'api', (d) => d.value === 'a0');
    await waitForSecretData(client(), namespace, 'param', (d) => d.value === 'p0');
    await waitForEventsDegraded('False');
  });

  after(async () => {
    await operator?.stop();
    sm?.destroy();
    ssm?.destroy();
    sqs?.destroy();
    bus?.destroy();
  });

  it('brings a change to the Secret within 2 s although refreshInterval is 1h, for readers by name and by ARN', async () => {
    const latencies: number[] = [];
    for (let i = 1; i <= 5; i++)
      latencies.push(await latencyOf('db-by-name', 'value', `v${i}`, () => change('app/db', `v${i}`)));
    latencies.sort((a, b) => a - b);
    console.log(`      change → Secret: ${latencies.map(Math.round).join(', ')} ms`);
    expect(latencies[4], `slowest of ${latencies.map(Math.round).join(', ')} ms`).to.be.below(2_000);
    await waitForSecretData(client(), namespace, 'db-by-arn', (d) => d.value === 'v5', 2_000);
    expect(decoded(await getSecret(client(), namespace, 'api')).value).to.equal('a0');
  });

  it('reads nothing from Secrets Manager for an event about a secret no ManagedSecret reads', async () => {
    const before = await backendReads();
    const deletes = await queueCalls('DeleteMessageBatch');
    await change('unused', 'u1');
    // The message was received and deleted: the operator saw it.
    await waitFor(
      'the event consumed',
      async () => ((await queueCalls('DeleteMessageBatch')) > deletes ? true : undefined),
      5_000,
      20,
    );
    await new Promise((r) => setTimeout(r, 500));
    expect(await backendReads()).to.equal(before);
  });

  it('writes nothing for a duplicate event', async () => {
    await latencyOf('api', 'value', 'a1', () => change('app/api', 'a1'));
    await new Promise((r) => setTimeout(r, 300));
    const version = (await getSecret(client(), namespace, 'api'))?.metadata.resourceVersion;
    const before = await syncCounts();
    const deletes = await queueCalls('DeleteMessageBatch');
    await announce('app/api', '');
    await waitFor(
      'the duplicate consumed',
      async () => ((await queueCalls('DeleteMessageBatch')) > deletes ? true : undefined),
      5_000,
      20,
    );
    await new Promise((r) => setTimeout(r, 500));
    const after = await syncCounts();
    expect(after.unchanged - before.unchanged, 'the duplicate did trigger a sync').to.be.at.least(1);
    expect(after.synced - before.synced).to.equal(0);
    expect((await getSecret(client(), namespace, 'api'))?.metadata.resourceVersion).to.equal(version);
  });

  it('sets a poison message aside (logged without its body) and handles the next one', async () => {
    await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: '{"SecretString": "hunter2-in-poison"' }));
    const ms = await latencyOf('api', 'value', 'a2', () => change('app/api', 'a2'));
    expect(ms).to.be.below(2_000);
    const logs = operator?.logs ?? [];
    await waitFor(
      'the poison log line',
      async () => (logs.some((l) => l.includes('poison message')) ? true : undefined),
      5_000,
      20,
    );
    expect(logs.join('\n')).to.not.contain('hunter2');
    const poison = (await operator?.metrics.eventSourceMessages.get())?.values.find(
      (v) => v.labels.outcome === 'poison' && v.labels.store === `SecretStore ${namespace}/sm`,
    );
    expect(poison?.value).to.equal(1);
    expect(await operator?.scrape()).to.match(
      /secretsync_event_source_messages_total\{[^}]*outcome="handled"[^}]*\} [1-9]/,
    );
  });

  it('Parameter Store: a Parameter Store Change reaches the Secret within 2 s', async () => {
    const ms = await latencyOf('param', 'value', 'p1', async () => {
      await ssm.send(
        new PutParameterCommand({ Name: '/app/param', Value: 'p1', Type: 'SecureString', Overwrite: true }),
      );
      const sent = await bus.send(new PutEventsCommand({ Entries: [parameterChange('/app/param')] }));
      expect(sent.FailedEntryCount ?? 0).to.equal(0);
    });
    expect(ms).to.be.below(2_000);
  });

  it('says EventsDegraded when the queue goes away, polls at the fallback interval, and recovers when it is back', async () => {
    await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
    // The long poll in flight ends first (up to 20 s), then the next receive fails.
    const degraded = await waitForEventsDegraded('True', 40_000);
    expect(degraded.reason).to.equal('QueueNotFound');
    expect(degraded.message).to.contain(queueName).and.contain('refresh every 2s');
    // No event can arrive: the fallback polling brings the change.
    await sm.send(new PutSecretValueCommand({ SecretId: 'app/db', SecretString: 'polled' }));
    await waitForSecretData(client(), namespace, 'db-by-name', (d) => d.value === 'polled', 8_000);
    const events = await listEvents(client(), namespace);
    expect(events.some((e) => (e as { reason?: string }).reason === 'EventsDegraded')).to.equal(true);

    await bus.send(new RemoveTargetsCommand({ Rule: ruleName, Ids: ['queue'] }));
    await bus.send(new DeleteRuleCommand({ Name: ruleName }));
    await createQueueAndRule();
    await waitForEventsDegraded('False', 30_000);
    const ms = await latencyOf('db-by-name', 'value', 'after', () => change('app/db', 'after'));
    expect(ms).to.be.below(2_000);
  });
});
