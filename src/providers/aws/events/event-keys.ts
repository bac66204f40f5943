// What one SQS message body says changed: the EventBridge event an AWS store's
// rule routed to its queue, turned into the remote keys its ManagedSecrets may
// name. A change only triggers a sync (the sync reads the current value), so a
// key named too often costs one read and a key missed is caught by the next
// poll; what must never happen is a hostile or broken message costing unbounded
// memory or CPU, or its body reaching a log line. Hence: the body is refused
// unread above EventBridge's own event size, only known paths of the event are
// looked at (no recursive walk), every array is read up to a bound, and more
// keys than a message can honestly name turn into "anything may have changed".
//
// Shapes (https://docs.aws.amazon.com/secretsmanager/latest/userguide/monitoring-eventbridge.html,
// https://docs.aws.amazon.com/systems-manager/latest/userguide/monitoring-systems-manager-event-examples.html):
//   Secrets Manager   source aws.secretsmanager, detail-type "AWS API Call via CloudTrail"
//                     (detail.eventName PutSecretValue, UpdateSecret, …; the secret in
//                     detail.requestParameters.secretId / name, detail.responseElements.arn)
//                     or "AWS Service Event via CloudTrail" (RotationSucceeded, …;
//                     detail.additionalEventData.SecretId), or its native "Secret Label Updated"
//                     (detail.name, resources[0] the ARN; no CloudTrail needed)
//   Parameter Store   source aws.ssm, detail-type "Parameter Store Change" (detail.name,
//                     detail.operation), "Parameter Store Policy Action" (detail.parameter-name),
//                     or CloudTrail calls (PutParameter, DeleteParameters, AddTagsToResource, …)

/** Which service's events a store listens to. */
export type EventService = 'secretsManager' | 'parameterStore';

/** What one message means for the store. */
export type EventVerdict =
  /** These remote keys changed (every form a ManagedSecret may name them by). */
  | { kind: 'keys'; keys: string[] }
  /** The message names more keys than allowed: anything may have changed. */
  | { kind: 'all'; why: string }
  /** A well-formed event that changes nothing this store reads (another service, a read-only call). */
  | { kind: 'ignored'; why: string }
  /** Not an event of a known shape (not JSON, no detail, too large): set aside. `why` never quotes the body. */
  | { kind: 'poison'; why: string };

/** EventBridge refuses events larger than 256 KB: a larger body did not come from a rule. */
export const MAX_EVENT_BYTES = 256 * 1024;
/** Keys one message may name (every form counted) before it means "anything may have changed". */
export const MAX_KEYS_PER_MESSAGE = 64;
/** Longest key kept: a parameter ARN is at most 2,048 characters; a longer string is no key. */
export const MAX_KEY_LENGTH = 2048;
/** Entries of one array looked at (`resources`, `names`). */
const MAX_ARRAY_ITEMS = 100;

const SOURCES: Record<EventService, string> = { secretsManager: 'aws.secretsmanager', parameterStore: 'aws.ssm' };
const CLOUDTRAIL_CALL = 'AWS API Call via CloudTrail';
const CLOUDTRAIL_SERVICE_EVENT = 'AWS Service Event via CloudTrail';
/** Secrets Manager's own event when a staging label moves (https://docs.aws.amazon.com/secretsmanager/latest/userguide/secret-event-notifications.html). */
const SECRET_LABEL_UPDATED = 'Secret Label Updated';

/** Calls that change nothing: reads (EventBridge does not usually deliver them, but a broad rule might). */
const READ_ONLY_CALL = /^(Get|List|Describe|BatchGet|Validate)[A-Z]/;

/** Secrets Manager calls that change what a sync reads (value, current version, existence, tags, replicas). */
export const SECRETS_MANAGER_CHANGES: ReadonlySet<string> = new Set([
  'CreateSecret',
  'PutSecretValue',
  'UpdateSecret',
  'UpdateSecretVersionStage',
  'RotateSecret',
  'CancelRotateSecret',
  'DeleteSecret',
  'RestoreSecret',
  'TagResource',
  'UntagResource',
  'ReplicateSecretToRegions',
  'RemoveRegionsFromReplication',
  'StopReplicationToReplica',
]);

/** Parameter Store calls that change a parameter's value, labels, existence or tags. */
export const PARAMETER_STORE_CHANGES: ReadonlySet<string> = new Set([
  'PutParameter',
  'DeleteParameter',
  'DeleteParameters',
  'LabelParameterVersion',
  'UnlabelParameterVersion',
  'AddTagsToResource',
  'RemoveTagsFromResource',
]);

const SECRET_ARN = /^arn:(aws[a-z-]*):secretsmanager:([a-z0-9-]+):(\d{12}):secret:(.+)$/;
const PARAMETER_ARN = /^arn:(aws[a-z-]*):ssm:([a-z0-9-]+):(\d{12}):parameter(\/.+)$/;
/** The six characters Secrets Manager appends to a secret's name in its ARN. */
const ARN_SUFFIX = /^(.+)-[A-Za-z0-9]{6}$/;
const REGION = /^[a-z0-9-]{1,64}$/;
const ACCOUNT = /^\d{12}$/;

