// `events.sqs` of an awsSecretsManager / awsParameterStore store: builds the
// queue's SQS client (the store's identity unless the block names its own),
// loads the SQS SDK only when a store uses it, and runs the SqsChangeSource
// until the watch is stopped. A ProviderClient's watchChanges calls
// `startSqsEvents`; everything here reports through the ChangeListener and
// never throws.
import { setTimeout as sleep } from 'node:timers/promises';
import type { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { deadline } from '../../../api/abort.js';
import { SecretsyncError } from '../../../api/errors.js';
import type { AnyStore, AwsCommonSpec, AwsEventsSpec } from '../../../api/types.js';
import { printableEndpoint } from '../../policy.js';
import {
  DEFAULT_PROVIDER_TIMEOUTS,
  ProviderConfigError,
  storeLabel,
  type ChangeListener,
  type ProviderContext,
} from '../../provider.js';
import { awsClientConfig, type AwsClientConfig } from '../client-config.js';
import { awsErrorName, describeAwsFailure, isAwsConfigError, isAwsThrottling, retryAfterMsOf } from '../errors.js';
import { requireInSteps } from '../load-in-steps.js';
import type { EventService } from './event-keys.js';
import {
  QueueError,
  SqsChangeSource,
  type EventQueue,
  type EventSourceLog,
  type QueueMessage,
  type SqsChangeSourceOptions,
} from './sqs-source.js';

/** ReceiveMessage long poll: the longest SQS allows, so an idle store costs 180 requests an hour. */
export const WAIT_TIME_SECONDS = 20;
/** The most SQS hands out per receive. */
export const MAX_MESSAGES = 10;
/** Wait before building the queue client again after a configuration error (a Secret that is not there yet). */
const CONFIG_RETRY_MS = 30_000;

const QUEUE_NOT_FOUND = new Set(['AWS.SimpleQueueService.NonExistentQueue', 'QueueDoesNotExist']);
/** The regional SQS hosts: sqs.<region>.amazonaws.com(.cn) and the legacy <region>.queue.amazonaws.com. */
const AWS_QUEUE_HOST = /^(?:sqs\.([a-z0-9-]+)|([a-z0-9-]+)\.queue)\.amazonaws\.com(?:\.cn)?$/;

type SqsSdk = typeof import('@aws-sdk/client-sqs');

/** What startSqsEvents needs from the provider that owns the store. */
export interface SqsEventsOptions {
  store: AnyStore;
  /** The provider block (awsSecretsManager or awsParameterStore). */
  spec: AwsCommonSpec & { events?: AwsEventsSpec };
  service: EventService;
  ctx: ProviderContext;
  /** Tests: shorter waits. */
  source?: Pick<SqsChangeSourceOptions, 'initialBackoffMs' | 'maxBackoffMs'>;
  /** Tests: how long to wait before building the client again after a configuration error. */
  configRetryMs?: number;
}

/** Whether the store declares an SQS event source. */
export function hasSqsEvents(spec: { events?: AwsEventsSpec }): boolean {
  return typeof spec.events?.sqs?.queueUrl === 'string' && spec.events.sqs.queueUrl !== '';
}

/**
 * The spec the queue's client is built from. Identity: the store's (auth and
 * roleArn) when `events.sqs` names neither; its own auth (with its own roleArn,
 * if any) when it names auth; the store's auth with its roleArn when it names
 * only roleArn (a queue role assumed with the store's credentials). Region:
 * `events.sqs.region`, else the queue URL's, else the store's. Endpoint: only
 * `events.sqs.endpoint` (the store's endpoint is another service's).
 */
export function queueClientSpec(spec: AwsCommonSpec & { events?: AwsEventsSpec }): AwsCommonSpec {
  const sqs = spec.events?.sqs;
  if (!sqs) throw new ProviderConfigError('events.sqs is not set');
  const auth = sqs.auth ?? spec.auth;
  const roleArn = sqs.auth !== undefined ? sqs.roleArn : (sqs.roleArn ?? spec.roleArn);
  const region = sqs.region ?? regionOfQueueUrl(sqs.queueUrl) ?? spec.region;
  return {
    region,
    ...(sqs.endpoint ? { endpoint: sqs.endpoint } : {}),
    ...(auth ? { auth } : {}),
    ...(roleArn ? { roleArn } : {}),
  };
}

/** The region in an AWS queue URL (`https://sqs.eu-west-1.amazonaws.com/…`); undefined for any other URL. */
export function regionOfQueueUrl(queueUrl: string): string | undefined {
  try {
    const m = AWS_QUEUE_HOST.exec(new URL(queueUrl).hostname);
    return m ? (m[1] ?? m[2]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs the store's SQS event source until `signal` aborts: builds the client
 * (a configuration error degrades the source and is tried again), loads the
 * SDK, and consumes the queue. Never throws.
 */
export async function startSqsEvents(
  options: SqsEventsOptions,
  listener: ChangeListener,
  signal: AbortSignal,
): Promise<SqsChangeSource | undefined> {
  const label = storeLabel(options.store);
  const queueUrl = options.spec.events?.sqs.queueUrl ?? '';
  let config: AwsClientConfig | undefined;
  let degraded: string | undefined;
  while (!signal.aborted && config === undefined) {
    try {
      if (!URL.canParse(queueUrl)) throw new ProviderConfigError(`events.sqs.queueUrl is not a URL`);
      config = await awsClientConfig(queueClientSpec(options.spec), options.store, options.ctx, { signal });
    } catch (err) {
      if (signal.aborted) return undefined;
      const message = `${label}: events.sqs: ${err instanceof Error ? err.message : 'cannot build the SQS client'}`;
      degraded = err instanceof SecretsyncError ? err.reason : 'InvalidEventsConfig';
      listener.degraded(degraded, message);
      if (!(await pause(options.configRetryMs ?? CONFIG_RETRY_MS, signal))) return undefined;
    }
  }
  if (config === undefined) return undefined;
  await requireInSteps([[undefined, '@aws-sdk/client-sqs']]);
  const sdk: SqsSdk = await import('@aws-sdk/client-sqs');
  if (signal.aborted) return undefined;
  const timeouts = options.ctx.timeouts ?? DEFAULT_PROVIDER_TIMEOUTS;
  const pollMs = WAIT_TIME_SECONDS * 1000 + timeouts.requestMs;
  const client = new sdk.SQSClient({
    ...config,
    // Requests go to the region's SQS endpoint (or events.sqs.endpoint), never to the host a queue URL names:
    // a namespaced store must not send the operator's signed requests where --allowed-endpoints does not allow.
    useQueueUrlAsEndpoint: false,
    // The source retries with its own back-off and reports failures at once (EventsDegraded).
    maxAttempts: 1,
    // A long poll is answered after up to WAIT_TIME_SECONDS: the per-attempt limit is on top of that.
    requestHandler: { ...config.requestHandler, requestTimeout: pollMs, socketTimeout: pollMs },
  });
  const source = new SqsChangeSource({
    queue: new SdkEventQueue(client, sdk, queueUrl, label, options.ctx, config.region, timeouts.connectMs),
    service: options.service,
    store: label,
    ...(options.ctx.log ? { log: options.ctx.log.bind(options.ctx) as EventSourceLog } : {}),
    ...(options.ctx.countEventMessages ? { count: options.ctx.countEventMessages.bind(options.ctx) } : {}),
    // A configuration error was fixed: events flow again once the queue answers (the source says so then).
    ...(degraded !== undefined ? { startDegraded: degraded } : {}),
    ...options.source,
  });
  try {
    await source.run(listener, signal);
  } finally {
    client.destroy();
  }
  return source;
}

async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

/** The queue through the SQS SDK: every call with a deadline and the watch's signal, counted by `observe`. */
export class SdkEventQueue implements EventQueue {
  private readonly printable: string;

  constructor(
    private readonly client: SQSClient,
    private readonly sdk: Pick<SqsSdk, 'ReceiveMessageCommand' | 'DeleteMessageBatchCommand'>,
    private readonly queueUrl: string,
    private readonly store: string,
    private readonly ctx: Pick<ProviderContext, 'observe' | 'timeouts'>,
    private readonly region: string,
    private readonly connectMs: number,
  ) {
    this.printable = printableEndpoint(queueUrl);
  }

  async receive(signal: AbortSignal, long: boolean): Promise<QueueMessage[]> {
    const requestMs = (this.ctx.timeouts ?? DEFAULT_PROVIDER_TIMEOUTS).requestMs;
    const waitSeconds = long ? WAIT_TIME_SECONDS : 0;
    const limit = deadline(waitSeconds * 1000 + requestMs + this.connectMs, signal);
    try {
      const command: ReceiveMessageCommand = new this.sdk.ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: MAX_MESSAGES,
        WaitTimeSeconds: waitSeconds,
      });
      const out = await this.ctx.observe(
        'ReceiveMessage',
        () => this.client.send(command, { abortSignal: limit.signal }),
        this.region,
      );
      const messages: QueueMessage[] = [];
      for (const m of (out.Messages ?? []).slice(0, MAX_MESSAGES)) {
        if (typeof m.ReceiptHandle !== 'string') continue;
        messages.push({ id: m.MessageId ?? '(no id)', receiptHandle: m.ReceiptHandle, body: m.Body ?? '' });
      }
      return messages;
    } catch (err) {
      throw this.failure('ReceiveMessage', err, limit.signal);
    } finally {
      limit.dispose();
    }
  }

  async delete(messages: readonly QueueMessage[], signal: AbortSignal): Promise<number> {
    if (messages.length === 0) return 0;
    const requestMs = (this.ctx.timeouts ?? DEFAULT_PROVIDER_TIMEOUTS).requestMs;
    const limit = deadline(requestMs + this.connectMs, signal);
    try {
      const command: DeleteMessageBatchCommand = new this.sdk.DeleteMessageBatchCommand({
        QueueUrl: this.queueUrl,
        Entries: messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.receiptHandle })),
      });
      const out = await this.ctx.observe(
        'DeleteMessageBatch',
        () => this.client.send(command, { abortSignal: limit.signal }),
        this.region,
      );
      return out.Failed?.length ?? 0;
    } catch (err) {
      throw this.failure('DeleteMessageBatch', err, limit.signal);
    } finally {
      limit.dispose();
    }
  }

  /** A classified, value-free error: which queue, which call, the service's code and short message. */
  private failure(operation: string, err: unknown, signal: AbortSignal): QueueError {
    const where = `${this.store}: SQS ${operation} on ${this.printable}`;
    if (signal.aborted) return new QueueError('QueueUnreachable', `${where}: no answer in time`);
    if (err instanceof SecretsyncError) {
      // Credentials from STS (mapped there): denied is a permission problem, the rest is reachability.
      const reason = err instanceof ProviderConfigError ? 'AccessDenied' : 'QueueUnreachable';
      return new QueueError(reason, `${where}: ${err.message}`, err.retryAfterMs);
    }
    const detail = describeAwsFailure(err);
    const name = awsErrorName(err) ?? '';
    if (QUEUE_NOT_FOUND.has(name)) return new QueueError('QueueNotFound', `${where}: ${detail}`);
    if (isAwsThrottling(err)) return new QueueError('Throttled', `${where}: ${detail}`, retryAfterMsOf(err));
    if (isAwsConfigError(err)) return new QueueError('AccessDenied', `${where}: ${detail}`);
    return new QueueError('QueueUnreachable', `${where}: ${detail}`, retryAfterMsOf(err));
  }
}

/**
 * A ProviderClient's `watchChanges` for a store with `events.sqs`, or
 * undefined when the store has none (the client then polls as before).
 */
export function sqsWatcher(
  options: SqsEventsOptions,
): ((listener: ChangeListener, signal: AbortSignal) => boolean) | undefined {
  if (!hasSqsEvents(options.spec)) return undefined;
  return (listener, signal) => {
    startSqsEvents(options, listener, signal).catch((err: unknown) => {
      // Only the SDK failing to load gets here: the source cannot run at all.
      if (signal.aborted) return;
      const why = err instanceof Error ? err.message : 'unknown error';
      listener.degraded('EventSourceFailed', `${storeLabel(options.store)}: events.sqs: ${why}`);
    });
    return true;
  };
}
