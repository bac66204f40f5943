// OpenAPI v3 structural schemas of the secretsync.io/v1alpha1 API: the one
// source for crds/*.yaml (npm run generate:crds) and docs/api.md. They describe
// the same shapes as src/api/types.ts, field for field; test/unit/api keeps the
// two in step. Descriptions are what `kubectl explain` shows.
//
// CEL cost: the API server estimates the worst-case cost of every rule from
// maxItems/maxLength (unbounded lists and strings are sized from the request
// size limit), so every list a rule iterates, and every list that encloses a
// rule, has maxItems, and every string a rule reads has maxLength.

/**
 * data[].ciphertext: the KMS text form (base64url after the prefix) or the Vault transit one
 * (src/crypto/transit-ciphertext.ts: scope, key name, then Vault's `vault:vN:` and padded base64).
 */
export const INLINE_CIPHERTEXT_PATTERN =
  '^secretsync:v1:([A-Za-z0-9_-]+|transit:(strict|namespace|cluster):[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?:vault:v[1-9][0-9]{0,8}:[A-Za-z0-9+/]+={0,2})$';

/** A JSON value (for `default`). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** One `x-kubernetes-validations` entry: a CEL rule and the message shown when it is false. */
export interface ValidationRule {
  rule: string;
  message: string;
  /** Where the error points, relative to the schema that holds the rule (e.g. `.namespace`). */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps these CRDs use, with the wire names. */
export interface JSONSchemaProps {
  description?: string;
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  format?: string;
  enum?: string[];
  default?: JsonValue;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  items?: JSONSchemaProps;
  additionalProperties?: JSONSchemaProps;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: ValidationRule[];
}

import { ALLOWED_KUBERNETES_SECRET_TYPES } from './types.js';

// ---------------------------------------------------------------------------
// Shared patterns and limits.

/** A key in a Secret's data (what the API server accepts for Secret keys). */
export const SECRET_KEY_PATTERN = '^[-._a-zA-Z0-9]+$';
/** A DNS-1123 subdomain (names of Secrets and most objects). */
export const DNS_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
/** A DNS-1123 label (names of namespaces). */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
/** Go-style durations made of ms/s/m/h parts (`1h30m`, `1.5h`, `30s`), or `0`. */
export const DURATION_PATTERN = '^(0|([0-9]+(\\.[0-9]+)?(ms|s|m|h))+)$';

const CRON_NAMES = 'jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun';
const CRON_FIELD = `(?:[0-9*?,/#L-]|(?i:${CRON_NAMES}))+`;
/**
 * A coarse cron check for the API server: five whitespace-separated fields of
 * cron characters (digits, `* , - / ? L #`, month and weekday names) or a
 * macro: what cron-parser, which the controller uses, can parse (it has no `W`).
 */
export const CRON_PATTERN = `^(@(hourly|daily|weekly|monthly|yearly|annually)|${CRON_FIELD}(\\s+${CRON_FIELD}){4})$`;

export const LIMITS = {
  /** data[] items per ManagedSecret. */
  dataItems: 256,
  /** dataFrom[] items per ManagedSecret. */
  dataFromItems: 50,
  /** Secret keys, object names. */
  name: 253,
  namespace: 63,
  refreshInterval: 64,
  refreshSchedule: 128,
  conditions: 32,
  matchExpressions: 32,
  templateKeys: 500,
  /** Characters of one template source (the operator also bounds all sources together in bytes). */
  templateSource: 65_536,
  /** Characters of a find.nameRegexp (the operator refuses longer ones too). */
  nameRegexp: 1024,
  labelValue: 63,
  /** Labels and annotations on the target Secret. */
  targetMetadata: 64,
  rolloutTargets: 32,
  passwordLength: 1024,
  randomBytes: 1024,
  keepVersions: 100,
} as const;

/** Names of the rotation generators; exactly one is set. */
export const GENERATOR_NAMES = ['password', 'randomBytes', 'uuid', 'rsa', 'ecdsa', 'ed25519'] as const;
/** Generators that make a key pair: they write the PEM properties privateKey and publicKey. */
export const KEY_PAIR_GENERATORS = ['rsa', 'ecdsa', 'ed25519'] as const;
export const PASSWORD_CLASSES = ['lowercase', 'uppercase', 'digits', 'symbols'] as const;

/** A CEL string literal, raw so that regular expressions need no double escaping. */
function celRaw(s: string): string {
  if (s.includes("'")) throw new Error(`cannot quote ${s} as a CEL raw string`);
  return `r'${s}'`;
}

/**
 * What RE2 lacks and JavaScript or PCRE habits reach for: lookaround and
 * backreferences, not escaped (an even run of backslashes, none included, in
 * front). RE2 syntax, for CEL's matches().
 */
export const RE2_UNSUPPORTED_PATTERN = String.raw`(^|[^\\])(\\\\)*(\(\?<?[=!]|\\[1-9]|\\k<)`;

/** A key or type in a domain the cluster's own components own: kubernetes.io, k8s.io and their subdomains. */
export const CLUSTER_DOMAIN_KEY_PATTERN = String.raw`(?i)^([^/]*\.)?(kubernetes\.io|k8s\.io)/`;
/** The recommended labels' prefix: descriptive only, allowed. */
const APP_LABEL_PATTERN = String.raw`(?i)^app\.kubernetes\.io/`;
/** secretsync's own bookkeeping keys. */
const OUR_DOMAIN_KEY_PATTERN = String.raw`(?i)^([^/]*\.)?secretsync\.io/`;

const TARGET_METADATA_RULE =
  'Keys under kubernetes.io/ and k8s.io/ (and their subdomains), which the cluster acts on, are refused, except ' +
  "app.kubernetes.io/ ones; so are secretsync.io/ keys, which are secretsync's own bookkeeping.";

function targetMetadataRules(field: 'labels' | 'annotations'): ValidationRule[] {
  return [
    {
      rule: `self.all(k, k.matches(${celRaw(APP_LABEL_PATTERN)}) || !k.matches(${celRaw(CLUSTER_DOMAIN_KEY_PATTERN)}))`,
      message: `target.${field} may not set keys under kubernetes.io/ or k8s.io/ (such as kubernetes.io/service-account.name): the cluster acts on them; app.kubernetes.io/ keys are allowed`,
    },
    {
      rule: `self.all(k, !k.matches(${celRaw(OUR_DOMAIN_KEY_PATTERN)}))`,
      message: `target.${field} may not set secretsync.io/ keys: they are secretsync's own bookkeeping`,
    },
  ];
}

// ---------------------------------------------------------------------------
// Small builders.

function str(description: string, extra: Omit<JSONSchemaProps, 'type' | 'description'> = {}): JSONSchemaProps {
  return { description, type: 'string', ...extra };
}

function obj(
  description: string,
  properties: Record<string, JSONSchemaProps>,
  extra: Omit<JSONSchemaProps, 'type' | 'description' | 'properties'> = {},
): JSONSchemaProps {
  return { description, type: 'object', properties, ...extra };
}

function stringMap(description: string, extra: Omit<JSONSchemaProps, 'type' | 'description'> = {}): JSONSchemaProps {
  return { description, type: 'object', additionalProperties: { type: 'string' }, ...extra };
}

function rootSchema(description: string, spec: JSONSchemaProps, status: JSONSchemaProps): JSONSchemaProps {
  return {
    description,
    type: 'object',
    required: ['spec'],
    properties: {
      apiVersion: str(
        'APIVersion defines the versioned schema of this representation of an object: secretsync.io/v1alpha1.',
      ),
      kind: str('Kind is a string value representing the REST resource this object represents.'),
      // The API server owns metadata's schema and refuses a description here.
      metadata: { type: 'object' },
      spec,
      status,
    },
  };
}

// ---------------------------------------------------------------------------
// Status.

const conditionsSchema: JSONSchemaProps = {
  description:
    'The latest observations of the object. Ready is True when the object works as specified; ' +
    'its reason and message say why not when it is False.',
  type: 'array',
  maxItems: 16,
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
  items: obj(
    'One condition: an aspect of the object and whether it holds.',
    {
      type: str('The aspect this condition reports on, in CamelCase, such as Ready.', { maxLength: 316 }),
      status: str('Whether the condition holds: True, False or Unknown.', { enum: ['True', 'False', 'Unknown'] }),
      reason: str('A CamelCase word for why the condition has this status, such as Synced or KeyNotFound.', {
        maxLength: 1024,
      }),
      message: str('A human-readable explanation; never contains secret values.', { maxLength: 32768 }),
      lastTransitionTime: str('When the status last changed.', { format: 'date-time' }),
      observedGeneration: {
        description: 'The metadata.generation of the object this condition was computed from.',
        type: 'integer',
        format: 'int64',
        minimum: 0,
      },
    },
    { required: ['type', 'status', 'reason', 'message', 'lastTransitionTime'] },
  ),
};

const observedGenerationSchema: JSONSchemaProps = {
  description:
    'The metadata.generation the controller last acted on; older than metadata.generation while it catches up.',
  type: 'integer',
  format: 'int64',
  minimum: 0,
};

const storeStatusSchema = obj('What the controller last observed about the store. Written by the controller.', {
  conditions: conditionsSchema,
  observedGeneration: observedGenerationSchema,
  activeRegion: str(
    "With failover: the region that answered the store's latest request (the primary region, or the failover " +
      'region serving while the primary is unavailable). A Failover condition and an Event mark each move.',
    { maxLength: 64 },
  ),
  activeEndpoint: str(
    'With failover that lists more than one endpoint in activeRegion (a VPC endpoint and the public one, say): the ' +
      'host (and port) of the endpoint that answered, such as vpce-0a1b.secretsmanager.us-east-1.vpce.amazonaws.com. ' +
      'Absent when the region alone tells.',
    { maxLength: 1024 },
  ),
});

const managedSecretStatusSchema = obj('What the controller last observed and did. Written by the controller.', {
  conditions: conditionsSchema,
  observedGeneration: observedGenerationSchema,
  lastSyncTime: str('When the target Secret was last written, or the Ready condition last changed.', {
    format: 'date-time',
  }),
  lastSuccessfulSyncTime: str(
    'When a sync last succeeded. Written with every success that changed something, and at least hourly while ' +
      'syncs succeed without change; the metric secretsync_managedsecret_last_success_timestamp_seconds has the exact time.',
    { format: 'date-time' },
  ),
  region: str(
    'With a store that has failover: the region that served the latest successful sync (the primary region, or a failover region).',
    { maxLength: 64 },
  ),
  endpoint: str(
    'With a store whose failover lists more than one endpoint in this region: the host (and port) of the endpoint ' +
      'that served the latest successful sync. Absent when the region alone tells.',
    { maxLength: 1024 },
  ),
  secretName: str('The name of the Secret this ManagedSecret writes.', { maxLength: LIMITS.name }),
  syncedVersion: str(
    'A keyed HMAC-SHA256 of the data last written, to notice changes; never a plain hash of secret values.',
    { maxLength: 256 },
  ),
  lastRotationTime: str('When the last rotation finished (the new value in the store and in the Secret).', {
    format: 'date-time',
  }),
  nextRotationTime: str('When the next rotation is due.', { format: 'date-time' }),
  rotationVersion: str("The store's version id of the value the last rotation wrote (never the value).", {
    maxLength: 256,
  }),
  rotationInProgress: obj(
    'A rotation that started and has not finished. Recorded before the store is written, so that after a crash the same rotation is finished (with the same request token) instead of a second one started.',
    {
      dueTime: str('The due time, or the time of the manual request, this rotation serves.', { format: 'date-time' }),
      requestToken: str(
        "The idempotency token of the store write (Secrets Manager's ClientRequestToken); a retried write with it is not a second rotation.",
        { maxLength: 64 },
      ),
      startedAt: str('When the rotation started.', { format: 'date-time' }),
    },
    { required: ['dueTime', 'requestToken', 'startedAt'] },
  ),
  handledRotateNow: str('The value of the secretsync.io/rotate-now annotation last acted on.', { maxLength: 256 }),
  rolloutRestart: obj(
    "A rollout restart the Secret's data change asked for and that has not been carried out yet (spec.rolloutRestart). " +
      'Recorded with the sync that changed the data, so that whichever replica holds the ManagedSecret when it is due ' +
      '(after a shard move, a leader change or a restart) carries it out; removed once the workloads are restarted. ' +
      'A workload already restarted for this version (its pod template annotation secretsync.io/restarted-for names it) is not restarted again.',
    {
      pendingVersion: str('The syncedVersion (keyed HMAC of the data) the workloads are to be restarted for.', {
        maxLength: 256,
      }),
      notBefore: str('When the restart is due: the first unrestarted change plus spec.rolloutRestart.debounce.', {
        format: 'date-time',
      }),
    },
    { required: ['pendingVersion', 'notBefore'] },
  ),
  issued: {
    description:
      'What was issued for dataFrom[].certificate and dataFrom[].dynamic sources (never a value): lease ids, serial numbers and when each is renewed.',
    type: 'array',
    maxItems: LIMITS.dataFromItems,
    items: obj(
      'One issued source.',
      {
        source: str('The source, as dataFrom[<index>].', { maxLength: 32 }),
        leaseId: str("The store's lease id (dynamic secrets with a lease).", { maxLength: 1024 }),
        serialNumber: str('Certificates: the serial number.', { maxLength: 128 }),
        keys: {
          description: 'The Secret keys this source wrote (names only).',
          type: 'array',
          maxItems: 256,
          items: { type: 'string', maxLength: 253 },
        },
        issuedAt: str('When it was issued.', { format: 'date-time' }),
        expiresAt: str('When the lease or certificate ends; absent: no expiry (read again at each refresh).', {
          format: 'date-time',
        }),
        renewAt: str('When it is renewed or re-issued.', { format: 'date-time' }),
        renewable: { description: 'Whether the lease can be renewed.', type: 'boolean' },
        leaseSeconds: {
          description: "The lease's lifetime when issued: the extension asked for at each renewal.",
          type: 'integer',
          minimum: 0,
        },
        specHash: str("SHA-256 of the source's spec: a change re-issues.", { maxLength: 64 }),
      },
      { required: ['source', 'issuedAt', 'specHash'] },
    ),
  },
});

// ---------------------------------------------------------------------------
// Stores.

type StoreScope = 'Namespaced' | 'Cluster';

function masterKeySecretRefSchema(scope: StoreScope): JSONSchemaProps {
  const namespaced = scope === 'Namespaced';
  return obj(
    namespaced
      ? "The Secret, in the SecretStore's own namespace, that holds the 32-byte master key (raw or base64) that wraps the per-entry data keys."
      : 'The Secret that holds the 32-byte master key (raw or base64) that wraps the per-entry data keys; namespace is required.',
    {
      name: str('The name of the Secret.', { minLength: 1, maxLength: LIMITS.name }),
      key: str('The key in the Secret whose value is the master key.', {
        default: 'master-key',
        pattern: SECRET_KEY_PATTERN,
        maxLength: LIMITS.name,
      }),
      namespace: str(
        namespaced
          ? 'Must not be set: a SecretStore reads its master key from its own namespace.'
          : 'The namespace of the Secret. Required on a ClusterSecretStore.',
        { pattern: DNS_LABEL_PATTERN, maxLength: LIMITS.namespace },
      ),
    },
    {
      required: ['name'],
      'x-kubernetes-validations': [
        namespaced
          ? {
              rule: '!has(self.namespace)',
              message:
                'a SecretStore reads its master key from its own namespace: remove masterKeySecretRef.namespace (or use a ClusterSecretStore)',
              fieldPath: '.namespace',
              reason: 'FieldValueForbidden',
            }
          : {
              rule: 'has(self.namespace)',
              message:
                'a ClusterSecretStore must set masterKeySecretRef.namespace, the namespace of the Secret that holds the master key',
              fieldPath: '.namespace',
              reason: 'FieldValueRequired',
            },
      ],
    },
  );
}

/** `events.fallbackRefreshInterval`, common to every provider block's `events`. */
const fallbackRefreshIntervalSchema: JSONSchemaProps = {
  description:
    'While the event source fails (the EventsDegraded condition), the refresh interval of the ManagedSecrets that ' +
    'use this store drops to this (Go-style duration of at least 1s, such as 30s or 1m); they return to their own ' +
    'refreshInterval when events flow again. Default 1m.',
  type: 'string',
  maxLength: LIMITS.refreshInterval,
  'x-kubernetes-validations': [
    {
      rule: `self.matches(${celRaw(DURATION_PATTERN)}) && duration(self) >= duration('1s')`,
      message: 'events.fallbackRefreshInterval must be a duration of at least 1s, such as 30s or 1m',
    },
  ],
};

/** `spec.provider.<aws>.events`: an SQS queue fed by an EventBridge rule. */
function awsEventsSchema(scope: StoreScope): JSONSchemaProps {
  return obj(
    "Event-driven sync: the operator long-polls an SQS queue that an EventBridge rule feeds with the backend's " +
      'change events, and syncs only the ManagedSecrets of the changed entries, so refreshInterval can stay long ' +
      '(a safety net). See docs/events-aws.md for the rule and queue policy. ' +
      "Example: {sqs: {queueUrl: 'https://sqs.us-east-1.amazonaws.com/123456789012/secretsync-events'}}.",
    {
      sqs: obj(
        "The SQS queue to long-poll. Identity: the store's (auth and roleArn) when neither is set here; with only " +
          "roleArn, the store's auth assumes this role; with auth, this auth (and this roleArn, if set) alone.",
        {
          queueUrl: str('The queue URL.', { minLength: 1, maxLength: 1024, pattern: '^https?://' }),
          region: str("The queue's region. Absent: the region in an AWS queue URL, else the store's region.", {
            minLength: 1,
            maxLength: 64,
            pattern: AWS_REGION_PATTERN,
          }),
          endpoint: str(
            "Another SQS endpoint URL (a VPC endpoint, moto). Absent: the regional SQS endpoint (never the store's " +
              'endpoint, nor the host in queueUrl).',
            ENDPOINT_SCHEMA,
          ),
          auth: {
            ...awsAuthSchema(scope),
            description:
              "How the operator authenticates to SQS. Absent: the store's auth, assuming this roleArn if set, else the store's roleArn.",
          },
          roleArn: str('Assume this IAM role before calling SQS. Required with auth.serviceAccountRef.', {
            maxLength: 2048,
            pattern: '^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$',
          }),
        },
        { required: ['queueUrl'], 'x-kubernetes-validations': [awsServiceAccountNeedsRole] },
      ),
      fallbackRefreshInterval: fallbackRefreshIntervalSchema,
    },
    { required: ['sqs'] },
  );
}

function localProviderSchema(scope: StoreScope): JSONSchemaProps {
  return obj(
    'The embedded encrypted store: entries kept as encrypted files in a directory of the operator, each under its own data key wrapped by the master key.',
    {
      path: str(
        'The directory, as the operator sees it, that holds the encrypted entries (in a cluster, a mounted PersistentVolume).',
        { minLength: 1, maxLength: 4096 },
      ),
      masterKeySecretRef: masterKeySecretRefSchema(scope),
      decrypt: kmsDecryptSchema(scope, false),
      events: obj(
        "Event-driven sync: the operator watches the store directory and syncs an entry's ManagedSecrets as soon as " +
          '`secretsync store put` writes it, so refreshInterval can stay long (a safety net). Example: {watch: true}.',
        {
          watch: {
            description: 'Watch the store directory for changes (must be true; remove events to poll only).',
            type: 'boolean',
          },
          fallbackRefreshInterval: fallbackRefreshIntervalSchema,
        },
        {
          required: ['watch'],
          'x-kubernetes-validations': [
            { rule: 'self.watch', message: 'events.watch must be true (remove events to poll only)' },
          ],
        },
      ),
    },
    { required: ['path', 'masterKeySecretRef'] },
  );
}

function secretKeySelectorSchema(scope: StoreScope, what: string): JSONSchemaProps {
  const namespaced = scope === 'Namespaced';
  return obj(
    `The Secret and key that hold ${what}.`,
    {
      name: str('The name of the Secret.', { minLength: 1, maxLength: LIMITS.name }),
      key: str('The key in the Secret.', { minLength: 1, pattern: SECRET_KEY_PATTERN, maxLength: LIMITS.name }),
      namespace: str(
        namespaced
          ? 'Must not be set: a SecretStore reads Secrets from its own namespace.'
          : 'The namespace of the Secret. Required on a ClusterSecretStore.',
        { pattern: DNS_LABEL_PATTERN, maxLength: LIMITS.namespace },
      ),
    },
    {
      required: ['name', 'key'],
      'x-kubernetes-validations': [
        namespaced
          ? {
              rule: '!has(self.namespace)',
              message:
                'a SecretStore reads Secrets from its own namespace: remove namespace (or use a ClusterSecretStore)',
            }
          : { rule: 'has(self.namespace)', message: 'a ClusterSecretStore must set the namespace of the Secret' },
      ],
    },
  );
}

function awsAuthSchema(scope: StoreScope): JSONSchemaProps {
  const namespaced = scope === 'Namespaced';
  return obj(
    "How the operator authenticates to AWS. Absent: the operator's own identity (IRSA, instance profile), " +
      (namespaced
        ? 'which a SecretStore may use only when the cluster admin allows it (--allow-operator-identity-for-namespaced-stores).'
        : 'always allowed for a ClusterSecretStore.'),
    {
      secretRef: obj(
        'Static credentials held in Kubernetes Secrets.',
        {
          accessKeyIdSecretRef: secretKeySelectorSchema(scope, 'the AWS access key id'),
          secretAccessKeySecretRef: secretKeySelectorSchema(scope, 'the AWS secret access key'),
          sessionTokenSecretRef: secretKeySelectorSchema(scope, 'an AWS session token (optional)'),
        },
        { required: ['accessKeyIdSecretRef', 'secretAccessKeySecretRef'] },
      ),
      serviceAccountRef: obj(
        'A per-namespace identity: the operator mints a short-lived token for this ServiceAccount (TokenRequest API) and exchanges it for roleArn with AssumeRoleWithWebIdentity.',
        {
          name: str('The ServiceAccount.', { minLength: 1, maxLength: LIMITS.name }),
          namespace: str(
            namespaced
              ? 'Must not be set: a SecretStore may only name ServiceAccounts of its own namespace.'
              : "The ServiceAccount's namespace. Required on a ClusterSecretStore.",
            { pattern: DNS_LABEL_PATTERN, maxLength: LIMITS.namespace },
          ),
          audiences: {
            description: 'Audiences of the token. Default: sts.amazonaws.com.',
            type: 'array',
            maxItems: 8,
            items: { type: 'string', maxLength: 256 },
          },
        },
        {
          required: ['name'],
          'x-kubernetes-validations': [
            namespaced
              ? {
                  rule: '!has(self.namespace)',
                  message:
                    'a SecretStore may only use ServiceAccounts of its own namespace: remove serviceAccountRef.namespace',
                }
              : { rule: 'has(self.namespace)', message: 'a ClusterSecretStore must set serviceAccountRef.namespace' },
          ],
        },
      ),
    },
    {
      'x-kubernetes-validations': [
        {
          rule: '!(has(self.secretRef) && has(self.serviceAccountRef))',
          message: 'auth sets at most one of secretRef or serviceAccountRef',
        },
      ],
    },
  );
}

const AWS_REGION_PATTERN = '^[a-z0-9-]{1,64}$';
const ENDPOINT_SCHEMA = { maxLength: 1024, pattern: '^https?://' };
/** Failover entries a block may list (src/providers/aws/failover.ts MAX_FAILOVER_TARGETS). */
const MAX_FAILOVER = 4;

const failoverSchema: JSONSchemaProps = {
  description:
    'Other regions or endpoints tried in order when the primary (region/endpoint above) is unavailable: a network ' +
    'error, a 5xx answer, or throttling that outlasted the SDK retries. An entry differs from the primary and from ' +
    'the other entries by region, by endpoint, or both: another region, or another endpoint of the same region ' +
    '(the public endpoint behind a VPC endpoint, a second endpoint of a replica service). Not found, access denied ' +
    'and credential errors never fail over. Reads only: rotation writes wait for the primary. Secrets Manager ' +
    'replica secrets and Parameter Store copies must hold the same values; KMS ciphertexts made under a ' +
    'multi-Region key (mrk-) are decrypted by the replica key in a failover region, those of a single-Region key ' +
    'only in their own region (on any endpoint of it). ' +
    "Example: [{region: us-west-2}] or, behind a VPC endpoint, [{endpoint: 'https://secretsmanager.us-east-1.amazonaws.com'}].",
  type: 'array',
  maxItems: MAX_FAILOVER,
  items: obj(
    'One failover target: a region, an endpoint, or both (at least one).',
    {
      region: str("The AWS region, such as us-west-2. Absent: the primary's region (then endpoint must be set).", {
        minLength: 1,
        maxLength: 64,
        pattern: AWS_REGION_PATTERN,
      }),
      endpoint: str(
        "An endpoint URL for this entry's region (a VPC endpoint, the public endpoint, LocalStack, moto). Absent: " +
          "the region's AWS endpoint.",
        ENDPOINT_SCHEMA,
      ),
    },
    {
      'x-kubernetes-validations': [
        {
          rule: 'has(self.region) || has(self.endpoint)',
          message: 'a failover entry needs a region, an endpoint, or both',
        },
      ],
    },
  ),
};

const circuitBreakerSchema = obj(
  "With failover: when a region counts as down and how long it is skipped. A region's circuit opens after " +
    'failureThreshold consecutive availability failures; requests then go straight to the next region until, ' +
    'after openSeconds, one request probes the region again (success closes the circuit, so a recovered primary ' +
    'is used again). Example: {failureThreshold: 3, openSeconds: 30}.',
  {
    failureThreshold: {
      description: "Consecutive availability failures (after the SDK retries) that open a region's circuit. Default 3.",
      type: 'integer',
      minimum: 1,
      maximum: 100,
    },
    openSeconds: {
      description: 'Seconds an open circuit skips its region before one request probes it again. Default 30.',
      type: 'integer',
      minimum: 1,
      maximum: 3600,
    },
  },
);

/**
 * CEL: the failover entries at `list` (a CEL list) name (region, endpoint) pairs that differ from the primary's
 * (`regionExpr`, `endpointExpr`: CEL strings, '' for the AWS endpoint) and from each other. An entry without a
 * region is in the primary's region; without an endpoint, on the region's AWS endpoint.
 */
function failoverRules(
  guard: string,
  list: string,
  regionExpr: string,
  endpointExpr: string,
  what = 'a failover entry',
): ValidationRule[] {
  const pair = (v: string) =>
    `[has(${v}.region) ? ${v}.region : ${regionExpr}, has(${v}.endpoint) ? ${v}.endpoint : '']`;
  return [
    {
      rule: `!(${guard}) || ${list}.all(f, ${pair('f')} != [${regionExpr}, ${endpointExpr}])`,
      message:
        `${what} must differ from the primary by region or endpoint ` +
        "(an entry without region is in the primary's region; without endpoint, on the region's AWS endpoint)",
    },
    {
      rule: `!(${guard}) || ${list}.all(f, ${list}.exists_one(g, ${pair('g')} == ${pair('f')}))`,
      message: `${what === 'a failover entry' ? 'failover' : 'decrypt.kms failover'} lists the same region and endpoint twice: each entry must differ from the others by region or endpoint`,
    },
  ];
}

/** `failoverRules` for a block's own `failover` (its `region` and `endpoint`). */
function ownFailoverRules(): ValidationRule[] {
  return failoverRules('has(self.failover)', 'self.failover', 'self.region', "has(self.endpoint) ? self.endpoint : ''");
}

function awsCommonProperties(scope: StoreScope): Record<string, JSONSchemaProps> {
  return {
    region: str('The AWS region, such as us-east-1.', { minLength: 1, maxLength: 64 }),
    endpoint: str(
      'Another endpoint URL (a VPC endpoint, LocalStack, moto). Absent: the regional AWS endpoint.',
      ENDPOINT_SCHEMA,
    ),
    auth: awsAuthSchema(scope),
    roleArn: str('Assume this IAM role before calling the service. Required with auth.serviceAccountRef.', {
      maxLength: 2048,
      pattern: '^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$',
    }),
    requestsPerSecond: {
      description:
        "The store's request budget, shared by every ManagedSecret that uses it (token bucket, burst twice the rate).",
      type: 'number',
      minimum: 0.1,
      maximum: 10000,
      default: 10,
    },
    failover: failoverSchema,
    circuitBreaker: circuitBreakerSchema,
  };
}

const awsServiceAccountNeedsRole = {
  rule: '!has(self.auth) || !has(self.auth.serviceAccountRef) || has(self.roleArn)',
  message: 'auth.serviceAccountRef needs roleArn: the role its token is exchanged for',
};

function kmsDecryptSchema(scope: StoreScope, inherit: boolean): JSONSchemaProps {
  const common = awsCommonProperties(scope);
  delete common.requestsPerSecond;
  return obj(
    'Values fetched from the backend that are secretsync ciphertexts are decrypted with KMS in the operator, so the backend never holds plaintext.',
    {
      kms: obj(
        inherit
          ? 'The KMS to decrypt with. Absent fields are taken from the provider block (failover only when this sets neither region nor endpoint).'
          : 'The KMS to decrypt with (region required).',
        common,
        inherit
          ? // Its failover is checked by the provider block, which knows the region and endpoint it inherits.
            { 'x-kubernetes-validations': [awsServiceAccountNeedsRole] }
          : { required: ['region'], 'x-kubernetes-validations': [awsServiceAccountNeedsRole, ...ownFailoverRules()] },
      ),
    },
    { required: ['kms'] },
  );
}

function awsProviderSchema(scope: StoreScope, description: string, withDecrypt: boolean): JSONSchemaProps {
  const rules = [awsServiceAccountNeedsRole, ...ownFailoverRules()];
  if (withDecrypt) {
    // decrypt.kms decrypts at its own region and endpoint, each taken from the block when absent.
    const kms = 'self.decrypt.kms';
    rules.push(
      ...failoverRules(
        `has(self.decrypt) && has(${kms}.failover)`,
        `${kms}.failover`,
        `(has(${kms}.region) ? ${kms}.region : self.region)`,
        `(has(${kms}.endpoint) ? ${kms}.endpoint : has(self.endpoint) ? self.endpoint : '')`,
        'a decrypt.kms failover entry',
      ),
    );
  }
  return obj(
    description,
    {
      ...awsCommonProperties(scope),
      ...(withDecrypt ? { decrypt: kmsDecryptSchema(scope, true), events: awsEventsSchema(scope) } : {}),
    },
    { required: ['region'], 'x-kubernetes-validations': rules },
  );
}

// ---------------------------------------------------------------------------
// HashiCorp Vault.

/** A mount or auth path inside Vault: segments without leading or trailing slash. */
const VAULT_MOUNT_PATTERN = '^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$';
const VAULT_ADDRESS_SCHEMA = { minLength: 1, maxLength: 1024, pattern: '^https?://[^/?#@]+/?$' };

/** `namespace` of a reference: forbidden on a SecretStore, required on a ClusterSecretStore. */
function vaultNamespaceRule(scope: StoreScope, what: string, one: string): ValidationRule {
  return scope === 'Namespaced'
    ? {
        rule: '!has(self.namespace)',
        message: `a SecretStore may only use ${what} of its own namespace: remove namespace (or use a ClusterSecretStore)`,
        fieldPath: '.namespace',
        reason: 'FieldValueForbidden',
      }
    : {
        rule: 'has(self.namespace)',
        message: `a ClusterSecretStore must set the namespace of the ${one}`,
        fieldPath: '.namespace',
        reason: 'FieldValueRequired',
      };
}

function vaultNamespaceField(scope: StoreScope, what: string, one: string): JSONSchemaProps {
  return str(
    scope === 'Namespaced'
      ? `Must not be set: a SecretStore uses ${what} of its own namespace.`
      : `The namespace of the ${one}. Required on a ClusterSecretStore.`,
    { pattern: DNS_LABEL_PATTERN, maxLength: LIMITS.namespace },
  );
}

function vaultAuthSchema(scope: StoreScope): JSONSchemaProps {
  return obj(
    'How the operator logs in to Vault: exactly one of kubernetes, appRole or tokenSecretRef. Tokens are renewed ' +
      'at about two thirds of their TTL and obtained again after they expire or are revoked. There is no default ' +
      "(the operator's own identity is never used).",
    {
      kubernetes: obj(
        "Kubernetes auth: the operator mints a short-lived token for serviceAccountRef (TokenRequest API) and exchanges it at auth/<mountPath>/login for role; Vault checks it with the cluster's TokenReview.",
        {
          mountPath: str('Where the Kubernetes auth method is mounted. Default kubernetes.', {
            maxLength: 256,
            pattern: VAULT_MOUNT_PATTERN,
          }),
          role: str('The Vault role to log in as.', { minLength: 1, maxLength: 256 }),
          serviceAccountRef: obj(
            'The ServiceAccount whose token is exchanged.',
            {
              name: str('The ServiceAccount.', { minLength: 1, maxLength: LIMITS.name }),
              namespace: vaultNamespaceField(scope, 'ServiceAccounts', 'ServiceAccount'),
              audiences: {
                description: "Audiences of the token (the Vault role's audience). Default: the API server's own.",
                type: 'array',
                maxItems: 8,
                items: { type: 'string', minLength: 1, maxLength: 256 },
              },
            },
            {
              required: ['name'],
              'x-kubernetes-validations': [vaultNamespaceRule(scope, 'ServiceAccounts', 'ServiceAccount')],
            },
          ),
        },
        { required: ['role', 'serviceAccountRef'] },
      ),
      appRole: obj(
        'AppRole auth: role id (inline or from a Secret) and secret id (from a Secret), exchanged at auth/<mountPath>/login.',
        {
          mountPath: str('Where the AppRole auth method is mounted. Default approle.', {
            maxLength: 256,
            pattern: VAULT_MOUNT_PATTERN,
          }),
          roleId: str('The role id (not secret). Exactly one of roleId and roleIdSecretRef.', {
            minLength: 1,
            maxLength: 256,
          }),
          roleIdSecretRef: secretKeySelectorSchema(scope, 'the role id'),
          secretIdSecretRef: secretKeySelectorSchema(scope, 'the secret id'),
        },
        {
          required: ['secretIdSecretRef'],
          'x-kubernetes-validations': [
            {
              rule: 'has(self.roleId) != has(self.roleIdSecretRef)',
              message: 'appRole sets exactly one of roleId and roleIdSecretRef',
            },
          ],
        },
      ),
      tokenSecretRef: secretKeySelectorSchema(scope, 'a Vault token'),
    },
    {
      'x-kubernetes-validations': [
        {
          rule: '[has(self.kubernetes), has(self.appRole), has(self.tokenSecretRef)].exists_one(set, set)',
          message: 'auth sets exactly one of kubernetes, appRole or tokenSecretRef',
        },
      ],
    },
  );
}

function vaultTlsSchema(scope: StoreScope): JSONSchemaProps {
  return obj('TLS to Vault: the CA that signs its certificate, a client certificate, the name checked.', {
    caProvider: obj(
      "A CA bundle (PEM) that signs Vault's certificate, from a Secret or a ConfigMap. Absent: the operator's default bundle.",
      {
        type: str('Secret or ConfigMap.', { enum: ['Secret', 'ConfigMap'] }),
        name: str('The name of the Secret or ConfigMap.', { minLength: 1, maxLength: LIMITS.name }),
        key: str('The key that holds the PEM bundle.', {
          minLength: 1,
          maxLength: LIMITS.name,
          pattern: SECRET_KEY_PATTERN,
        }),
        namespace: vaultNamespaceField(scope, 'Secrets and ConfigMaps', 'Secret or ConfigMap'),
      },
      {
        required: ['type', 'name', 'key'],
        'x-kubernetes-validations': [vaultNamespaceRule(scope, 'Secrets and ConfigMaps', 'Secret or ConfigMap')],
      },
    ),
    clientCertSecretRef: obj(
      'A client certificate for TLS client auth: a kubernetes.io/tls Secret (keys tls.crt and tls.key).',
      {
        name: str('The name of the Secret.', { minLength: 1, maxLength: LIMITS.name }),
        namespace: vaultNamespaceField(scope, 'Secrets', 'Secret'),
      },
      { required: ['name'], 'x-kubernetes-validations': [vaultNamespaceRule(scope, 'Secrets', 'Secret')] },
    ),
    serverName: str(
      "The name checked in Vault's certificate (and sent as SNI) when it differs from the host of the address.",
      {
        minLength: 1,
        maxLength: 253,
      },
    ),
  });
}

function vaultProviderSchema(scope: StoreScope): JSONSchemaProps {
  return obj(
    'HashiCorp Vault: remoteRef.key is the path of an entry inside the KV mount (app/db), property a field of it, ' +
      'version a KV v2 version number; dataFrom.find lists a path prefix recursively and matches nameRegexp on the ' +
      'full path (find.tags is refused).',
    {
      server: str(
        "Vault's address, such as https://vault.example.com:8200 (scheme, host and port; http only for tests). A " +
          'SecretStore may only name addresses the operator allows (--allowed-endpoints).',
        VAULT_ADDRESS_SCHEMA,
      ),
      failover: {
        description:
          'More addresses tried in order when server is unavailable (network error, 5xx, sealed, throttled): a ' +
          'performance standby, a DR secondary promoted to primary. Permission denied and missing paths never fail over.',
        type: 'array',
        maxItems: MAX_FAILOVER,
        'x-kubernetes-list-type': 'set',
        items: { type: 'string', ...VAULT_ADDRESS_SCHEMA },
      },
      circuitBreaker: circuitBreakerSchema,
      namespace: str('Vault Enterprise namespace, sent as X-Vault-Namespace on every request (ns1/team-a).', {
        minLength: 1,
        maxLength: 256,
        pattern: VAULT_MOUNT_PATTERN,
      }),
      path: str('Mount path of the KV secrets engine. Default secret.', {
        maxLength: 256,
        pattern: VAULT_MOUNT_PATTERN,
      }),
      version: str('KV engine version: v1 or v2. Default v2.', { enum: ['v1', 'v2'] }),
      auth: vaultAuthSchema(scope),
      tls: vaultTlsSchema(scope),
      requestsPerSecond: {
        description:
          "The store's request budget, shared by every ManagedSecret that uses it (token bucket, burst twice the rate). Default 10.",
        type: 'number',
        minimum: 0.1,
        maximum: 10000,
      },
      decrypt: obj(
        "Values fetched from the store (and inline data[].ciphertext) that are secretsync transit ciphertexts are decrypted by Vault's transit engine, with a context bound to the namespace and ManagedSecret.",
        {
          transit: obj(
            'The transit key.',
            {
              mount: str('Mount path of the transit engine. Default transit.', {
                maxLength: 256,
                pattern: VAULT_MOUNT_PATTERN,
              }),
              key: str('The transit key (created with derived=true: a context is required).', {
                minLength: 1,
                maxLength: 256,
              }),
            },
            { required: ['key'] },
          ),
        },
        { required: ['transit'] },
      ),
      issuePaths: {
        description:
          'Path prefixes inside Vault (pki/issue/, database/creds/) that ManagedSecrets may issue credentials from ' +
          '(dataFrom[].certificate, dataFrom[].dynamic). ' +
          (scope === 'Cluster'
            ? 'Absent: none (a tenant must not drive the cluster store’s token to arbitrary paths).'
            : 'Absent: any (the store’s own identity bounds it).'),
        type: 'array',
        maxItems: 32,
        items: { type: 'string', minLength: 1, maxLength: 512 },
      },
    },
    {
      required: ['server', 'auth'],
      'x-kubernetes-validations': [
        {
          rule: '!has(self.failover) || self.failover.all(f, f != self.server)',
          message: 'a failover address must differ from server',
        },
      ],
    },
  );
}

const IBM_REGION_PATTERN = '^[a-z]+-[a-z]+(-[0-9])?$';

/** One IBM Cloud Secrets Manager instance: a service URL, or an instance id and region. */
function ibmInstanceProperties(): Record<string, JSONSchemaProps> {
  return {
    serviceUrl: str(
      "The instance's service URL: https://<instance id>.<region>.secrets-manager.appdomain.cloud, or its " +
        '.private. form for the private endpoint. Or set instanceId and region.',
      ENDPOINT_SCHEMA,
    ),
    instanceId: str(
      "The instance's id (a UUID), with region. With serviceUrl: names the instance whose IBM Cloud Event " +
        "Notifications concern this store, when the URL is not the instance's own (a proxy); the URL is used.",
      { pattern: '^[0-9a-fA-F-]{36}$' },
    ),
    region: str(
      'The IBM Cloud region of the instance, such as us-south (with instanceId). With serviceUrl: names the ' +
        'instance in status and metrics (default: the region in the URL, else its host).',
      { pattern: IBM_REGION_PATTERN, maxLength: 64 },
    ),
    endpointType: {
      description: "With instanceId: the instance's public (default) or private endpoint.",
      type: 'string',
      enum: ['public', 'private'],
    },
  };
}

const ibmInstanceRule = {
  rule: 'has(self.serviceUrl) || (has(self.instanceId) && has(self.region))',
  message: 'set serviceUrl, or instanceId and region',
};

function ibmAuthSchema(scope: StoreScope): JSONSchemaProps {
  const namespaced = scope === 'Namespaced';
  return obj(
    "How the operator logs in to IBM Cloud IAM. Absent: the API key in the operator's IBMCLOUD_API_KEY, " +
      (namespaced
        ? 'which a SecretStore may use only when the cluster admin allows it (--allow-operator-identity-for-namespaced-stores).'
        : 'always allowed for a ClusterSecretStore.'),
    {
      apiKeySecretRef: secretKeySelectorSchema(scope, 'an IAM API key (of a service ID)'),
      trustedProfile: obj(
        'A trusted profile: the operator mints a short-lived token for the ServiceAccount (TokenRequest API) and ' +
          'logs in with it at IAM as a compute-resource token (grant type cr-token). Set profileId or profileName.',
        {
          profileId: str('The trusted profile id (Profile-…).', { minLength: 1, maxLength: 128 }),
          profileName: str('The trusted profile name.', { minLength: 1, maxLength: 128 }),
          serviceAccountRef: obj(
            'The ServiceAccount whose token the profile trusts.',
            {
              name: str('The ServiceAccount.', { minLength: 1, maxLength: LIMITS.name }),
              namespace: str(
                namespaced
                  ? 'Must not be set: a SecretStore may only name ServiceAccounts of its own namespace.'
                  : "The ServiceAccount's namespace. Required on a ClusterSecretStore.",
                { pattern: DNS_LABEL_PATTERN, maxLength: LIMITS.namespace },
              ),
              audiences: {
                description: 'Audiences of the token. Default: iam.',
                type: 'array',
                maxItems: 8,
                items: { type: 'string', maxLength: 256 },
              },
            },
            {
              required: ['name'],
              'x-kubernetes-validations': [
                namespaced
                  ? {
                      rule: '!has(self.namespace)',
                      message:
                        'a SecretStore may only use ServiceAccounts of its own namespace: remove serviceAccountRef.namespace',
                    }
                  : {
                      rule: 'has(self.namespace)',
                      message: 'a ClusterSecretStore must set serviceAccountRef.namespace',
                    },
              ],
            },
          ),
        },
        {
          required: ['serviceAccountRef'],
          'x-kubernetes-validations': [
            {
              rule: 'has(self.profileId) != has(self.profileName)',
              message: 'set exactly one of profileId or profileName',
            },
          ],
        },
      ),
    },
    {
      'x-kubernetes-validations': [
        {
          rule: '!(has(self.apiKeySecretRef) && has(self.trustedProfile))',
          message: 'auth sets at most one of apiKeySecretRef or trustedProfile',
        },
      ],
    },
  );
}

function ibmProviderSchema(scope: StoreScope): JSONSchemaProps {
  return obj(
    'IBM Cloud Secrets Manager (API v2): remoteRef.key is a secret id or <secret group>/<secret type>/<secret name>, ' +
      'property a field of the secret type (payload, username, password, a kv key, api_key, certificate, ' +
      'private_key, intermediate, tls.crt, tls.key, ca.crt, a service credential field), version current (default), ' +
      'previous or a version id.',
    {
      ...ibmInstanceProperties(),
      iamEndpoint: str(
        "IAM's base URL. Default https://iam.cloud.ibm.com (https://private.iam.cloud.ibm.com with endpointType private).",
        ENDPOINT_SCHEMA,
      ),
      auth: ibmAuthSchema(scope),
      requestsPerSecond: {
        description:
          "The store's request budget, shared by every ManagedSecret that uses it (token bucket, burst twice the " +
          'rate). Default 10: IBM advises keeping each instance below 20 requests per second.',
        type: 'number',
        minimum: 0.1,
        maximum: 10000,
        default: 10,
      },
      failover: {
        description:
          'Secondary instances (another region) tried in order for reads while the primary is unavailable ' +
          '(network errors, timeouts, 5xx, throttling); 401, 403 and 404 never fail over. Rotation writes go only ' +
          'to the primary. The secondaries must hold the same secrets under the same ids or names.',
        type: 'array',
        maxItems: MAX_FAILOVER,
        items: obj('One secondary instance.', ibmInstanceProperties(), {
          'x-kubernetes-validations': [ibmInstanceRule],
        }),
      },
      circuitBreaker: circuitBreakerSchema,
    },
    { 'x-kubernetes-validations': [ibmInstanceRule] },
  );
}

/** The provider blocks; a new backend adds one entry here (and in ProviderSpec). */
function providerBlocks(scope: StoreScope): Record<string, JSONSchemaProps> {
  return {
    local: localProviderSchema(scope),
    awsKms: awsProviderSchema(
      scope,
      'AWS KMS: decrypts inline ciphertexts (data[].ciphertext, made with `secretsync encrypt`) that are safe to commit to Git.',
      false,
    ),
    awsSecretsManager: awsProviderSchema(
      scope,
      'AWS Secrets Manager: remoteRef.key is a secret name or ARN, property a field of a JSON secret, version a version id or staging label (AWSCURRENT by default).',
      true,
    ),
    awsParameterStore: awsProviderSchema(
      scope,
      'AWS Systems Manager Parameter Store: remoteRef.key is a parameter name, version a version number or label; SecureString values are decrypted.',
      true,
    ),
    vault: vaultProviderSchema(scope),
    ibmSecretsManager: ibmProviderSchema(scope),
  };
}

/**
 * `spec.provider`. Kubernetes CEL has no size() for objects with declared
 * properties, so "exactly one block" is spelled out from the block names:
 * `[has(self.a), has(self.b)].exists_one(set, set)`, generated so that a new
 * provider is covered without touching the rule.
 */
function providerSchema(scope: StoreScope): JSONSchemaProps {
  const blocks = providerBlocks(scope);
  const names = Object.keys(blocks);
  return obj(`Where the secret values live. Set exactly one provider block (today: ${names.join(', ')}).`, blocks, {
    'x-kubernetes-validations': [
      {
        rule: `[${names.map((n) => `has(self.${n})`).join(', ')}].exists_one(set, set)`,
        message: `provider must set exactly one provider block (one of: ${names.join(', ')})`,
      },
    ],
  });
}

/** A standard Kubernetes label selector over `things` (namespaces, workloads), with the API server's own rule for values. */
function labelSelectorSchema(description: string, things: string): JSONSchemaProps {
  return obj(description, {
    matchLabels: stringMap(`Labels ${things} must have, each with exactly this value.`, { maxProperties: 64 }),
    matchExpressions: {
      description: `Label requirements ${things} must meet, all of them.`,
      type: 'array',
      maxItems: LIMITS.matchExpressions,
      items: obj(
        'One label requirement.',
        {
          key: str('The label key.', { minLength: 1, maxLength: 317 }),
          operator: str('How the label relates to the values: In, NotIn, Exists or DoesNotExist.', {
            enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'],
          }),
          values: {
            description: 'Label values: at least one for In and NotIn, none for Exists and DoesNotExist.',
            type: 'array',
            maxItems: 256,
            items: { type: 'string', maxLength: 63 },
          },
        },
        {
          required: ['key', 'operator'],
          'x-kubernetes-validations': [
            {
              rule: "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 : !has(self.values) || size(self.values) == 0",
              message: 'values must be non-empty for operators In and NotIn, and empty for Exists and DoesNotExist',
              fieldPath: '.values',
            },
          ],
        },
      ),
    },
  });
}

const clusterStoreConditionsSchema: JSONSchemaProps = {
  description:
    'Which namespaces may use this store. A ManagedSecret may use it when any condition matches its namespace; ' +
    'empty or absent, every namespace may.',
  type: 'array',
  maxItems: LIMITS.conditions,
  items: obj(
    'Matches a namespace by name or by labels; when both are set, either may match.',
    {
      namespaces: {
        description: 'Names of namespaces that may use the store.',
        type: 'array',
        maxItems: 1024,
        items: { type: 'string', pattern: DNS_LABEL_PATTERN, maxLength: LIMITS.namespace },
      },
      namespaceSelector: labelSelectorSchema(
        'Namespaces whose labels match this selector. An empty selector matches every namespace.',
        'a namespace',
      ),
    },
    {
      'x-kubernetes-validations': [
        {
          rule: 'has(self.namespaces) || has(self.namespaceSelector)',
          message: 'a condition must set namespaces, namespaceSelector or both',
        },
      ],
    },
  ),
};

export const secretStoreSchema: JSONSchemaProps = rootSchema(
  'A SecretStore says where secret values live and how to reach them, for ManagedSecrets in its own namespace.',
  obj('The desired state of the store.', { provider: providerSchema('Namespaced') }, { required: ['provider'] }),
  storeStatusSchema,
);

export const clusterSecretStoreSchema: JSONSchemaProps = rootSchema(
  'A ClusterSecretStore is a SecretStore for the whole cluster: ManagedSecrets in the namespaces its conditions allow may use it.',
  obj(
    'The desired state of the store.',
    { provider: providerSchema('Cluster'), conditions: clusterStoreConditionsSchema },
    { required: ['provider'] },
  ),
  storeStatusSchema,
);

// ---------------------------------------------------------------------------
// ManagedSecret.

const secretKeySchema = (description: string): JSONSchemaProps =>
  str(description, { minLength: 1, maxLength: LIMITS.name, pattern: SECRET_KEY_PATTERN });

const versionSchema = str('The version of the entry to read; provider-specific. Absent: the current version.', {
  maxLength: 256,
});

const dataSchema: JSONSchemaProps = {
  description: 'Values to copy one by one into keys of the target Secret.',
  type: 'array',
  maxItems: LIMITS.dataItems,
  'x-kubernetes-validations': [
    {
      rule: 'self.all(x, self.exists_one(y, y.secretKey == x.secretKey))',
      message: 'data[].secretKey must be unique: two items write the same key of the Secret',
      // Not reason FieldValueDuplicate: the API server prints that as a bare "Duplicate value" without the message.
    },
  ],
  items: obj(
    'One key of the target Secret and where its value comes from.',
    {
      secretKey: secretKeySchema('The key in the target Secret (letters, digits, -, _ and .).'),
      remoteRef: obj(
        'The entry (and optionally one property of it) in the store.',
        {
          key: str('The name of the entry in the store.', { minLength: 1, maxLength: 1024 }),
          property: str(
            'One property of the entry. Absent: the whole value, or the single property of an entry that has just one.',
            { maxLength: 1024 },
          ),
          version: versionSchema,
        },
        { required: ['key'] },
      ),
      ciphertext: str(
        'A value encrypted with `secretsync encrypt` (KMS, or Vault transit with --transit), safe to commit to Git; decrypted with the KMS of the store (an awsKms store, or a store with decrypt.kms), or by Vault for a Vault store with decrypt.transit. Set instead of remoteRef.',
        { minLength: 1, maxLength: 262144, pattern: INLINE_CIPHERTEXT_PATTERN },
      ),
    },
    {
      required: ['secretKey'],
      'x-kubernetes-validations': [
        {
          rule: 'has(self.remoteRef) != has(self.ciphertext)',
          message: 'each data item sets exactly one of remoteRef or ciphertext',
        },
      ],
    },
  ),
};

/** A path inside the store for issued credentials: relative, no empty, `.` or `..` segments (CEL and the controller). */
function issuePathSchema(description: string): JSONSchemaProps {
  return str(
    `${description} Must be inside one of the store's issuePaths (on a ClusterSecretStore, absent issuePaths allow none).`,
    {
      minLength: 1,
      maxLength: 512,
      pattern: ISSUE_PATH_PATTERN,
      'x-kubernetes-validations': [
        { rule: "!self.matches('(^|/)[.][.]?(/|$)')", message: 'an issue path has no . or .. segments' },
      ],
    },
  );
}

/** Relative path segments of letters, digits and `_-.@=+:` (CEL refuses `.` and `..` segments). */
export const ISSUE_PATH_PATTERN = '^[A-Za-z0-9_.@=+:-]+(/[A-Za-z0-9_.@=+:-]+)*$';

const renewAtPercentSchema: JSONSchemaProps = {
  description:
    'Renewed (or re-issued) when this percentage of its lifetime, from issuance to expiry, has passed. Default 66.',
  type: 'integer',
  minimum: 10,
  maximum: 95,
};

const dataFromSchema: JSONSchemaProps = {
  description: 'Entries whose properties all become keys of the target Secret.',
  type: 'array',
  maxItems: LIMITS.dataFromItems,
  items: obj(
    'One source of many keys. Set exactly one of extract, find, certificate or dynamic.',
    {
      extract: obj(
        'Every property of one entry becomes a key of the Secret.',
        {
          key: str('The name of the entry in the store.', { minLength: 1, maxLength: 1024 }),
          version: versionSchema,
        },
        { required: ['key'] },
      ),
      find: obj(
        'Every property of every entry whose name matches. Set exactly one of prefix or nameRegexp.',
        {
          prefix: str('Entries whose name starts with this prefix.', { minLength: 1, maxLength: 1024 }),
          nameRegexp: str(
            'Entries whose name matches this regular expression (RE2 syntax, matched anywhere in the name unless anchored ' +
              'with ^ and $). RE2 has no lookahead, lookbehind or backreferences; patterns that compile to more than ' +
              '2,000 instructions (counted repetitions such as {1000} copy what they repeat) are refused.',
            {
              minLength: 1,
              maxLength: LIMITS.nameRegexp,
              'x-kubernetes-validations': [
                {
                  rule: `!self.matches(${celRaw(RE2_UNSUPPORTED_PATTERN)})`,
                  message:
                    'find.nameRegexp is RE2 syntax, which has no lookahead or lookbehind ((?=, (?!, (?<=, (?<!) and no backreferences (\\1 to \\9, \\k named ones): match the name without them',
                },
              ],
            },
          ),
          tags: stringMap('Secrets Manager: only secrets that carry all of these tags.', {
            maxProperties: 16,
            additionalProperties: { type: 'string', maxLength: 256 },
          }),
          labels: {
            description: 'IBM Cloud Secrets Manager: only secrets that carry all of these labels.',
            type: 'array',
            maxItems: 16,
            items: { type: 'string', minLength: 1, maxLength: 64 },
          },
          secretGroup: str('IBM Cloud Secrets Manager: only secrets of this secret group (its name or id).', {
            minLength: 1,
            maxLength: 64,
          }),
        },
        {
          'x-kubernetes-validations': [
            {
              rule: 'has(self.prefix) != has(self.nameRegexp)',
              message: 'find must set exactly one of prefix or nameRegexp',
            },
          ],
        },
      ),
      certificate: obj(
        'A certificate issued by the store (Vault: a PKI role), renewed before it expires: the Secret gets tls.crt ' +
          '(the certificate and its intermediates), tls.key (the private key the store generated) and ca.crt (the ' +
          'issuing CA). The target type defaults to kubernetes.io/tls.',
        {
          path: issuePathSchema('Where the store issues, e.g. pki/issue/web (a PKI role).'),
          commonName: str('The certificate subject common name.', { minLength: 1, maxLength: 253 }),
          altNames: {
            description: 'DNS (or email) subject alternative names.',
            type: 'array',
            maxItems: 100,
            items: { type: 'string', minLength: 1, maxLength: 253 },
          },
          ipSans: {
            description: 'IP subject alternative names.',
            type: 'array',
            maxItems: 100,
            items: { type: 'string', minLength: 2, maxLength: 45 },
          },
          ttl: str('The lifetime asked for, as a Go-style duration (720h); absent: the role default.', {
            maxLength: LIMITS.refreshInterval,
            'x-kubernetes-validations': [
              { rule: `self.matches(${celRaw(DURATION_PATTERN)})`, message: 'ttl must be a duration such as 24h' },
            ],
          }),
          renewAtPercent: renewAtPercentSchema,
        },
        { required: ['path', 'commonName'] },
      ),
      dynamic: obj(
        'A dynamic secret (database credentials, cloud keys) read from the store: the fields of the answer become ' +
          'Secret keys. Its lease is renewed while the ManagedSecret exists, the secret re-issued before the lease ' +
          'reaches its max_ttl, and the lease revoked when the ManagedSecret is deleted (unless onDelete is Orphan).',
        {
          path: issuePathSchema('Where the store issues, e.g. database/creds/app.'),
          method: str('GET (default) or POST (parameters as the JSON body).', { enum: ['GET', 'POST'] }),
          parameters: stringMap('Query parameters (GET) or body fields (POST); no secret values belong here.', {
            maxProperties: 32,
            additionalProperties: { type: 'string', maxLength: 4096 },
          }),
          renewAtPercent: renewAtPercentSchema,
          onDelete: str(
            'Revoke (default): the lease is revoked when the ManagedSecret is deleted. Orphan: it is left to expire.',
            { enum: ['Revoke', 'Orphan'] },
          ),
        },
        { required: ['path'] },
      ),
    },
    {
      'x-kubernetes-validations': [
        {
          rule: '[has(self.extract), has(self.find), has(self.certificate), has(self.dynamic)].filter(x, x).size() == 1',
          message: 'each dataFrom item must set exactly one of extract, find, certificate or dynamic',
        },
      ],
    },
  ),
};

const targetSchema = obj('The Secret to write, and how.', {
  name: str('The name of the Secret. Default: the name of the ManagedSecret.', {
    maxLength: LIMITS.name,
    pattern: DNS_SUBDOMAIN_PATTERN,
  }),
  type: str(
    `The type of the Secret: Opaque, one of ${ALLOWED_KUBERNETES_SECRET_TYPES.join(', ')}, or a type of your own ` +
      '(example.com/kind). Other kubernetes.io and k8s.io types, such as kubernetes.io/service-account-token and ' +
      'bootstrap.kubernetes.io/token, make the cluster act on the Secret and are refused. Default Opaque, or ' +
      'kubernetes.io/tls when a dataFrom item is a certificate.',
    {
      minLength: 1,
      maxLength: LIMITS.name,
      'x-kubernetes-validations': [
        {
          rule:
            `self == 'Opaque' || self in [${ALLOWED_KUBERNETES_SECRET_TYPES.map((t) => `'${t}'`).join(', ')}] || ` +
            `!self.matches(${celRaw(CLUSTER_DOMAIN_KEY_PATTERN)})`,
          message:
            `target.type must be Opaque, one of ${ALLOWED_KUBERNETES_SECRET_TYPES.join(', ')}, or a type outside ` +
            'kubernetes.io and k8s.io: the cluster acts on Secrets of other kubernetes.io types (kubernetes.io/service-account-token, bootstrap.kubernetes.io/token)',
        },
      ],
    },
  ),
  creationPolicy: str(
    'Owner: create the Secret and own it (it is deleted with the ManagedSecret). Orphan: create it without an owner. ' +
      'Merge: write keys into a Secret that must already exist and consent with the annotation ' +
      'secretsync.io/merge-from set to the name of this ManagedSecret (else MergeNotAllowed). ' +
      'None: write nothing (only check the values can be read). Under every policy only what secretsync writes is ' +
      'compared: keys, labels and annotations others add to the Secret are kept and never cause a write.',
    { enum: ['Owner', 'Orphan', 'Merge', 'None'], default: 'Owner' },
  ),
  deletionPolicy: str(
    'What happens when the values are gone from the store. Retain: keep the last values written. ' +
      'Delete: remove them from the Secret (with creationPolicy Merge, only the keys this ManagedSecret wrote).',
    { enum: ['Retain', 'Delete'], default: 'Retain' },
  ),
  immutable: {
    description:
      'Write the Secret as immutable: the API server then refuses changes to it, so the controller deletes and re-creates it when the values change.',
    type: 'boolean',
  },
  labels: stringMap(`Labels to set on the Secret. ${TARGET_METADATA_RULE}`, {
    maxProperties: LIMITS.targetMetadata,
    additionalProperties: { type: 'string', maxLength: LIMITS.labelValue },
    'x-kubernetes-validations': targetMetadataRules('labels'),
  }),
  annotations: stringMap(`Annotations to set on the Secret. ${TARGET_METADATA_RULE}`, {
    maxProperties: LIMITS.targetMetadata,
    'x-kubernetes-validations': targetMetadataRules('annotations'),
  }),
  template: obj(
    'Compute the keys of the Secret from the fetched values with logic-less mustache templates (no code runs).',
    {
      data: stringMap(
        'Secret key → mustache template over the fetched values, e.g. `postgres://{{ username }}:{{ password }}@db/app`. ' +
          'Strict: a name that is not among the fetched values, or a section ({{#name}}, {{^name}}) over one, fails the ' +
          'sync with InvalidTemplate. A name is a whole key, dots included ({{tls.crt}}); values are inserted without ' +
          'escaping; partials are not available. All templates together may hold 64 KiB (operator flag ' +
          '--max-template-bytes, TemplateTooLarge) and render at most 1 MiB (--max-secret-bytes, SecretTooLarge); ' +
          'at most 256 whitespace characters in a row.',
        {
          maxProperties: LIMITS.templateKeys,
          additionalProperties: { type: 'string', maxLength: LIMITS.templateSource },
          'x-kubernetes-validations': [
            {
              rule: `self.all(k, k.matches(${celRaw(SECRET_KEY_PATTERN)}))`,
              message: 'template.data keys must be valid Secret keys (letters, digits, -, _ and .)',
            },
          ],
        },
      ),
      mergePolicy: str(
        'Replace: the Secret holds only the rendered keys. Merge: the fetched keys plus the rendered ones (rendered win).',
        { enum: ['Replace', 'Merge'], default: 'Replace' },
      ),
    },
    { required: ['data'] },
  ),
});

const int = (description: string, minimum: number, maximum: number, extra: Omit<JSONSchemaProps, 'type'> = {}) => ({
  description,
  type: 'integer' as const,
  minimum,
  maximum,
  ...extra,
});

// No `properties` at all: the API server drops an empty map, and the installed schema must equal ours.
const emptyGenerator = (description: string): JSONSchemaProps => ({ description, type: 'object' });

const passwordClassMinimum = (cls: string) =>
  `(has(self.minimum) && has(self.minimum.${cls}) ? self.minimum.${cls} : 0)`;

const generatorSchema = obj(
  'How new values are made (with Node.js crypto). Set exactly one generator. Key pairs (rsa, ecdsa, ed25519) write two PEM properties, privateKey (PKCS#8) and publicKey (SPKI).',
  {
    password: obj(
      'A random password drawn uniformly from the chosen character classes.',
      {
        length: int('Characters in the password.', 8, LIMITS.passwordLength, { default: 32 }),
        classes: {
          description: 'Character classes to draw from: lowercase, uppercase, digits, symbols.',
          type: 'array',
          minItems: 1,
          maxItems: 4,
          'x-kubernetes-list-type': 'set',
          default: [...PASSWORD_CLASSES],
          items: { type: 'string', enum: [...PASSWORD_CLASSES] },
        },
        minimum: obj(
          'At least this many characters of a class; the class must be among classes.',
          Object.fromEntries(
            PASSWORD_CLASSES.map((c) => [c, int(`At least this many ${c} characters.`, 0, LIMITS.passwordLength)]),
          ),
        ),
        exclude: str('Characters never used, such as the look-alikes 0O1lI.', { maxLength: 256 }),
      },
      {
        'x-kubernetes-validations': [
          {
            rule: `${PASSWORD_CLASSES.map(passwordClassMinimum).join(' + ')} <= self.length`,
            message: 'password: the minimums per class add up to more than length',
          },
          {
            rule: `!has(self.minimum) || [${PASSWORD_CLASSES.map(
              (c) => `!has(self.minimum.${c}) || self.minimum.${c} == 0 || '${c}' in self.classes`,
            ).join(', ')}].all(ok, ok)`,
            message: 'password: a minimum is set for a class that is not among classes',
          },
        ],
      },
    ),
    randomBytes: obj('Random bytes, encoded as text.', {
      length: int('Bytes of randomness.', 8, LIMITS.randomBytes, { default: 32 }),
      encoding: str('How the bytes are written: base64 or hex.', { enum: ['base64', 'hex'], default: 'base64' }),
    }),
    uuid: emptyGenerator('A random (version 4) UUID. Takes no parameters: uuid: {}.'),
    rsa: obj('An RSA key pair.', {
      bits: int('Modulus size: 2048, 3072 or 4096.', 2048, 4096, {
        default: 3072,
        'x-kubernetes-validations': [
          { rule: 'self in [2048, 3072, 4096]', message: 'rsa.bits must be 2048, 3072 or 4096' },
        ],
      }),
    }),
    ecdsa: obj('An ECDSA key pair.', {
      curve: str('The curve: P-256, P-384 or P-521.', { enum: ['P-256', 'P-384', 'P-521'], default: 'P-256' }),
    }),
    ed25519: emptyGenerator('An Ed25519 key pair. Takes no parameters: ed25519: {}.'),
  },
  {
    'x-kubernetes-validations': [
      {
        rule: `[${GENERATOR_NAMES.map((n) => `has(self.${n})`).join(', ')}].exists_one(set, set)`,
        message: `generator must set exactly one of ${GENERATOR_NAMES.join(', ')}`,
      },
    ],
  },
);

const rotationSchema = obj(
  'Generate a new value on a schedule, write it to the store as a new version, then sync the Secret. Exactly once per due time, across restarts and leader changes; a rotation missed while the operator was down happens once when it is back. The annotation secretsync.io/rotate-now (or `secretsync rotate`) rotates at once.',
  {
    schedule: str("When to rotate, as a cron expression (5 fields, e.g. '0 3 * * 0', or @daily, @weekly, @monthly).", {
      maxLength: LIMITS.refreshSchedule,
      'x-kubernetes-validations': [
        {
          rule: `self.matches(${celRaw(CRON_PATTERN)})`,
          message:
            "rotation.schedule must be a cron expression with 5 fields, e.g. '0 3 * * 0', or @daily/@weekly/@monthly",
        },
      ],
    }),
    timeZone: str('The IANA time zone the schedule is read in, such as Europe/Paris. Default UTC.', {
      maxLength: 64,
      pattern: '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$',
    }),
    interval: str('How often to rotate, as a Go-style duration of at least 1s (24h, 720h).', {
      maxLength: LIMITS.refreshInterval,
      'x-kubernetes-validations': [
        {
          rule: `self.matches(${celRaw(DURATION_PATTERN)}) && duration(self) >= duration('1s')`,
          message: 'rotation.interval must be a duration of at least 1s, such as 24h or 720h',
        },
      ],
    }),
    generator: generatorSchema,
    remoteRef: obj(
      'The store entry the new value is written to, and the property of it (other properties are kept). Without property, the value replaces the whole entry.',
      {
        key: str('The name of the entry in the store.', { minLength: 1, maxLength: 1024 }),
        property: str(
          'The property the value is written to. Not with key pairs, which write privateKey and publicKey.',
          {
            minLength: 1,
            maxLength: 1024,
          },
        ),
      },
      { required: ['key'] },
    ),
    keepVersions: int(
      'Versions the local store keeps of the entry (oldest pruned first). Secrets Manager and Parameter Store keep versions by their own rules. Default 5.',
      1,
      LIMITS.keepVersions,
    ),
  },
  {
    required: ['generator', 'remoteRef'],
    'x-kubernetes-validations': [
      {
        rule: 'has(self.schedule) != has(self.interval)',
        message: 'rotation must set exactly one of schedule or interval',
      },
      { rule: '!has(self.timeZone) || has(self.schedule)', message: 'rotation.timeZone applies only to a schedule' },
      {
        rule: `!(${KEY_PAIR_GENERATORS.map((g) => `has(self.generator.${g})`).join(' || ')}) || !has(self.remoteRef.property)`,
        message:
          'key pair generators write the properties privateKey and publicKey: remove rotation.remoteRef.property',
      },
    ],
  },
);

const workloadSelectorSchema = labelSelectorSchema('Workloads whose labels match this selector.', 'a workload');

const rolloutRestartSchema = obj(
  "Restart workloads in the ManagedSecret's namespace when the Secret's data actually changes (not on a no-op refresh): their pod template gets the annotation secretsync.io/restarted-at, so their controllers roll the Pods.",
  {
    targets: {
      description: 'Deployments, StatefulSets and DaemonSets to restart, by name or by label selector.',
      type: 'array',
      maxItems: LIMITS.rolloutTargets,
      items: obj(
        'One workload by name, or the workloads of one kind that a selector matches.',
        {
          kind: str('Deployment, StatefulSet or DaemonSet.', { enum: ['Deployment', 'StatefulSet', 'DaemonSet'] }),
          name: str('The name of the workload.', {
            minLength: 1,
            maxLength: LIMITS.name,
            pattern: DNS_SUBDOMAIN_PATTERN,
          }),
          selector: workloadSelectorSchema,
        },
        {
          required: ['kind'],
          'x-kubernetes-validations': [
            {
              rule: 'has(self.name) != has(self.selector)',
              message: 'a rollout target sets exactly one of name or selector',
            },
          ],
        },
      ),
    },
    auto: {
      description:
        'Also restart the workloads in the namespace whose pod spec references the Secret (env, envFrom, volumes, projected volumes).',
      type: 'boolean',
    },
    debounce: str('Changes within this window cause one restart per workload (Go-style duration).', {
      default: '10s',
      maxLength: LIMITS.refreshInterval,
      'x-kubernetes-validations': [
        {
          rule: `self.matches(${celRaw(DURATION_PATTERN)})`,
          message: 'rolloutRestart.debounce must be a duration such as 10s',
        },
      ],
    }),
    maxChangesPerHour: int(
      'A Secret whose data changes more often than this within an hour is flapping: restarts stop (status and an Event say so) until it calms down.',
      1,
      1000,
      { default: 5 },
    ),
  },
);

const managedSecretSpecSchema = obj(
  'The desired state: which values to fetch, from which store, into which Secret, and how often.',
  {
    storeRef: obj(
      'The store to read from.',
      {
        kind: str(
          'SecretStore (in the same namespace) or ClusterSecretStore (allowed for this namespace by its conditions).',
          { enum: ['SecretStore', 'ClusterSecretStore'], default: 'SecretStore' },
        ),
        name: str('The name of the store.', { minLength: 1, maxLength: LIMITS.name }),
      },
      { required: ['name'] },
    ),
    data: dataSchema,
    dataFrom: dataFromSchema,
    target: targetSchema,
    refreshInterval: str(
      'How often to fetch the values again, as a Go-style duration (30s, 15m, 1h, 1h30m); 0 syncs once.',
      {
        default: '1h',
        maxLength: LIMITS.refreshInterval,
        'x-kubernetes-validations': [
          {
            rule: `self.matches(${celRaw(DURATION_PATTERN)})`,
            message: 'refreshInterval must be a duration such as 30s, 15m, 1h or 0',
          },
        ],
      },
    ),
    refreshSchedule: str(
      "A cron expression (5 fields, e.g. '0 * * * *', or @hourly, @daily, @weekly, @monthly, @yearly); " +
        'when set, refreshes follow it instead of refreshInterval.',
      {
        maxLength: LIMITS.refreshSchedule,
        'x-kubernetes-validations': [
          {
            rule: `self.matches(${celRaw(CRON_PATTERN)})`,
            message:
              "refreshSchedule must be a cron expression with 5 fields, e.g. '0 * * * *', or @hourly/@daily/@weekly/@monthly",
          },
        ],
      },
    ),
    rotation: rotationSchema,
    rolloutRestart: rolloutRestartSchema,
  },
  {
    required: ['storeRef'],
    'x-kubernetes-validations': [
      {
        rule: '(has(self.data) && size(self.data) > 0) || (has(self.dataFrom) && size(self.dataFrom) > 0)',
        message: 'a ManagedSecret needs at least one data or dataFrom item',
      },
    ],
  },
);

export const managedSecretSchema: JSONSchemaProps = rootSchema(
  'A ManagedSecret keeps a native Secret in sync with values read from a SecretStore or ClusterSecretStore.',
  managedSecretSpecSchema,
  managedSecretStatusSchema,
);

// ---------------------------------------------------------------------------
// ReplicationTarget.

const namespacedReplicationSchema = (what: string, note = ''): JSONSchemaProps =>
  obj(`Which ${what} to replicate. Absent: none are.${note}`, {
    selector: labelSelectorSchema(
      `Only ${what} whose labels match this selector; empty or absent: all of them.`,
      `a replicated object`,
    ),
    namespaces: {
      description: `Only ${what} in these namespaces; empty or absent: every namespace the operator watches.`,
      type: 'array',
      maxItems: 1024,
      items: { type: 'string', pattern: DNS_LABEL_PATTERN, maxLength: LIMITS.namespace },
    },
  });

const replicationTargetSpecSchema = obj(
  'Which stores (and optionally ManagedSecrets) to copy to a disaster-recovery cluster, how to reach it, and what to rewrite on the way.',
  {
    kubeconfigSecretRef: obj(
      "The Secret, in the operator's own namespace, that holds a kubeconfig for the DR cluster. Credentials and CA must be embedded (exec and auth-provider plugins and file references are refused). Its identity there needs only the replication receiver role the chart documents.",
      {
        name: str('The name of the Secret.', { minLength: 1, maxLength: LIMITS.name, pattern: DNS_SUBDOMAIN_PATTERN }),
        key: str('The key in the Secret whose value is the kubeconfig (YAML).', {
          default: 'kubeconfig',
          pattern: SECRET_KEY_PATTERN,
          maxLength: LIMITS.name,
        }),
      },
      { required: ['name'] },
    ),
    clusterStores: obj('Which ClusterSecretStores to replicate. Absent: none are.', {
      selector: labelSelectorSchema(
        'Only ClusterSecretStores whose labels match this selector; empty or absent: all of them.',
        'a ClusterSecretStore',
      ),
    }),
    stores: namespacedReplicationSchema('SecretStores'),
    managedSecrets: namespacedReplicationSchema(
      'ManagedSecrets',
      ' Copies leave out spec.rotation and the rotate-now annotation: only the primary rotates.',
    ),
    includeCredentials: {
      description:
        'Also copy the Secrets that replicated stores reference (AWS credential Secrets, local master keys). Off by default: the DR cluster should use its own identity.',
      type: 'boolean',
      default: false,
    },
    overrides: obj('Provider settings rewritten on the way, so that the DR copies use the secondary region.', {
      aws: obj(
        "Set on every AWS provider block (awsKms, awsSecretsManager, awsParameterStore) and on every decrypt.kms that sets the field itself (a local store's decrypt.kms always). Unset fields are left as they are.",
        {
          region: str('The AWS region of the DR copies, such as us-west-2.', { minLength: 1, maxLength: 64 }),
          endpoint: str('The endpoint URL of the DR copies (a VPC endpoint in the secondary region, moto).', {
            maxLength: 1024,
            pattern: '^https?://',
          }),
          roleArn: str('The IAM role the DR copies assume.', {
            maxLength: 2048,
            pattern: '^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$',
          }),
        },
      ),
    }),
    prune: {
      description:
        'Delete DR copies whose source is gone or no longer selected. Never happens while a list on the primary fails. Default true.',
      type: 'boolean',
      default: true,
    },
    interval: str('How often everything is compared and re-applied, as a Go-style duration of at least 5s.', {
      default: '1m',
      maxLength: LIMITS.refreshInterval,
      'x-kubernetes-validations': [
        {
          rule: `self.matches(${celRaw(DURATION_PATTERN)}) && duration(self) >= duration('5s')`,
          message: 'interval must be a duration of at least 5s, such as 30s or 5m',
        },
      ],
    }),
  },
  {
    required: ['kubeconfigSecretRef'],
    'x-kubernetes-validations': [
      {
        rule: 'has(self.clusterStores) || has(self.stores) || has(self.managedSecrets)',
        message: 'a ReplicationTarget must select something: set clusterStores, stores or managedSecrets',
      },
    ],
  },
);

const replicationTargetStatusSchema = obj('What the replicator last observed and did. Written by the operator.', {
  conditions: conditionsSchema,
  observedGeneration: observedGenerationSchema,
  objectsInSync: {
    description: "Selected objects whose DR copy matched the primary's after the last pass.",
    type: 'integer',
    format: 'int64',
    minimum: 0,
  },
  lastReplicationTime: str('When the DR cluster was last confirmed to match the primary.', { format: 'date-time' }),
  lagSeconds: {
    description:
      'Seconds between lastReplicationTime and this status write: 0 after a successful pass, growing while the DR cluster cannot be reached.',
    type: 'integer',
    format: 'int64',
    minimum: 0,
  },
});

export const replicationTargetSchema: JSONSchemaProps = (() => {
  const schema = rootSchema(
    'A ReplicationTarget keeps copies of selected SecretStores, ClusterSecretStores and ManagedSecrets in a disaster-recovery cluster, continuously, with provider settings rewritten for the secondary region.',
    replicationTargetSpecSchema,
    replicationTargetStatusSchema,
  );
  // Its name is a label value on every copy (prune finds them by it): at most 63 characters.
  schema['x-kubernetes-validations'] = [
    {
      rule: 'size(self.metadata.name) <= 63',
      message: 'a ReplicationTarget name must be at most 63 characters (it is a label value on the DR copies)',
    },
  ];
  return schema;
})();

// ---------------------------------------------------------------------------
// The kinds.

export interface PrinterColumn {
  name: string;
  type: 'string' | 'date' | 'integer' | 'number' | 'boolean';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface KindDefinition {
  kind: 'SecretStore' | 'ClusterSecretStore' | 'ManagedSecret' | 'ReplicationTarget';
  plural: string;
  singular: string;
  shortNames: string[];
  scope: 'Namespaced' | 'Cluster';
  schema: JSONSchemaProps;
  printerColumns: PrinterColumn[];
}

const READY = '.status.conditions[?(@.type=="Ready")]';
const readyColumns: PrinterColumn[] = [
  { name: 'Ready', type: 'string', jsonPath: `${READY}.status`, description: 'Whether the object is Ready.' },
  { name: 'Reason', type: 'string', jsonPath: `${READY}.reason`, description: 'Why it is (not) Ready.' },
];
const ageColumn: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

/**
 * The short names External Secrets Operator's CRDs claim (ExternalSecret,
 * SecretStore, ClusterSecretStore, ClusterExternalSecret, PushSecret,
 * ClusterPushSecret). Ours must differ: both operators run side by side during
 * a migration, and kubectl resolves a short name claimed twice to one of them
 * only, so `kubectl get ss` would silently show the other's objects.
 */
export const ESO_SHORT_NAMES: readonly string[] = ['es', 'ss', 'css', 'ces', 'ps', 'cps'];

export const KINDS: readonly KindDefinition[] = [
  {
    kind: 'SecretStore',
    plural: 'secretstores',
    singular: 'secretstore',
    shortNames: ['sstore'],
    scope: 'Namespaced',
    schema: secretStoreSchema,
    printerColumns: [...readyColumns, ageColumn],
  },
  {
    kind: 'ClusterSecretStore',
    plural: 'clustersecretstores',
    singular: 'clustersecretstore',
    shortNames: ['csstore'],
    scope: 'Cluster',
    schema: clusterSecretStoreSchema,
    printerColumns: [...readyColumns, ageColumn],
  },
  {
    kind: 'ManagedSecret',
    plural: 'managedsecrets',
    singular: 'managedsecret',
    shortNames: ['ms'],
    scope: 'Namespaced',
    schema: managedSecretSchema,
    printerColumns: [
      ...readyColumns,
      { name: 'Store', type: 'string', jsonPath: '.spec.storeRef.name', description: 'The store it reads from.' },
      { name: 'Last Sync', type: 'date', jsonPath: '.status.lastSyncTime', description: 'When it last synced.' },
      ageColumn,
    ],
  },
  {
    kind: 'ReplicationTarget',
    plural: 'replicationtargets',
    singular: 'replicationtarget',
    shortNames: ['rtarget'],
    scope: 'Cluster',
    schema: replicationTargetSchema,
    printerColumns: [
      ...readyColumns,
      {
        name: 'Objects',
        type: 'integer',
        jsonPath: '.status.objectsInSync',
        description: 'Objects in sync in the DR cluster.',
      },
      { name: 'Lag', type: 'integer', jsonPath: '.status.lagSeconds', description: 'Seconds behind the primary.' },
      {
        name: 'Last Replication',
        type: 'date',
        jsonPath: '.status.lastReplicationTime',
        description: 'When the DR cluster last matched.',
      },
      ageColumn,
    ],
  },
];
