// TypeScript types of the secretsync.io/v1alpha1 API. The OpenAPI schemas in
// src/api/schemas.ts describe the same shapes for the API server; a unit test
// keeps the examples in examples/ valid against both.

export const GROUP = 'secretsync.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface SecretKeySelector {
  name: string;
  /** Key in the Secret's data. Default `master-key`. */
  key?: string;
  /** Only on a ClusterSecretStore; a SecretStore always reads from its own namespace. */
  namespace?: string;
}

export interface LocalProviderSpec {
  /** Directory holding the encrypted entries (a PersistentVolume in a cluster). */
  path: string;
  /** Secret that holds the 32-byte master key (raw or base64) that wraps the per-entry data keys. */
  masterKeySecretRef: SecretKeySelector;
  /** Values in the store that are secretsync ciphertexts are decrypted with KMS (region required here). */
  decrypt?: KmsDecryptSpec;
  /** Event-driven sync: the operator watches the store directory and syncs an entry's users when it changes. */
  events?: LocalEventsSpec;
}

/** The part of every provider block's `events` that is not about the source. */
export interface EventsCommonSpec {
  /** The refresh interval the store's ManagedSecrets use while events are degraded (Go-style duration). Default `1m`. */
  fallbackRefreshInterval?: string;
}

/** `spec.provider.local.events`: watch the store directory. */
export interface LocalEventsSpec extends EventsCommonSpec {
  watch: true;
}

/** An SQS queue fed by an EventBridge rule for the store's change events. */
export interface SqsEventsSourceSpec {
  queueUrl: string;
  /** Absent: the store's region. */
  region?: string;
  /** Another SQS endpoint (moto, a VPC endpoint). Absent: the region's SQS endpoint. */
  endpoint?: string;
  /** Absent (with roleArn): the store's own identity. */
  auth?: AwsAuthSpec;
  roleArn?: string;
}

/** `spec.provider.awsSecretsManager.events` / `awsParameterStore.events`. */
export interface AwsEventsSpec extends EventsCommonSpec {
  sqs: SqsEventsSourceSpec;
}

/** One key of one Secret; unlike a master key there is no sensible default key, so `key` is required. */
export interface SecretKeyRef {
  name: string;
  key: string;
  /** Only on a ClusterSecretStore; a SecretStore reads Secrets from its own namespace. */
  namespace?: string;
}

/** Static AWS credentials from Secrets in the store's namespace (or, on a ClusterSecretStore, the refs' namespace). */
export interface AwsSecretRefAuth {
  accessKeyIdSecretRef: SecretKeyRef;
  secretAccessKeySecretRef: SecretKeyRef;
  sessionTokenSecretRef?: SecretKeyRef;
}

/** A per-namespace identity: a token for this ServiceAccount, exchanged with AssumeRoleWithWebIdentity for `roleArn`. */
export interface AwsServiceAccountAuth {
  name: string;
  /** Only on a ClusterSecretStore; a SecretStore may only name ServiceAccounts of its own namespace. */
  namespace?: string;
  /** Token audiences. Default `["sts.amazonaws.com"]`. */
  audiences?: string[];
}

/** How the operator authenticates to AWS. Absent: the operator's own identity (the default credential chain). */
export interface AwsAuthSpec {
  secretRef?: AwsSecretRefAuth;
  serviceAccountRef?: AwsServiceAccountAuth;
}

/**
 * Where a provider block fails over to: another region, another endpoint, or both (at least one set). The
 * (region, endpoint) pair differs from the primary's and from the other entries'.
 */
export interface AwsFailoverTarget {
  /** Absent: the primary's region. */
  region?: string;
  /** An endpoint for this entry's region (a VPC endpoint, the public endpoint, moto). Absent: the regional AWS endpoint. */
  endpoint?: string;
}