type Json = Record<string, unknown>;

/** Where an event happened: enough to build the ARN forms of a name. */
export interface Origin {
  partition: string;
  region: string | undefined;
  account: string | undefined;
}

/**
 * The verdict on one message body for a store of `service`. Never throws, and
 * looks at a bounded part of the body whatever it holds.
 */
export function keysOfMessage(body: string, service: EventService): EventVerdict {
  if (body.length > MAX_EVENT_BYTES) return { kind: 'poison', why: `larger than ${MAX_EVENT_BYTES} bytes` };
  let event: unknown;
  try {
    event = JSON.parse(body);
  } catch {
    return { kind: 'poison', why: 'not JSON' };
  }
  if (!isObject(event)) return { kind: 'poison', why: 'not a JSON object' };
  const source = event.source;
  const detailType = event['detail-type'];
  const detail = event.detail;
  if (typeof source !== 'string' || typeof detailType !== 'string' || !isObject(detail)) {
    return { kind: 'poison', why: 'not an EventBridge event (no source, detail-type or detail)' };
  }
  if (source !== SOURCES[service]) return { kind: 'ignored', why: 'an event from another source' };
  const origin = originOf(event, detail);
  const keys = new KeySet();
  const verdict =
    service === 'secretsManager'
      ? secretsManagerKeys(detailType, detail, event, origin, keys)
      : parameterStoreKeys(detailType, detail, event, origin, keys);
  if (verdict !== undefined) return verdict;
  if (keys.overflowed) return { kind: 'all', why: `names more than ${MAX_KEYS_PER_MESSAGE} keys` };
  return { kind: 'keys', keys: keys.list() };
}

function secretsManagerKeys(
  detailType: string,
  detail: Json,
  event: Json,
  origin: Origin,
  keys: KeySet,
): EventVerdict | undefined {
  const addId = (id: unknown) => addSecretId(id, origin, keys);
  if (detailType === CLOUDTRAIL_CALL) {
    const name = detail.eventName;
    if (typeof name !== 'string') return { kind: 'poison', why: 'a CloudTrail event without eventName' };
    if (READ_ONLY_CALL.test(name)) return { kind: 'ignored', why: 'a read-only call' };
    const request = objectAt(detail, 'requestParameters');
    const response = objectAt(detail, 'responseElements');
    addId(request?.secretId);
    addId(request?.name);
    addId(response?.arn);
    addId(response?.aRN);
    addId(response?.name);
    for (const r of arrayAt(detail, 'resources', keys)) addId(isObject(r) ? (r.ARN ?? r.arn) : undefined);
    for (const r of arrayAt(event, 'resources', keys)) addId(r);
    if (keys.size === 0 && !keys.overflowed) {
      // A change call always names its secret: one that does not is not a shape we know.
      if (SECRETS_MANAGER_CHANGES.has(name)) return { kind: 'poison', why: `${name} without a secret id` };
      return { kind: 'ignored', why: 'a call that names no secret' };
    }
    return undefined;
  }
  if (detailType === CLOUDTRAIL_SERVICE_EVENT) {
    addId(objectAt(detail, 'additionalEventData')?.SecretId);
    addId(objectAt(detail, 'serviceEventDetails')?.secretId);
    for (const r of arrayAt(detail, 'resources', keys)) addId(isObject(r) ? (r.ARN ?? r.arn) : undefined);
    for (const r of arrayAt(event, 'resources', keys)) addId(r);
    if (keys.size === 0 && !keys.overflowed) return { kind: 'ignored', why: 'a service event that names no secret' };
    return undefined;
  }
  if (detailType === SECRET_LABEL_UPDATED) {
    // Native (no CloudTrail needed): a staging label, AWSCURRENT above all, moved to another version.
    if (typeof detail.name !== 'string') return { kind: 'poison', why: 'a Secret Label Updated without name' };
    addId(detail.name);
    for (const r of arrayAt(event, 'resources', keys)) addId(r);
    return undefined;
  }
  return { kind: 'ignored', why: 'a detail-type this store does not use' };
}