/** When a region counts as down, and for how long it is skipped before a probe. */
export interface CircuitBreakerSpec {
  /** Consecutive availability failures that open a region's circuit. Default 3. */
  failureThreshold?: number;
  /** Seconds an open circuit skips the region before one request probes it again. Default 30. */
  openSeconds?: number;
}

/** Settings shared by every AWS provider block. */
export interface AwsCommonSpec {
  region: string;
  /** Another endpoint (moto, LocalStack, a VPC endpoint). */
  endpoint?: string;
  auth?: AwsAuthSpec;
  /** Assume this role (after the credentials above) before calling the service. Required with serviceAccountRef. */
  roleArn?: string;
  /** The store's request budget, shared by every ManagedSecret that uses it. Default 10. */
  requestsPerSecond?: number;
  /** Regions or endpoints tried in order when the primary is unavailable (network errors, 5xx, throttling). */
  failover?: AwsFailoverTarget[];
  /** The per-region circuit breaker used with `failover`. */
  circuitBreaker?: CircuitBreakerSpec;
}

/**
 * Client-side decryption: values fetched from the backend that are secretsync
 * ciphertexts are decrypted with KMS in the operator, so the backend never
 * holds plaintext. Absent fields inherit from the provider block (AWS providers).
 */
export interface KmsDecryptSpec {
  /** The request budget is the provider block's; decryption has no budget of its own. */
  kms: Partial<Omit<AwsCommonSpec, 'requestsPerSecond'>>;
}

/** Inline KMS ciphertexts (`data[].ciphertext`) decrypted with this region's KMS. */
export type AwsKmsProviderSpec = AwsCommonSpec;

export interface AwsSecretsManagerProviderSpec extends AwsCommonSpec {
  decrypt?: KmsDecryptSpec;
  /** Event-driven sync from an SQS queue. */
  events?: AwsEventsSpec;
}

export interface AwsParameterStoreProviderSpec extends AwsCommonSpec {
  decrypt?: KmsDecryptSpec;
  /** Event-driven sync from an SQS queue. */
  events?: AwsEventsSpec;
}

/** HashiCorp Vault: KV v1/v2 entries (remoteRef.key is the path inside the mount), issued credentials, transit. */
export interface VaultProviderSpec {
  /** Vault's address, e.g. https://vault.example.com:8200 (http only for tests on 127.0.0.1). */
  server: string;
  /** More addresses tried in order when `server` is unavailable (a performance standby, a DR secondary). At most 4. */
  failover?: string[];
  circuitBreaker?: CircuitBreakerSpec;
  /** Vault Enterprise namespace, sent as X-Vault-Namespace on every request. */
  namespace?: string;
  /** Mount path of the KV secrets engine. Default `secret`. */
  path?: string;
  /** KV engine version. Default `v2`. */
  version?: 'v1' | 'v2';
  /** Exactly one of its three fields (CEL). */
  auth: VaultAuthSpec;
  tls?: VaultTlsSpec;
  /** Request budget shared by every ManagedSecret using the store. Default 10. */
  requestsPerSecond?: number;
  /** Values in the store (and inline `data[].ciphertext`) that are secretsync transit ciphertexts are decrypted by Vault's transit engine. */
  decrypt?: { transit: VaultTransitSpec };
  /**
   * Path prefixes (inside Vault, e.g. `pki/issue/`, `database/creds/`) that ManagedSecrets may issue
   * from with `dataFrom[].certificate` / `dataFrom[].dynamic`. On a ClusterSecretStore absent means
   * none (a tenant must not drive the cluster store's token to arbitrary paths); on a SecretStore absent
   * means any (its own identity bounds it).
   */
  issuePaths?: string[];
}

/** Kubernetes auth: a token minted for this ServiceAccount (TokenRequest) is exchanged at auth/<mountPath>/login for `role`. */
export interface VaultKubernetesAuth {
  /** Default `kubernetes`. */
  mountPath?: string;
  role: string;
  serviceAccountRef: {
    name: string;
    /** ClusterSecretStore only: a SecretStore names ServiceAccounts of its own namespace. */
    namespace?: string;
    /** Token audiences. Default: none given (the API server's default audience). */
    audiences?: string[];
  };
}

/** AppRole: role id (inline or from a Secret) and secret id from a Secret. */
export interface VaultAppRoleAuth {
  /** Default `approle`. */
  mountPath?: string;
  roleId?: string;
  roleIdSecretRef?: SecretKeyRef;
  secretIdSecretRef: SecretKeyRef;
}

/** How the operator logs in to Vault: exactly one field. */
export interface VaultAuthSpec {
  kubernetes?: VaultKubernetesAuth;
  appRole?: VaultAppRoleAuth;
  /** A Vault token read from a Secret. */
  tokenSecretRef?: SecretKeyRef;
}

export interface VaultTlsSpec {
  /** CA bundle (PEM) that signs Vault's certificate, from a Secret or a ConfigMap. */
  caProvider?: {
    type: 'Secret' | 'ConfigMap';
    name: string;
    key: string;
    namespace?: string; /* ClusterSecretStore only */
  };
  /** Client certificate for TLS client auth: a kubernetes.io/tls Secret (tls.crt, tls.key). */
  clientCertSecretRef?: { name: string; namespace?: string };
  /** Server name checked in Vault's certificate (SNI), when it differs from the host in `server`. */
  serverName?: string;
}

export interface VaultTransitSpec {
  /** Mount path of the transit engine. Default `transit`. */
  mount?: string;
  /** The transit key (created with derived=true, so a context is required). */
  key: string;
}

/** How the operator authenticates to IBM Cloud IAM. Absent: the operator's own API key (IBMCLOUD_API_KEY), ClusterSecretStores only. */
export interface IbmAuthSpec {
  /** An IAM API key (of a service ID) in a Secret. */
  apiKeySecretRef?: SecretKeyRef;
  /** A trusted profile: a ServiceAccount token (TokenRequest) exchanged at IAM as a compute-resource token. */
  trustedProfile?: IbmTrustedProfileAuth;
}

export interface IbmTrustedProfileAuth {
  /** The profile's id (`Profile-…`); or profileName. */
  profileId?: string;
  profileName?: string;
  /** The ServiceAccount whose token IAM trusts for this profile. */
  serviceAccountRef: AwsServiceAccountAuth;
}

/** One IBM Cloud Secrets Manager instance: a service URL, or an instance id and region. */
export interface IbmInstanceSpec {
  /** `https://<instance id>.<region>.secrets-manager.appdomain.cloud` (or its `.private.` form). */
  serviceUrl?: string;
  /** With region: the instance. With serviceUrl: only names the instance for IBM Cloud Event Notifications. */
  instanceId?: string;
  /** With instanceId: where the instance is. With serviceUrl: names the instance in status and metrics. */
  region?: string;
  /** With instanceId: the public (default) or private endpoint. */
  endpointType?: 'public' | 'private';
}

export interface IbmSecretsManagerProviderSpec extends IbmInstanceSpec {
  /** IAM's base URL. Default `https://iam.cloud.ibm.com` (`https://private.iam.cloud.ibm.com` with endpointType private). */
  iamEndpoint?: string;
  auth?: IbmAuthSpec;
  /** The store's request budget. Default 10 (IBM advises staying below 20 requests per second per instance). */
  requestsPerSecond?: number;
  /** Secondary instances (another region) that serve reads while the primary is unavailable. */
  failover?: IbmInstanceSpec[];
  circuitBreaker?: CircuitBreakerSpec;
}