function parameterStoreKeys(
  detailType: string,
  detail: Json,
  event: Json,
  origin: Origin,
  keys: KeySet,
): EventVerdict | undefined {
  const addId = (id: unknown) => addParameterId(id, origin, keys);
  if (detailType === 'Parameter Store Change') {
    if (typeof detail.name !== 'string') return { kind: 'poison', why: 'a Parameter Store Change without name' };
    addId(detail.name);
    for (const r of arrayAt(event, 'resources', keys)) addId(r);
    return undefined;
  }
  if (detailType === 'Parameter Store Policy Action') {
    addId(detail['parameter-name']);
    for (const r of arrayAt(event, 'resources', keys)) addId(r);
    if (keys.size === 0 && !keys.overflowed) return { kind: 'ignored', why: 'a policy action that names no parameter' };
    return undefined;
  }
  if (detailType === CLOUDTRAIL_CALL) {
    const name = detail.eventName;
    if (typeof name !== 'string') return { kind: 'poison', why: 'a CloudTrail event without eventName' };
    if (READ_ONLY_CALL.test(name)) return { kind: 'ignored', why: 'a read-only call' };
    if (!PARAMETER_STORE_CHANGES.has(name)) return { kind: 'ignored', why: 'a call that changes no parameter' };
    const request = objectAt(detail, 'requestParameters');
    addId(request?.name);
    for (const n of arrayAt(request, 'names', keys)) addId(n);
    if (request?.resourceType === 'Parameter') addId(request.resourceId);
    if (keys.size === 0 && !keys.overflowed) {
      // Tags of a document or a maintenance window, say: not a parameter.
      if (name === 'AddTagsToResource' || name === 'RemoveTagsFromResource')
        return { kind: 'ignored', why: `${name} on something other than a parameter` };
      return { kind: 'poison', why: `${name} without a parameter name` };
    }
    return undefined;
  }
  return { kind: 'ignored', why: 'a detail-type this store does not use' };
}

/**
 * A secret named by name, full ARN or partial ARN, in every form a
 * ManagedSecret may use: the name, the full ARN (when known) and the partial
 * ARN (the full one without the six-character suffix). Whether an ARN's tail
 * ends in that suffix cannot be told for sure (`db-prod12` could be a name),
 * so both readings are kept: an extra key costs at most one extra read.
 */
export function addSecretId(id: unknown, origin: Origin, keys: KeySet): void {
  if (!isKey(id)) return;
  const arn = SECRET_ARN.exec(id);
  if (arn) {
    const [, partition, region, account, tail] = arn as unknown as [string, string, string, string, string];
    const prefix = `arn:${partition}:secretsmanager:${region}:${account}:secret:`;
    keys.add(id);
    keys.add(tail);
    const stripped = ARN_SUFFIX.exec(tail)?.[1];
    if (stripped !== undefined) {
      keys.add(stripped);
      keys.add(prefix + stripped);
    }
    return;
  }
  keys.add(id);
  if (origin.region !== undefined && origin.account !== undefined) {
    keys.add(`arn:${origin.partition}:secretsmanager:${origin.region}:${origin.account}:secret:${id}`);
  }
}

/**
 * A parameter named by name or ARN, in both forms. The ARN of `/app/db` is
 * `…:parameter/app/db` and that of `db` is `…:parameter/db`, so an ARN with a
 * single path segment may name `db` or `/db`: both are kept.
 */
export function addParameterId(id: unknown, origin: Origin, keys: KeySet): void {
  if (!isKey(id)) return;
  const arn = PARAMETER_ARN.exec(id);
  if (arn) {
    const path = (arn[4] ?? '/') as string;
    keys.add(id);
    keys.add(path);
    if (path.indexOf('/', 1) < 0) keys.add(path.slice(1));
    return;
  }
  keys.add(id);
  if (origin.region !== undefined && origin.account !== undefined) {
    const path = id.startsWith('/') ? id : `/${id}`;
    keys.add(`arn:${origin.partition}:ssm:${origin.region}:${origin.account}:parameter${path}`);
  }
}

/** Distinct keys up to MAX_KEYS_PER_MESSAGE; past that it only remembers that it overflowed. */
export class KeySet {
  private readonly keys = new Set<string>();
  overflowed = false;

  constructor(private readonly max = MAX_KEYS_PER_MESSAGE) {}

  add(key: string): void {
    if (this.overflowed || this.keys.has(key)) return;
    if (this.keys.size >= this.max) this.overflow();
    else this.keys.add(key);
  }

  /** Too many: the keys are dropped, and the message means "anything may have changed". */
  overflow(): void {
    this.overflowed = true;
    this.keys.clear();
  }

  get size(): number {
    return this.keys.size;
  }

  list(): string[] {
    return [...this.keys];
  }
}

function originOf(event: Json, detail: Json): Origin {
  const region = [event.region, detail.awsRegion].find((r): r is string => typeof r === 'string' && REGION.test(r));
  const account = [event.account, detail.recipientAccountId].find(
    (a): a is string => typeof a === 'string' && ACCOUNT.test(a),
  );
  return { partition: partitionOf(region), region, account };
}

function partitionOf(region: string | undefined): string {
  if (region?.startsWith('cn-')) return 'aws-cn';
  if (region?.startsWith('us-gov-')) return 'aws-us-gov';
  return 'aws';
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function objectAt(parent: Json | undefined, field: string): Json | undefined {
  const value = parent?.[field];
  return isObject(value) ? value : undefined;
}

/**
 * The entries of an array field (none when it is not an array); a longer one
 * than MAX_ARRAY_ITEMS is not read at all: the message then means "anything".
 */
function arrayAt(parent: Json | undefined, field: string, keys: KeySet): unknown[] {
  const value = parent?.[field];
  if (!Array.isArray(value)) return [];
  if (value.length > MAX_ARRAY_ITEMS) {
    keys.overflow();
    return [];
  }
  return value;
}

function isKey(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_KEY_LENGTH;
}