/** Exactly one provider block is set (CEL enforces it). New providers add a field here. */
export interface ProviderSpec {
  local?: LocalProviderSpec;
  awsKms?: AwsKmsProviderSpec;
  awsSecretsManager?: AwsSecretsManagerProviderSpec;
  awsParameterStore?: AwsParameterStoreProviderSpec;
  vault?: VaultProviderSpec;
  ibmSecretsManager?: IbmSecretsManagerProviderSpec;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

/** A ManagedSecret's namespace may use a ClusterSecretStore when any condition matches it. */
export interface ClusterStoreCondition {
  namespaces?: string[];
  namespaceSelector?: LabelSelector;
}

export interface SecretStoreSpec {
  provider: ProviderSpec;
}

export interface ClusterSecretStoreSpec extends SecretStoreSpec {
  /** Empty or absent: every namespace may use the store. */
  conditions?: ClusterStoreCondition[];
}

export interface StoreStatus {
  conditions?: Condition[];
  observedGeneration?: number;
  /** With `failover`: the region that answered the store's latest request. */
  activeRegion?: string;
  /** With `failover` listing several endpoints in `activeRegion`: the host of the one that answered. */
  activeEndpoint?: string;
}

export interface SecretStore {
  apiVersion: typeof API_VERSION;
  kind: 'SecretStore';
  metadata: ObjectMeta;
  spec: SecretStoreSpec;
  status?: StoreStatus;
}

export interface ClusterSecretStore {
  apiVersion: typeof API_VERSION;
  kind: 'ClusterSecretStore';
  metadata: ObjectMeta;
  spec: ClusterSecretStoreSpec;
  status?: StoreStatus;
}

export type AnyStore = SecretStore | ClusterSecretStore;

export interface RemoteRef {
  key: string;
  property?: string;
  version?: string;
}

export interface DataItem {
  secretKey: string;
  /** Where the value lives in the store. Exactly one of remoteRef and ciphertext. */
  remoteRef?: RemoteRef;
  /** A ciphertext made by `secretsync encrypt`, safe to commit; decrypted with the store's KMS (or, `--transit`, its Vault transit key). */
  ciphertext?: string;
}

/** Where a ciphertext may be used; part of its header and of the KMS encryption context. */
export type CiphertextScope = 'strict' | 'namespace' | 'cluster';

export interface FindSpec {
  /** Entries whose name starts with this prefix. */
  prefix?: string;
  /** Entries whose name matches this regular expression. */
  nameRegexp?: string;
  /** Secrets Manager: only secrets carrying all of these tags. */
  tags?: Record<string, string>;
  /** IBM Cloud Secrets Manager: only secrets carrying all of these labels. */
  labels?: string[];
  /** IBM Cloud Secrets Manager: only secrets of this secret group (its name or id). */
  secretGroup?: string;
}

/** A certificate issued by the store (Vault: a PKI role), written as `tls.crt`, `tls.key` and `ca.crt`. */
export interface CertificateSource {
  /** Where the store issues, e.g. `pki/issue/web`; must be inside the store's `issuePaths`. */
  path: string;
  commonName: string;
  /** DNS (or email) subject alternative names. */
  altNames?: string[];
  /** IP subject alternative names. */
  ipSans?: string[];
  /** Go-style duration; absent: the role's default. */
  ttl?: string;
  /** Re-issued when this much of its lifetime (from issuance to expiry) has passed. Default 66. */
  renewAtPercent?: number;
}

/** A dynamic secret (database credentials, cloud keys): the response's data fields become Secret keys. */
export interface DynamicSource {
  /** Where the store issues, e.g. `database/creds/app`; must be inside the store's `issuePaths`. */
  path: string;
  /** Default GET. */
  method?: 'GET' | 'POST';
  /** Query parameters (GET) or body fields (POST). */
  parameters?: Record<string, string>;
  /** The lease is renewed (or the secret re-issued) when this much of its lifetime has passed. Default 66. */
  renewAtPercent?: number;
  /** Revoke (default): the lease is revoked when the ManagedSecret is deleted; Orphan: left to expire. */
  onDelete?: 'Revoke' | 'Orphan';
}

export interface DataFromItem {
  extract?: { key: string; version?: string };
  find?: FindSpec;
  certificate?: CertificateSource;
  dynamic?: DynamicSource;
}

/** What was issued for one `dataFrom` source, without any value. */
export interface IssuedStatus {
  /** `dataFrom[<index>]`. */
  source: string;
  /** The backend's lease id (dynamic secrets with a lease). */
  leaseId?: string;
  /** Certificates: the serial number. */
  serialNumber?: string;
  /** The Secret keys the source wrote (names only). */
  keys?: string[];
  issuedAt: string;
  /** When the lease or certificate ends; absent: no expiry (re-read at each refresh). */
  expiresAt?: string;
  /** When it is renewed or re-issued. */
  renewAt?: string;
  /** Whether the lease can be renewed. */
  renewable?: boolean;
  /** The lease's lifetime when issued: the extension asked for at each renewal. */
  leaseSeconds?: number;
  /** SHA-256 of the source's spec: a change re-issues. */
  specHash: string;
}

export type CreationPolicy = 'Owner' | 'Orphan' | 'Merge' | 'None';
export type DeletionPolicy = 'Retain' | 'Delete';

export interface TargetTemplate {
  /** Secret key → mustache template over the fetched values (logic-less, no code). */
  data: Record<string, string>;
  /** Replace: only the rendered keys; Merge: fetched keys plus rendered ones. Default Replace. */
  mergePolicy?: 'Replace' | 'Merge';
}

export interface TargetSpec {
  name?: string;
  type?: string;
  creationPolicy?: CreationPolicy;
  deletionPolicy?: DeletionPolicy;
  immutable?: boolean;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  template?: TargetTemplate;
}

export interface StoreRef {
  kind?: 'SecretStore' | 'ClusterSecretStore';
  name: string;
}

/** Character classes a generated password draws from. */
export type PasswordClass = 'lowercase' | 'uppercase' | 'digits' | 'symbols';

export interface PasswordGenerator {
  /** Characters in the password. Default 32. */
  length?: number;
  /** Classes to draw from. Default all four. */
  classes?: PasswordClass[];
  /** At least this many characters of a class (the class must be among `classes`). */
  minimum?: Partial<Record<PasswordClass, number>>;
  /** Characters never used (e.g. look-alikes `0O1lI`). */
  exclude?: string;
}

export interface RandomBytesGenerator {
  /** Bytes of randomness. Default 32. */
  length?: number;
  /** How the bytes are written. Default base64. */
  encoding?: 'base64' | 'hex';
}

/** A generator without parameters. */
export type EmptyGenerator = Record<string, never>;

export type RsaBits = 2048 | 3072 | 4096;
export type EcdsaCurve = 'P-256' | 'P-384' | 'P-521';

/** Exactly one generator is set (CEL enforces it). Key pairs write the PEM properties `privateKey` and `publicKey`. */
export interface GeneratorSpec {
  password?: PasswordGenerator;
  randomBytes?: RandomBytesGenerator;
  uuid?: EmptyGenerator;
  rsa?: { bits?: RsaBits };
  ecdsa?: { curve?: EcdsaCurve };
  ed25519?: EmptyGenerator;
}

/** Where a rotation writes the new value: the store entry, and one property of it (not with key pairs). */
export interface RotationRemoteRef {
  key: string;
  property?: string;
}

export interface RotationSpec {
  /** Cron (5 fields, or @daily and friends). Exactly one of schedule and interval. */
  schedule?: string;
  /** IANA time zone of `schedule`. Default UTC. */
  timeZone?: string;
  /** Go-style duration between rotations. Exactly one of schedule and interval. */
  interval?: string;
  generator: GeneratorSpec;
  remoteRef: RotationRemoteRef;
  /** Versions the store keeps (local store; Secrets Manager and Parameter Store keep their own). Default 5. */
  keepVersions?: number;
}

export type WorkloadKind = 'Deployment' | 'StatefulSet' | 'DaemonSet';

export interface RolloutTarget {
  kind: WorkloadKind;
  /** Exactly one of name and selector. */
  name?: string;
  selector?: LabelSelector;
}

export interface RolloutRestartSpec {
  targets?: RolloutTarget[];
  /** Also restart workloads in the namespace whose pod spec references the Secret. */
  auto?: boolean;
  /** Changes within this window cause one restart. Default `10s`. */
  debounce?: string;
  /** More data changes than this within an hour stop restarts (flapping). Default 5. */
  maxChangesPerHour?: number;
}

export interface ManagedSecretSpec {
  storeRef: StoreRef;
  data?: DataItem[];
  dataFrom?: DataFromItem[];
  target?: TargetSpec;
  /** Go-style duration (`1h`, `15m`, `30s`); `0` syncs once. Default `1h`. */
  refreshInterval?: string;
  /** Cron (5 fields, or @hourly and friends); when set, refreshes follow it instead of the interval. */
  refreshSchedule?: string;
  /** Generate new values on a schedule and write them to the store. */
  rotation?: RotationSpec;
  /** Workloads restarted when the Secret's data changes. */
  rolloutRestart?: RolloutRestartSpec;
}

/** A rotation that has started and not yet finished: resumed with the same token after a crash. */
export interface RotationInProgress {
  /** The due time (or manual request) this rotation serves. */
  dueTime: string;
  /** Idempotency token for the backend write (a UUID; Secrets Manager's ClientRequestToken). */
  requestToken: string;
  startedAt: string;
}

/**
 * A pending rollout restart, durable in status: whoever holds the ManagedSecret
 * when it is due carries it out (a shard move or a restart must not drop it).
 */
export interface RolloutRestartStatus {
  /** The syncedVersion the workloads are to be restarted for. */
  pendingVersion: string;
  /** When the restart is due (RFC 3339). */
  notBefore: string;
}

export interface ManagedSecretStatus {
  conditions?: Condition[];
  observedGeneration?: number;
  /** When the Secret was last written, or Ready last changed. */
  lastSyncTime?: string;
  /** When a sync last succeeded (written at least hourly while syncs succeed without change). */
  lastSuccessfulSyncTime?: string;
  secretName?: string;
  /** Keyed HMAC-SHA256 of the written data (never a plain hash of it). */
  syncedVersion?: string;
  lastRotationTime?: string;
  nextRotationTime?: string;
  /** The store's version id of the value the last rotation wrote. */
  rotationVersion?: string;
  rotationInProgress?: RotationInProgress;
  /** The value of the rotate-now annotation last acted on. */
  handledRotateNow?: string;
  /** A rollout restart asked for by a data change and not carried out yet (see RolloutRestartStatus). */
  rolloutRestart?: RolloutRestartStatus;
  /** With a store that has `failover`: the region that served the latest successful sync. */
  region?: string;
  /** With a store whose `failover` lists several endpoints in `region`: the host of the one that served. */
  endpoint?: string;
  /** Certificates and dynamic secrets issued for `dataFrom[].certificate` / `.dynamic` (no values). */
  issued?: IssuedStatus[];
}

export interface ManagedSecret {
  apiVersion: typeof API_VERSION;
  kind: 'ManagedSecret';
  metadata: ObjectMeta;
  spec: ManagedSecretSpec;
  status?: ManagedSecretStatus;
}

/**
 * Secret types under kubernetes.io/ a ManagedSecret may write: they only say
 * which keys the data holds. Every other kubernetes.io or k8s.io type (such as
 * kubernetes.io/service-account-token, bootstrap.kubernetes.io/token) makes the
 * cluster act on the Secret and is refused.
 */
export const ALLOWED_KUBERNETES_SECRET_TYPES: readonly string[] = [
  'kubernetes.io/tls',
  'kubernetes.io/dockerconfigjson',
  'kubernetes.io/dockercfg',
  'kubernetes.io/basic-auth',
  'kubernetes.io/ssh-auth',
];

/** Well-known annotations and labels. */
export const ANNOTATION_FORCE_SYNC = 'secretsync.io/force-sync';
export const ANNOTATION_MANAGED_SECRET = 'secretsync.io/managed-secret';
export const ANNOTATION_DATA_HMAC = 'secretsync.io/data-hmac';
export const ANNOTATION_MANAGED_KEYS = 'secretsync.io/managed-keys';
/**
 * Set by a Secret's owner on an existing Secret: the name of the one ManagedSecret
 * (same namespace) allowed to write into it with creationPolicy Merge.
 */
export const ANNOTATION_MERGE_FROM = 'secretsync.io/merge-from';
export const ANNOTATION_ROTATE_NOW = 'secretsync.io/rotate-now';
export const ANNOTATION_RESTARTED_AT = 'secretsync.io/restarted-at';
/**
 * On a restarted workload's pod template, beside restarted-at: the ManagedSecrets
 * and data versions (`name=<first 16 hex of syncedVersion>`, comma-separated,
 * newest first, bounded) it was restarted for. A restart finds its own entry
 * there after a crash between the patch and clearing status.rolloutRestart, and
 * is not sent twice.
 */
export const ANNOTATION_RESTARTED_FOR = 'secretsync.io/restarted-for';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'secretsync';

/** Reasons on the Ready condition. */
export const Reasons = {
  Synced: 'Synced',
  StoreNotFound: 'StoreNotFound',
  StoreNotAllowed: 'StoreNotAllowed',
  StoreNotReady: 'StoreNotReady',
  KeyNotFound: 'KeyNotFound',
  ProviderError: 'ProviderError',
  InvalidTemplate: 'InvalidTemplate',
  InvalidSpec: 'InvalidSpec',
  SecretConflict: 'SecretConflict',
  MergeNotAllowed: 'MergeNotAllowed',
  TemplateTooLarge: 'TemplateTooLarge',
  SecretTooLarge: 'SecretTooLarge',
  TooManyKeys: 'TooManyKeys',
  TooManyEntries: 'TooManyEntries',
  ValueTooLarge: 'ValueTooLarge',
  TargetMissing: 'TargetMissing',
  WriteFailed: 'WriteFailed',
  Valid: 'Valid',
  InvalidProviderConfig: 'InvalidProviderConfig',
  DecryptFailed: 'DecryptFailed',
  Rotated: 'Rotated',
  RotationFailed: 'RotationFailed',
  RotationPending: 'RotationPending',
  Restarted: 'Restarted',
  RestartFailed: 'RestartFailed',
  RestartsDisabled: 'RestartsDisabled',
  Flapping: 'Flapping',
  FailedOver: 'FailedOver',
  FailedBack: 'FailedBack',
  IssuePathNotAllowed: 'IssuePathNotAllowed',
  IssueNotSupported: 'IssueNotSupported',
  /** The backend refused to issue (a name the PKI role does not allow, the engine failed to create it). */
  IssueRefused: 'IssueRefused',
  Issued: 'Issued',
  LeaseRevoked: 'LeaseRevoked',
  RevokeFailed: 'RevokeFailed',
  /** Vault answered that it is sealed (transient: it recovers on unseal). */
  VaultSealed: 'VaultSealed',
  /** The backend refused the request for lack of a permission (Vault 403, IBM Cloud 403): nothing is deleted. */
  PermissionDenied: 'PermissionDenied',
  /**
   * The backend did not accept the credentials (IBM Cloud: an instance refused a
   * freshly exchanged IAM token, or IAM refused the API key or trusted profile): nothing is deleted.
   */
  AuthenticationFailed: 'AuthenticationFailed',
  /** The pinned version of an entry does not exist (or was deleted or destroyed). */
  VersionNotFound: 'VersionNotFound',
  /** A Vault store's decrypt.transit key was created without derivation: its ciphertexts would not be bound (transient: a key may be recreated). */
  TransitKeyNotDerived: 'TransitKeyNotDerived',
  /** A Vault store's decrypt.transit key does not exist (transient: it may be created). */
  TransitKeyNotFound: 'TransitKeyNotFound',
} as const;

/** Held on a ManagedSecret with leases to revoke: removed once they are revoked (or given up on). */
export const FINALIZER_REVOKE_LEASES = 'secretsync.io/revoke-leases';

// ---------------------------------------------------------------------------
// ReplicationTarget: copies stores (and optionally ManagedSecrets) to a DR cluster.

/** The Secret, in the operator's namespace, that holds the DR cluster's kubeconfig. */
export interface KubeconfigSecretRef {
  name: string;
  /** Key in the Secret's data. Default `kubeconfig`. */
  key?: string;
}

/** Which ClusterSecretStores to replicate. */
export interface ReplicatedClusterStores {
  /** Empty: every ClusterSecretStore. */
  selector?: LabelSelector;
}

/** Which namespaced objects (SecretStores, ManagedSecrets) to replicate. */
export interface ReplicatedNamespacedObjects {
  /** Empty: every object in the namespaces below. */
  selector?: LabelSelector;
  /** Empty or absent: every namespace the operator watches. */
  namespaces?: string[];
}

/** Provider settings rewritten on the way to the DR cluster; unset fields are left alone. */
export interface AwsOverrides {
  region?: string;
  endpoint?: string;
  roleArn?: string;
}

export interface ReplicationOverrides {
  aws?: AwsOverrides;
}

export interface ReplicationTargetSpec {
  kubeconfigSecretRef: KubeconfigSecretRef;
  /** Absent: no ClusterSecretStores are replicated. */
  clusterStores?: ReplicatedClusterStores;
  /** Absent: no SecretStores are replicated. */
  stores?: ReplicatedNamespacedObjects;
  /** Absent: no ManagedSecrets are replicated. */
  managedSecrets?: ReplicatedNamespacedObjects;
  /** Also copy the Secrets that replicated stores reference for credentials or master keys. Default false. */
  includeCredentials?: boolean;
  overrides?: ReplicationOverrides;
  /** Delete DR copies whose source is gone or no longer selected. Default true. */
  prune?: boolean;
  /** Full resync period (Go-style duration). Default `1m`. */
  interval?: string;
}

export interface ReplicationTargetStatus {
  conditions?: Condition[];
  observedGeneration?: number;
  /** Objects that match the DR cluster's copy after the last pass. */
  objectsInSync?: number;
  /** When the DR cluster was last confirmed to match the primary. */
  lastReplicationTime?: string;
  /** Seconds between lastReplicationTime and the last status write (0 right after a successful pass). */
  lagSeconds?: number;
}

export interface ReplicationTarget {
  apiVersion: typeof API_VERSION;
  kind: 'ReplicationTarget';
  metadata: ObjectMeta;
  spec: ReplicationTargetSpec;
  status?: ReplicationTargetStatus;
}

/** Annotations and labels on the objects replication writes in the DR cluster. */
export const ANNOTATION_SOURCE_CLUSTER = 'secretsync.io/source-cluster';
export const ANNOTATION_SOURCE_UID = 'secretsync.io/source-uid';
export const ANNOTATION_SOURCE_GENERATION = 'secretsync.io/source-generation';
/** A hash of what was applied (objects without secret data only), so unchanged objects are not re-applied. */
export const ANNOTATION_REPLICATION_HASH = 'secretsync.io/replication-hash';
export const LABEL_REPLICATED_BY = 'secretsync.io/replicated-by';
export const LABEL_SOURCE_CLUSTER = 'secretsync.io/source-cluster';

/** Reasons on a ReplicationTarget's Ready condition. */
export const ReplicationReasons = {
  Replicated: 'Replicated',
  InvalidKubeconfig: 'InvalidKubeconfig',
  ClusterUnreachable: 'ClusterUnreachable',
  Unauthorized: 'Unauthorized',
  CRDsMissing: 'CRDsMissing',
  SourceListFailed: 'SourceListFailed',
  ApplyFailed: 'ApplyFailed',
} as const;
