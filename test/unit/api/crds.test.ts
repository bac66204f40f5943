import { expect } from 'chai';
import { CronExpressionParser } from 'cron-parser';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { buildCrds, CRD_HEADER, crdFileName, renderCrdYaml } from '../../../src/api/crds.js';
import { crdListPath, crdObjects } from '../../../src/api/install.js';
import {
  clusterSecretStoreSchema,
  CRON_PATTERN,
  DURATION_PATTERN,
  ESO_SHORT_NAMES,
  KINDS,
  managedSecretSchema,
  replicationTargetSchema,
  secretStoreSchema,
  type JSONSchemaProps,
} from '../../../src/api/schemas.js';
import {
  API_VERSION,
  type AwsAuthSpec,
  type AwsCommonSpec,
  type AwsEventsSpec,
  type AwsKmsProviderSpec,
  type AwsParameterStoreProviderSpec,
  type IbmAuthSpec,
  type IbmInstanceSpec,
  type IbmSecretsManagerProviderSpec,
  type AwsSecretRefAuth,
  type AwsSecretsManagerProviderSpec,
  type AwsServiceAccountAuth,
  type ClusterSecretStore,
  type ClusterSecretStoreSpec,
  type ClusterStoreCondition,
  type Condition,
  type CreationPolicy,
  type CertificateSource,
  type DataFromItem,
  type DynamicSource,
  type IssuedStatus,
  type DataItem,
  type DeletionPolicy,
  type FindSpec,
  type GeneratorSpec,
  type PasswordClass,
  type PasswordGenerator,
  type RandomBytesGenerator,
  type RolloutRestartSpec,
  type RolloutTarget,
  type RolloutRestartStatus,
  type RotationInProgress,
  type RotationRemoteRef,
  type RotationSpec,
  type EcdsaCurve,
  type WorkloadKind,
  type KmsDecryptSpec,
  type VaultAppRoleAuth,
  type VaultAuthSpec,
  type VaultKubernetesAuth,
  type VaultProviderSpec,
  type VaultTlsSpec,
  type VaultTransitSpec,
  type LabelSelector,
  type LabelSelectorRequirement,
  type LocalEventsSpec,
  type LocalProviderSpec,
  type ManagedSecret,
  type ManagedSecretSpec,
  type ManagedSecretStatus,
  type ProviderSpec,
  type RemoteRef,
  type ReplicationTarget,
  type ReplicationTargetSpec,
  type ReplicationTargetStatus,
  type ReplicatedNamespacedObjects,
  type SecretKeySelector,
  type SecretStore,
  type SecretStoreSpec,
  type SqsEventsSourceSpec,
  type StoreRef,
  type StoreStatus,
  type TargetSpec,
  type TargetTemplate,
} from '../../../src/api/types.js';
import { keysOf, membersOf, pathsSet, requiredKeysOf, schemaAt, validate, walkProperties } from './schema-check.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const read = (...parts: string[]) => readFileSync(join(root, ...parts), 'utf8');

const schemaOf: Record<string, JSONSchemaProps> = {
  SecretStore: secretStoreSchema,
  ClusterSecretStore: clusterSecretStoreSchema,
  ManagedSecret: managedSecretSchema,
  ReplicationTarget: replicationTargetSchema,
};

// Fixtures that set every field the TypeScript types have. Object literals
// typed this way refuse fields the types lack; the schemas must accept every
// field (no unknown ones) and the fixtures must reach every schema field, so
// types and schemas agree field for field.
const condition: Condition = {
  type: 'Ready',
  status: 'True',
  reason: 'Valid',
  message: 'the store answers',
  lastTransitionTime: '2026-01-02T03:04:05Z',
  observedGeneration: 2,
};

// AWS settings that set every field of AwsCommonSpec, with one of the two
// kinds of auth (CEL refuses both at once). `namespace` is for a
// ClusterSecretStore; a SecretStore's refs must not set it.
const scoped = (namespace: string | undefined) => (namespace === undefined ? {} : { namespace });

const secretRefAuth = (namespace?: string): AwsAuthSpec => ({
  secretRef: {
    accessKeyIdSecretRef: { name: 'aws', key: 'access-key-id', ...scoped(namespace) },
    secretAccessKeySecretRef: { name: 'aws', key: 'secret-access-key', ...scoped(namespace) },
    sessionTokenSecretRef: { name: 'aws', key: 'session-token', ...scoped(namespace) },
  },
});

const serviceAccountAuth = (namespace?: string): AwsAuthSpec => ({
  serviceAccountRef: { name: 'app', ...scoped(namespace), audiences: ['sts.amazonaws.com'] },
});

const awsCommon = (auth: AwsAuthSpec): AwsCommonSpec => ({
  region: 'eu-west-1',
  endpoint: 'http://moto:5000',
  auth,
  roleArn: 'arn:aws:iam::123456789012:role/secretsync',
  requestsPerSecond: 5,
  failover: [
    { region: 'eu-central-1', endpoint: 'http://moto-eu-central-1:5000' },
    { region: 'us-east-1' },
    // Another endpoint of the primary's region.
    { endpoint: 'http://moto-second:5000' },
  ],
  circuitBreaker: { failureThreshold: 3, openSeconds: 30 },
});

// KmsDecryptSpec.kms is Partial<AwsCommonSpec>, but the schema has no
// decrypt.kms.requestsPerSecond (a known divergence, pinned in "declare exactly
// the properties of the TypeScript types"), so the fixture leaves it out.
const kmsDecrypt = (auth: AwsAuthSpec): KmsDecryptSpec => ({
  kms: {
    region: 'eu-west-1',
    endpoint: 'http://moto:5000',
    auth,
    roleArn: 'arn:aws:iam::123456789012:role/kms',
    failover: [{ region: 'eu-central-1', endpoint: 'http://moto-eu-central-1:5000' }],
    circuitBreaker: { failureThreshold: 5, openSeconds: 60 },
  },
});

/**
 * One provider spec per block and kind of auth (a store holds exactly one
 * block, and auth exactly one of secretRef and serviceAccountRef), so that
 * together they reach every provider field.
 */
function providerVariants(namespace?: string): ProviderSpec[] {
  const local = (auth: AwsAuthSpec): ProviderSpec => ({
    local: {
      path: '/var/lib/secretsync/store',
      masterKeySecretRef: { name: 'mk', key: 'k', ...scoped(namespace) },
      decrypt: kmsDecrypt(auth),
      events: { watch: true, fallbackRefreshInterval: '30s' },
    },
  });
  const variants: ProviderSpec[] = [];
  for (const [auth, other] of [
    [secretRefAuth(namespace), serviceAccountAuth(namespace)],
    [serviceAccountAuth(namespace), secretRefAuth(namespace)],
  ] as const) {
    const awsKms: AwsKmsProviderSpec = awsCommon(auth);
    const events: AwsEventsSpec = {
      sqs: {
        queueUrl: 'http://moto:5000/123456789012/secretsync-events',
        region: 'eu-west-1',
        endpoint: 'http://moto:5000',
        auth: other,
        roleArn: 'arn:aws:iam::123456789012:role/events',
      },
      fallbackRefreshInterval: '1m',
    };
    const awsSecretsManager: AwsSecretsManagerProviderSpec = {
      ...awsCommon(auth),
      decrypt: kmsDecrypt(other),
      events,
    };
    const awsParameterStore: AwsParameterStoreProviderSpec = {
      ...awsCommon(auth),
      decrypt: kmsDecrypt(other),
      events,
    };
    variants.push(local(auth), { awsKms }, { awsSecretsManager }, { awsParameterStore });
  }
  // Vault: auth is exactly one of three; each variant carries a different one.
  const vaultCommon = (auth: VaultAuthSpec): VaultProviderSpec => ({
    server: 'https://vault.example.com:8200',
    failover: ['https://vault-standby.example.com:8200'],
    circuitBreaker: { failureThreshold: 3, openSeconds: 30 },
    namespace: 'team-a',
    path: 'kv',
    version: 'v1',
    auth,
    tls: {
      caProvider: { type: 'ConfigMap', name: 'vault-ca', key: 'ca.crt', ...scoped(namespace) },
      clientCertSecretRef: { name: 'vault-client', ...scoped(namespace) },
      serverName: 'vault.internal',
    },
    requestsPerSecond: 20,
    decrypt: { transit: { mount: 'transit', key: 'secretsync' } },
    issuePaths: ['pki/issue/', 'database/creds/'],
  });
  variants.push(
    {
      vault: vaultCommon({
        kubernetes: {
          mountPath: 'kubernetes',
          role: 'app',
          serviceAccountRef: { name: 'app', ...scoped(namespace), audiences: ['vault'] },
        },
      }),
    },
    {
      vault: vaultCommon({
        appRole: {
          mountPath: 'approle',
          roleId: 'role-1',
          secretIdSecretRef: { name: 'approle', key: 'secret-id', ...scoped(namespace) },
        },
      }),
    },
    {
      vault: vaultCommon({
        appRole: {
          roleIdSecretRef: { name: 'approle', key: 'role-id', ...scoped(namespace) },
          secretIdSecretRef: { name: 'approle', key: 'secret-id', ...scoped(namespace) },
        },
      }),
    },
    { vault: vaultCommon({ tokenSecretRef: { name: 'vault-token', key: 'token', ...scoped(namespace) } }) },
  );
  variants.push(
    {
      ibmSecretsManager: {
        instanceId: '0b5571f7-21e6-42b7-91c5-3f5ac9793a46',
        region: 'us-south',
        endpointType: 'private',
        iamEndpoint: 'https://private.iam.cloud.ibm.com',
        auth: { apiKeySecretRef: { name: 'ibm', key: 'apikey', ...scoped(namespace) } },
        requestsPerSecond: 5,
        failover: [
          {
            serviceUrl: 'https://0b5571f7-21e6-42b7-91c5-3f5ac9793a47.eu-de.secrets-manager.appdomain.cloud',
            region: 'eu-de',
          },
          { instanceId: '0b5571f7-21e6-42b7-91c5-3f5ac9793a48', region: 'us-east', endpointType: 'public' },
        ],
        circuitBreaker: { failureThreshold: 3, openSeconds: 30 },
      },
    },
    {
      ibmSecretsManager: {
        serviceUrl: 'https://0b5571f7-21e6-42b7-91c5-3f5ac9793a46.us-south.secrets-manager.appdomain.cloud',
        auth: {
          trustedProfile: {
            profileId: 'Profile-8d6ddb39-c8b0-4b44-9e1e-7d3c6e4c1a2b',
            serviceAccountRef: { name: 'app', ...scoped(namespace), audiences: ['iam'] },
          },
        },
      },
    },
    {
      ibmSecretsManager: {
        serviceUrl: 'https://0b5571f7-21e6-42b7-91c5-3f5ac9793a46.us-south.secrets-manager.appdomain.cloud',
        auth: {
          trustedProfile: { profileName: 'secretsync', serviceAccountRef: { name: 'app', ...scoped(namespace) } },
        },
      },
    },
  );
  return variants;
}

const fullSecretStore: SecretStore = {
  apiVersion: API_VERSION,
  kind: 'SecretStore',
  metadata: { name: 'local', namespace: 'app', labels: { a: 'b' } },
  spec: { provider: { local: { path: '/var/lib/secretsync/store', masterKeySecretRef: { name: 'mk', key: 'k' } } } },
  status: {
    conditions: [condition],
    observedGeneration: 2,
    activeRegion: 'eu-west-1',
    activeEndpoint: 'vpce-0a1b.secretsmanager.eu-west-1.vpce.amazonaws.com',
  },
};

const fullClusterSecretStore: ClusterSecretStore = {
  apiVersion: API_VERSION,
  kind: 'ClusterSecretStore',
  metadata: { name: 'shared' },
  spec: {
    provider: {
      local: { path: '/var/lib/secretsync/shared', masterKeySecretRef: { name: 'mk', key: 'k', namespace: 'ops' } },
    },
    conditions: [
      { namespaces: ['team-a'] },
      {
        namespaceSelector: {
          matchLabels: { team: 'b' },
          matchExpressions: [
            { key: 'env', operator: 'In', values: ['prod'] },
            { key: 'legacy', operator: 'DoesNotExist' },
          ],
        },
      },
    ],
  },
  status: {
    conditions: [condition],
    observedGeneration: 1,
    activeRegion: 'eu-central-1',
    activeEndpoint: '127.0.0.1:5001',
  },
};

const fullManagedSecret: ManagedSecret = {
  apiVersion: API_VERSION,
  kind: 'ManagedSecret',
  metadata: { name: 'app-db', namespace: 'app' },
  spec: {
    storeRef: { kind: 'ClusterSecretStore', name: 'shared' },
    data: [
      { secretKey: 'password', remoteRef: { key: 'app/db', property: 'password', version: '3' } },
      { secretKey: 'api-token', ciphertext: 'secretsync:v1:AbC_-9' },
    ],
    dataFrom: [
      { extract: { key: 'app/flags', version: '2' } },
      { find: { prefix: 'app/shared/', tags: { team: 'a' } } },
      { find: { prefix: 'db-', labels: ['env:prod'], secretGroup: 'payments' } },
      { find: { nameRegexp: '^app/.*$' } },
      {
        certificate: {
          path: 'pki/issue/web',
          commonName: 'app.example.com',
          altNames: ['www.example.com'],
          ipSans: ['10.0.0.1'],
          ttl: '720h',
          renewAtPercent: 66,
        },
      },
      {
        dynamic: {
          path: 'database/creds/app',
          method: 'POST',
          parameters: { ttl: '1h' },
          renewAtPercent: 50,
          onDelete: 'Orphan',
        },
      },
    ],
    target: {
      name: 'app-db',
      type: 'Opaque',
      creationPolicy: 'Merge',
      deletionPolicy: 'Delete',
      immutable: false,
      labels: { team: 'a' },
      annotations: { note: 'x' },
      template: { data: { DATABASE_URL: 'postgres://{{ password }}@db/app' }, mergePolicy: 'Merge' },
    },
    refreshInterval: '15m',
    refreshSchedule: '0 * * * *',
    rotation: {
      schedule: '0 3 * * 0',
      timeZone: 'Europe/Paris',
      generator: {
        password: {
          length: 40,
          classes: ['lowercase', 'uppercase', 'digits', 'symbols'],
          minimum: { lowercase: 2, uppercase: 2, digits: 2, symbols: 1 },
          exclude: '0O1lI',
        },
      },
      remoteRef: { key: 'app/db', property: 'password' },
      keepVersions: 5,
    },
    rolloutRestart: {
      targets: [
        { kind: 'Deployment', name: 'api' },
        {
          kind: 'StatefulSet',
          selector: { matchLabels: { app: 'db' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['a'] }] },
        },
      ],
      auto: true,
      debounce: '10s',
      maxChangesPerHour: 5,
    },
  },
  status: {
    conditions: [condition],
    observedGeneration: 3,
    lastSyncTime: '2026-01-02T03:04:05Z',
    lastSuccessfulSyncTime: '2026-01-02T03:04:05Z',
    secretName: 'app-db',
    syncedVersion: 'hmac-sha256:abc',
    lastRotationTime: '2026-01-02T03:04:05Z',
    nextRotationTime: '2026-01-09T03:00:00Z',
    rotationVersion: '7',
    rotationInProgress: {
      dueTime: '2026-01-09T03:00:00Z',
      requestToken: '0b7d3c1e-5f1a-4c59-9d0e-3a2b1c0d9e8f',
      startedAt: '2026-01-09T03:00:01Z',
    },
    handledRotateNow: '2026-01-05T10:00:00Z',
    rolloutRestart: {
      pendingVersion: 'hmac-sha256:0123456789abcdef0123456789abcdef',
      notBefore: '2026-01-09T03:00:11Z',
    },
    region: 'eu-central-1',
    endpoint: 'moto-eu-central-1:5000',
    issued: [
      {
        source: 'dataFrom[4]',
        leaseId: 'database/creds/app/abc',
        serialNumber: '3a:4b',
        keys: ['password', 'username'],
        issuedAt: '2026-01-02T03:04:05Z',
        expiresAt: '2026-01-02T04:04:05Z',
        renewAt: '2026-01-02T03:44:05Z',
        renewable: true,
        leaseSeconds: 3600,
        specHash: 'ab12',
      },
    ],
  },
};

const fullSelector: LabelSelector = {
  matchLabels: { dr: 'yes' },
  matchExpressions: [{ key: 'tier', operator: 'In', values: ['prod'] }],
};

const fullReplicationTarget: ReplicationTarget = {
  apiVersion: API_VERSION,
  kind: 'ReplicationTarget',
  metadata: { name: 'dr-us-west-2' },
  spec: {
    kubeconfigSecretRef: { name: 'dr-cluster', key: 'kubeconfig' },
    clusterStores: { selector: fullSelector },
    stores: { selector: fullSelector, namespaces: ['app'] },
    managedSecrets: { selector: fullSelector, namespaces: ['app', 'billing'] },
    includeCredentials: true,
    overrides: {
      aws: {
        region: 'us-west-2',
        endpoint: 'https://secretsmanager.us-west-2.amazonaws.com',
        roleArn: 'arn:aws:iam::123456789012:role/dr',
      },
    },
    prune: false,
    interval: '30s',
  },
  status: {
    conditions: [condition],
    observedGeneration: 1,
    objectsInSync: 12,
    lastReplicationTime: '2026-01-02T03:04:05Z',
    lagSeconds: 3,
  },
};

/** One generator per ManagedSecret (CEL wants exactly one), so that together they reach every generator field. */
const generatorVariants: GeneratorSpec[] = [
  { randomBytes: { length: 32, encoding: 'hex' } },
  { uuid: {} },
  { rsa: { bits: 2048 } },
  { ecdsa: { curve: 'P-384' } },
  { ed25519: {} },
];
const rotationVariants: ManagedSecret[] = generatorVariants.map((generator) => ({
  ...fullManagedSecret,
  spec: {
    ...fullManagedSecret.spec,
    rotation: { interval: '720h', generator, remoteRef: { key: 'app/keys' } },
  },
}));

const fixtures: [string, (SecretStore | ClusterSecretStore | ManagedSecret | ReplicationTarget)[]][] = [
  [
    'SecretStore',
    [
      fullSecretStore,
      ...providerVariants().map((provider): SecretStore => ({ ...fullSecretStore, spec: { provider } })),
    ],
  ],
  [
    'ClusterSecretStore',
    [
      fullClusterSecretStore,
      ...providerVariants('ops').map((provider): ClusterSecretStore => ({
        ...fullClusterSecretStore,
        spec: { ...fullClusterSecretStore.spec, provider },
      })),
    ],
  ],
  ['ManagedSecret', [fullManagedSecret, ...rotationVariants]],
  ['ReplicationTarget', [fullReplicationTarget]],
];

/**
 * Schema fields a valid fixture cannot set. In a SecretStore's provider, every
 * `namespace` (of masterKeySecretRef, of the AWS credential Secrets, of
 * serviceAccountRef) exists only so that CEL can refuse it with a clear message
 * (pruning would drop it silently); the ClusterSecretStore fixtures cover those
 * fields of SecretKeySelector and AwsServiceAccountAuth.
 */
const notInFixture: Record<string, (path: string) => boolean> = {
  // spec.provider.vault.namespace is a Vault Enterprise namespace, not a Kubernetes one: set in the fixtures.
  SecretStore: (path) =>
    path.startsWith('spec.provider.') && path.endsWith('.namespace') && path !== 'spec.provider.vault.namespace',
};

function schemaPaths(schema: JSONSchemaProps): string[] {
  const paths: string[] = [];
  walkProperties(schema, (path) => paths.push(path));
  return paths;
}

function examples(): { file: string; docs: Record<string, unknown>[] }[] {
  return readdirSync(join(root, 'examples'))
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((file) => {
      const parsed = parseAllDocuments(read('examples', file));
      for (const d of parsed) expect(d.errors, `${file} parses`).to.deep.equal([]);
      return { file, docs: parsed.map((d) => d.toJS() as Record<string, unknown>) };
    });
}

describe('CRDs (src/api)', () => {
  describe('crds/ is generated from the schemas', () => {
    it('every file in crds/ equals freshly rendered output', () => {
      const crds = buildCrds();
      const expected = crds.map(crdFileName).sort();
      expect(readdirSync(join(root, 'crds')).sort(), 'crds/ holds exactly the generated files').to.deep.equal(expected);
      for (const crd of crds) {
        const file = crdFileName(crd);
        expect(read('crds', file) === renderCrdYaml(crd), `crds/${file} is stale: run npm run generate:crds`).to.equal(
          true,
        );
      }
    });

    it('renders YAML that parses back to the same object, under the do-not-edit header', () => {
      for (const crd of buildCrds()) {
        const text = renderCrdYaml(crd);
        expect(text.startsWith(`${CRD_HEADER}\n`)).to.equal(true);
        expect(text).to.contain('Generated by npm run generate:crds from src/api/schemas.ts; do not edit.');
        expect(parseAllDocuments(text).map((d) => d.toJS() as unknown)).to.deep.equal([crd]);
      }
    });

    it('names, scopes, short names, status subresource and printer columns', () => {
      const byKind = new Map(buildCrds().map((c) => [c.spec.names.kind, c]));
      const expectations = [
        ['SecretStore', 'secretstores.secretsync.io', 'Namespaced', 'sstore'],
        ['ClusterSecretStore', 'clustersecretstores.secretsync.io', 'Cluster', 'csstore'],
        ['ManagedSecret', 'managedsecrets.secretsync.io', 'Namespaced', 'ms'],
        ['ReplicationTarget', 'replicationtargets.secretsync.io', 'Cluster', 'rtarget'],
      ] as const;
      for (const [kind, name, scope, shortName] of expectations) {
        const crd = byKind.get(kind);
        expect(crd?.metadata.name).to.equal(name);
        expect(crd?.spec.scope).to.equal(scope);
        expect(crd?.spec.names.shortNames).to.deep.equal([shortName]);
        expect(crd?.spec.versions).to.have.length(1);
        expect(crd?.spec.versions[0]?.name).to.equal('v1alpha1');
        expect(crd?.spec.versions[0]?.subresources).to.deep.equal({ status: {} });
      }
      const columns = (kind: string) =>
        byKind.get(kind)?.spec.versions[0]?.additionalPrinterColumns.map((c) => [c.name, c.type, c.jsonPath]);
      const ready = ['Ready', 'string', '.status.conditions[?(@.type=="Ready")].status'];
      const reason = ['Reason', 'string', '.status.conditions[?(@.type=="Ready")].reason'];
      const age = ['Age', 'date', '.metadata.creationTimestamp'];
      expect(columns('SecretStore')).to.deep.equal([ready, reason, age]);
      expect(columns('ClusterSecretStore')).to.deep.equal([ready, reason, age]);
      expect(columns('ManagedSecret')).to.deep.equal([
        ready,
        reason,
        ['Store', 'string', '.spec.storeRef.name'],
        ['Last Sync', 'date', '.status.lastSyncTime'],
        age,
      ]);
      expect(columns('ReplicationTarget')).to.deep.equal([
        ready,
        reason,
        ['Objects', 'integer', '.status.objectsInSync'],
        ['Lag', 'integer', '.status.lagSeconds'],
        ['Last Replication', 'date', '.status.lastReplicationTime'],
        age,
      ]);
    });

    it("claims no short name of External Secrets Operator's or of a built-in kind, and lists every kind under kubectl get secretsync", () => {
      // ESO's CRDs (v0.9 to v0.18): es, ss, css, ces, ps, cps. Both operators run side by
      // side during a migration; a short name claimed twice makes kubectl pick one of them.
      const eso = ['es', 'ss', 'css', 'ces', 'ps', 'cps'];
      expect(ESO_SHORT_NAMES).to.have.members(eso);
      // kubectl api-resources of a v1.33 cluster: the built-in short names.
      const builtIn = [
        'cm',
        'cs',
        'ds',
        'deploy',
        'ep',
        'ev',
        'hpa',
        'ing',
        'limits',
        'ns',
        'no',
        'pvc',
        'pv',
        'po',
        'pdb',
        'rs',
        'rc',
        'quota',
        'sa',
        'svc',
        'csr',
        'netpol',
        'sc',
        'crd',
        'crds',
        'pc',
        'sts',
        'cj',
      ];
      const ours = buildCrds().flatMap((c) => c.spec.names.shortNames);
      expect(ours).to.have.members(['sstore', 'csstore', 'ms', 'rtarget']);
      expect(ours.filter((n) => eso.includes(n) || builtIn.includes(n))).to.deep.equal([]);
      expect(new Set(ours).size).to.equal(ours.length);
      for (const crd of buildCrds()) expect(crd.spec.names.categories, crd.metadata.name).to.deep.equal(['secretsync']);
    });

    it('crdObjects() returns fresh copies, and crdListPath() where each is listed', () => {
      const a = crdObjects();
      const b = crdObjects();
      expect(a).to.deep.equal(b);
      a[0]?.spec.versions[0]?.schema.openAPIV3Schema.required?.push('changed');
      expect(crdObjects()).to.deep.equal(b);
      expect(a.map(crdListPath)).to.deep.equal([
        '/apis/secretsync.io/v1alpha1/secretstores',
        '/apis/secretsync.io/v1alpha1/clustersecretstores',
        '/apis/secretsync.io/v1alpha1/managedsecrets',
        '/apis/secretsync.io/v1alpha1/replicationtargets',
      ]);
    });
  });

  describe('the schemas', () => {
    it('give every property a description (what kubectl explain shows)', () => {
      const missing: string[] = [];
      for (const def of KINDS) {
        walkProperties(def.schema, (path, s) => {
          // The API server owns metadata's schema and refuses a description on it.
          if (path !== 'metadata' && !(s.description && s.description.trim().length > 10)) {
            missing.push(`${def.kind} ${path}`);
          }
        });
        expect(def.schema.description, `${def.kind} root`).to.be.a('string');
      }
      expect(missing, 'properties without a description').to.deep.equal([]);
    });

    it('have exactly the agreed defaults', () => {
      const defaults = (schema: JSONSchemaProps) => {
        const out: Record<string, unknown> = {};
        walkProperties(schema, (path, s) => {
          if (s.default !== undefined) out[path] = s.default;
        });
        return out;
      };
      const storeDefaults = {
        'spec.provider.local.masterKeySecretRef.key': 'master-key',
        'spec.provider.awsKms.requestsPerSecond': 10,
        'spec.provider.awsSecretsManager.requestsPerSecond': 10,
        'spec.provider.awsParameterStore.requestsPerSecond': 10,
        'spec.provider.ibmSecretsManager.requestsPerSecond': 10,
      };
      expect(defaults(secretStoreSchema)).to.deep.equal(storeDefaults);
      expect(defaults(clusterSecretStoreSchema)).to.deep.equal(storeDefaults);
      expect(defaults(managedSecretSchema)).to.deep.equal({
        'spec.storeRef.kind': 'SecretStore',
        'spec.target.creationPolicy': 'Owner',
        'spec.target.deletionPolicy': 'Retain',
        'spec.target.template.mergePolicy': 'Replace',
        'spec.refreshInterval': '1h',
        'spec.rotation.generator.password.length': 32,
        'spec.rotation.generator.password.classes': ['lowercase', 'uppercase', 'digits', 'symbols'],
        'spec.rotation.generator.randomBytes.length': 32,
        'spec.rotation.generator.randomBytes.encoding': 'base64',
        'spec.rotation.generator.rsa.bits': 3072,
        'spec.rotation.generator.ecdsa.curve': 'P-256',
        'spec.rolloutRestart.debounce': '10s',
        'spec.rolloutRestart.maxChangesPerHour': 5,
      });
      expect(defaults(replicationTargetSchema)).to.deep.equal({
        'spec.kubeconfigSecretRef.key': 'kubeconfig',
        'spec.includeCredentials': false,
        'spec.prune': true,
        'spec.interval': '1m',
      });
    });

    it('bound every list that holds or encloses a CEL rule, and every string a rule reads (CEL cost)', () => {
      for (const def of KINDS) {
        walkProperties(def.schema, (path, s) => {
          if (s.type === 'array' && JSON.stringify(s).includes('x-kubernetes-validations')) {
            expect(s.maxItems, `${def.kind} ${path} maxItems`).to.be.a('number');
          }
        });
      }
      const bounded = [
        'spec.data[].secretKey',
        'spec.refreshInterval',
        'spec.refreshSchedule',
        'spec.data',
        'spec.dataFrom',
        'spec.rotation.schedule',
        'spec.rotation.interval',
        'spec.rotation.generator.password.classes',
        'spec.rolloutRestart.targets',
        'spec.rolloutRestart.debounce',
      ];
      for (const path of bounded) {
        const s = schemaAt(managedSecretSchema, path);
        expect(s.maxLength ?? s.maxItems, path).to.be.a('number');
      }
      expect(schemaAt(managedSecretSchema, 'spec.target.template.data').maxProperties).to.be.a('number');
    });

    it('carry the CEL rules, each with a message', () => {
      const rules: Record<string, string[]> = {};
      for (const def of KINDS) {
        const list: string[] = [];
        const collect = (path: string, s: JSONSchemaProps) => {
          for (const r of s['x-kubernetes-validations'] ?? []) {
            expect(r.message.length, `${def.kind} ${path}: ${r.rule}`).to.be.greaterThan(10);
            list.push(`${path}: ${r.message}`);
          }
        };
        walkProperties(def.schema, (path, s) => {
          collect(path, s);
          if (s.items) collect(`${path}[]`, s.items);
        });
        rules[def.kind] = list;
      }
      // The rules every AWS auth block carries, wherever it sits, for each kind of store.
      const authRules = (auth: string, scope: 'Namespaced' | 'Cluster') => [
        `${auth}: auth sets at most one of secretRef or serviceAccountRef`,
        ...['accessKeyIdSecretRef', 'secretAccessKeySecretRef', 'sessionTokenSecretRef'].map((ref) =>
          scope === 'Namespaced'
            ? `${auth}.secretRef.${ref}: a SecretStore reads Secrets from its own namespace: remove namespace (or use a ClusterSecretStore)`
            : `${auth}.secretRef.${ref}: a ClusterSecretStore must set the namespace of the Secret`,
        ),
        scope === 'Namespaced'
          ? `${auth}.serviceAccountRef: a SecretStore may only use ServiceAccounts of its own namespace: remove serviceAccountRef.namespace`
          : `${auth}.serviceAccountRef: a ClusterSecretStore must set serviceAccountRef.namespace`,
      ];
      const needsRole = (block: string) =>
        `spec.provider.${block}: auth.serviceAccountRef needs roleArn: the role its token is exchanged for`;
      // decrypt.kms may carry its own auth, and then its own roleArn.
      const kmsNeedsRole = (block: string) => needsRole(`${block}.decrypt.kms`);
      // Regional failover: each entry's (region, endpoint) differs from the primary's and from the others'.
      const notPrimary = (path: string, what = 'a failover entry') =>
        `${path}: ${what} must differ from the primary by region or endpoint (an entry without region is in the primary's region; without endpoint, on the region's AWS endpoint)`;
      const twice = (path: string, what = 'failover') =>
        `${path}: ${what} lists the same region and endpoint twice: each entry must differ from the others by region or endpoint`;
      const entry = (path: string) => `${path}.failover[]: a failover entry needs a region, an endpoint, or both`;
      const fallback = (block: string) =>
        `spec.provider.${block}.events.fallbackRefreshInterval: events.fallbackRefreshInterval must be a duration of at least 1s, such as 30s or 1m`;
      const vaultRules = (scope: 'Namespaced' | 'Cluster') => {
        const ns = (path: string, plural: string, one: string) =>
          scope === 'Namespaced'
            ? `spec.provider.vault.${path}: a SecretStore may only use ${plural} of its own namespace: remove namespace (or use a ClusterSecretStore)`
            : `spec.provider.vault.${path}: a ClusterSecretStore must set the namespace of the ${one}`;
        const secretRef = (path: string) =>
          scope === 'Namespaced'
            ? `spec.provider.vault.${path}: a SecretStore reads Secrets from its own namespace: remove namespace (or use a ClusterSecretStore)`
            : `spec.provider.vault.${path}: a ClusterSecretStore must set the namespace of the Secret`;
        return [
          'spec.provider.vault: a failover address must differ from server',
          'spec.provider.vault.auth: auth sets exactly one of kubernetes, appRole or tokenSecretRef',
          ns('auth.kubernetes.serviceAccountRef', 'ServiceAccounts', 'ServiceAccount'),
          'spec.provider.vault.auth.appRole: appRole sets exactly one of roleId and roleIdSecretRef',
          secretRef('auth.appRole.roleIdSecretRef'),
          secretRef('auth.appRole.secretIdSecretRef'),
          secretRef('auth.tokenSecretRef'),
          ns('tls.caProvider', 'Secrets and ConfigMaps', 'Secret or ConfigMap'),
          ns('tls.clientCertSecretRef', 'Secrets', 'Secret'),
        ];
      };
      const ibmRules = (scope: 'Namespaced' | 'Cluster') => {
        const ibm = 'spec.provider.ibmSecretsManager';
        const instance = 'set serviceUrl, or instanceId and region';
        return [
          `${ibm}: ${instance}`,
          `${ibm}.auth: auth sets at most one of apiKeySecretRef or trustedProfile`,
          scope === 'Namespaced'
            ? `${ibm}.auth.apiKeySecretRef: a SecretStore reads Secrets from its own namespace: remove namespace (or use a ClusterSecretStore)`
            : `${ibm}.auth.apiKeySecretRef: a ClusterSecretStore must set the namespace of the Secret`,
          `${ibm}.auth.trustedProfile: set exactly one of profileId or profileName`,
          scope === 'Namespaced'
            ? `${ibm}.auth.trustedProfile.serviceAccountRef: a SecretStore may only use ServiceAccounts of its own namespace: remove serviceAccountRef.namespace`
            : `${ibm}.auth.trustedProfile.serviceAccountRef: a ClusterSecretStore must set serviceAccountRef.namespace`,
          `${ibm}.failover[]: ${instance}`,
        ];
      };
      const providerRules = (scope: 'Namespaced' | 'Cluster') => [
        'spec.provider: provider must set exactly one provider block (one of: local, awsKms, awsSecretsManager, awsParameterStore, vault, ibmSecretsManager)',
        scope === 'Namespaced'
          ? 'spec.provider.local.masterKeySecretRef: a SecretStore reads its master key from its own namespace: remove masterKeySecretRef.namespace (or use a ClusterSecretStore)'
          : 'spec.provider.local.masterKeySecretRef: a ClusterSecretStore must set masterKeySecretRef.namespace, the namespace of the Secret that holds the master key',
        kmsNeedsRole('local'),
        notPrimary('spec.provider.local.decrypt.kms'),
        twice('spec.provider.local.decrypt.kms'),
        ...authRules('spec.provider.local.decrypt.kms.auth', scope),
        entry('spec.provider.local.decrypt.kms'),
        'spec.provider.local.events: events.watch must be true (remove events to poll only)',
        fallback('local'),
        needsRole('awsKms'),
        notPrimary('spec.provider.awsKms'),
        twice('spec.provider.awsKms'),
        ...authRules('spec.provider.awsKms.auth', scope),
        entry('spec.provider.awsKms'),
        ...['awsSecretsManager', 'awsParameterStore'].flatMap((block) => [
          needsRole(block),
          notPrimary(`spec.provider.${block}`),
          twice(`spec.provider.${block}`),
          // decrypt.kms's failover is checked on the block, which knows the region and endpoint kms inherits.
          notPrimary(`spec.provider.${block}`, 'a decrypt.kms failover entry'),
          twice(`spec.provider.${block}`, 'decrypt.kms failover'),
          ...authRules(`spec.provider.${block}.auth`, scope),
          entry(`spec.provider.${block}`),
          kmsNeedsRole(block),
          ...authRules(`spec.provider.${block}.decrypt.kms.auth`, scope),
          entry(`spec.provider.${block}.decrypt.kms`),
          needsRole(`${block}.events.sqs`),
          ...authRules(`spec.provider.${block}.events.sqs.auth`, scope),
          fallback(block),
        ]),
        ...vaultRules(scope),
        ...ibmRules(scope),
      ];
      expect(rules.SecretStore).to.deep.equal(providerRules('Namespaced'));
      expect(rules.ClusterSecretStore).to.deep.equal([
        ...providerRules('Cluster'),
        'spec.conditions[]: a condition must set namespaces, namespaceSelector or both',
        'spec.conditions[].namespaceSelector.matchExpressions[]: values must be non-empty for operators In and NotIn, and empty for Exists and DoesNotExist',
      ]);
      expect(rules.ManagedSecret).to.include.members([
        'spec: a ManagedSecret needs at least one data or dataFrom item',
        'spec.data: data[].secretKey must be unique: two items write the same key of the Secret',
        'spec.data[]: each data item sets exactly one of remoteRef or ciphertext',
        'spec.dataFrom[]: each dataFrom item must set exactly one of extract, find, certificate or dynamic',
        'spec.dataFrom[].certificate.path: an issue path has no . or .. segments',
        'spec.dataFrom[].certificate.ttl: ttl must be a duration such as 24h',
        'spec.dataFrom[].dynamic.path: an issue path has no . or .. segments',
        'spec.dataFrom[].find: find must set exactly one of prefix or nameRegexp',
        'spec.refreshInterval: refreshInterval must be a duration such as 30s, 15m, 1h or 0',
        "spec.refreshSchedule: refreshSchedule must be a cron expression with 5 fields, e.g. '0 * * * *', or @hourly/@daily/@weekly/@monthly",
        'spec.rotation: rotation must set exactly one of schedule or interval',
        'spec.rotation: rotation.timeZone applies only to a schedule',
        'spec.rotation: key pair generators write the properties privateKey and publicKey: remove rotation.remoteRef.property',
        "spec.rotation.schedule: rotation.schedule must be a cron expression with 5 fields, e.g. '0 3 * * 0', or @daily/@weekly/@monthly",
        'spec.rotation.interval: rotation.interval must be a duration of at least 1s, such as 24h or 720h',
        'spec.rotation.generator: generator must set exactly one of password, randomBytes, uuid, rsa, ecdsa, ed25519',
        'spec.rotation.generator.password: password: the minimums per class add up to more than length',
        'spec.rotation.generator.password: password: a minimum is set for a class that is not among classes',
        'spec.rotation.generator.rsa.bits: rsa.bits must be 2048, 3072 or 4096',
        'spec.rolloutRestart.targets[]: a rollout target sets exactly one of name or selector',
        'spec.rolloutRestart.debounce: rolloutRestart.debounce must be a duration such as 10s',
        // Workload selectors share the namespace selector's builder, and with it the values rule.
        'spec.rolloutRestart.targets[].selector.matchExpressions[]: values must be non-empty for operators In and NotIn, and empty for Exists and DoesNotExist',
      ]);
      const selectorRule = (path: string) =>
        `${path}.selector.matchExpressions[]: values must be non-empty for operators In and NotIn, and empty for Exists and DoesNotExist`;
      expect(rules.ReplicationTarget).to.deep.equal([
        'spec: a ReplicationTarget must select something: set clusterStores, stores or managedSecrets',
        selectorRule('spec.clusterStores'),
        selectorRule('spec.stores'),
        selectorRule('spec.managedSecrets'),
        'spec.interval: interval must be a duration of at least 5s, such as 30s or 5m',
      ]);
      expect(replicationTargetSchema['x-kubernetes-validations']?.map((r) => r.rule)).to.deep.equal([
        'size(self.metadata.name) <= 63',
      ]);
      expect(schemaAt(managedSecretSchema, 'spec.rotation.generator')['x-kubernetes-validations']?.[0]?.rule).to.equal(
        '[has(self.password), has(self.randomBytes), has(self.uuid), has(self.rsa), has(self.ecdsa), has(self.ed25519)].exists_one(set, set)',
      );
      const provider = schemaAt(secretStoreSchema, 'spec.provider');
      expect(provider['x-kubernetes-validations']?.[0]?.rule).to.equal(
        '[has(self.local), has(self.awsKms), has(self.awsSecretsManager), has(self.awsParameterStore), has(self.vault), has(self.ibmSecretsManager)].exists_one(set, set)',
      );
    });

    it('accept Go-style durations and 0 for refreshInterval, and nothing else', () => {
      const re = new RegExp(DURATION_PATTERN);
      for (const ok of ['0', '1h', '15m', '30s', '500ms', '1h30m', '1.5h', '2h45m30s'])
        expect(re.test(ok), ok).to.equal(true);
      for (const bad of ['', 'ten minutes', '10', '1d', '-1h', '30S', '1 h', 'h', '0.5']) {
        expect(re.test(bad), bad).to.equal(false);
      }
    });

    it('accept for refreshSchedule what cron-parser (the controller) parses, and refuse garbage', () => {
      // JavaScript has no (?i:…) groups: the same pattern, case-insensitive throughout.
      const re = new RegExp(CRON_PATTERN.replaceAll('(?i:', '(?:'), 'i');
      const parses = (s: string) => {
        try {
          CronExpressionParser.parse(s);
          return true;
        } catch {
          return false;
        }
      };
      const good = ['0 * * * *', '*/15 9-17 * * mon-fri', '0 0 1,15 JAN-JUN ?', '0 0 L * *', '0 0 * * 5#3', '@hourly'];
      for (const s of [...good, '@daily', '@weekly', '@monthly', '@yearly', '@annually']) {
        expect(re.test(s), `pattern accepts ${s}`).to.equal(true);
        expect(parses(s), `cron-parser parses ${s}`).to.equal(true);
      }
      for (const s of ['every monday', '* * *', '* * * * * *', '0 0 15W * *', '@every 5m', '@reboot', ' 0 * * * *']) {
        expect(re.test(s), `pattern refuses ${s}`).to.equal(false);
      }
    });

    it('match the TypeScript types field for field', () => {
      for (const [kind, list] of fixtures) {
        const schema = schemaOf[kind];
        if (!schema) throw new Error(kind);
        const reached = new Set<string>();
        list.forEach((fixture, i) => {
          expect(validate(schema, fixture), `${kind} fixture ${i} against the schema`).to.deep.equal([]);
          pathsSet(schema, fixture, '', reached);
        });
        const skipped = notInFixture[kind] ?? (() => false);
        const declared = schemaPaths(schema).filter((p) => !['apiVersion', 'kind', 'metadata'].includes(p));
        expect(
          declared.filter((p) => !skipped(p) && !reached.has(p)),
          `${kind} schema fields that the TypeScript types lack`,
        ).to.deep.equal([]);
        // A field left out of the fixtures must be one that CEL refuses outright.
        for (const p of declared.filter(skipped)) {
          const parent = schemaAt(schema, p.slice(0, p.lastIndexOf('.')));
          expect(
            parent['x-kubernetes-validations']?.map((r) => r.rule),
            `${kind} ${p} is refused by CEL`,
          ).to.include('!has(self.namespace)');
        }
      }
    });

    it('declare exactly the properties of the TypeScript types', () => {
      const properties = (schema: JSONSchemaProps, path: string) =>
        Object.keys(schemaAt(schema, path).properties ?? {}).sort();
      const selectorKeys = keysOf<SecretKeySelector>()(['name', 'key', 'namespace']);
      const authCases = (schema: JSONSchemaProps, auth: string): [JSONSchemaProps, string, string[]][] => [
        [schema, auth, keysOf<AwsAuthSpec>()(['secretRef', 'serviceAccountRef'])],
        [
          schema,
          `${auth}.secretRef`,
          keysOf<AwsSecretRefAuth>()(['accessKeyIdSecretRef', 'secretAccessKeySecretRef', 'sessionTokenSecretRef']),
        ],
        [schema, `${auth}.secretRef.accessKeyIdSecretRef`, selectorKeys],
        [schema, `${auth}.secretRef.secretAccessKeySecretRef`, selectorKeys],
        [schema, `${auth}.secretRef.sessionTokenSecretRef`, selectorKeys],
        [schema, `${auth}.serviceAccountRef`, keysOf<AwsServiceAccountAuth>()(['name', 'namespace', 'audiences'])],
      ];
      const common = [
        'region',
        'endpoint',
        'auth',
        'roleArn',
        'requestsPerSecond',
        'failover',
        'circuitBreaker',
      ] as const;
      // decrypt.kms has no budget of its own: the type omits requestsPerSecond and so does the schema.
      const kmsKeys = keysOf<KmsDecryptSpec['kms']>()([
        'region',
        'endpoint',
        'auth',
        'roleArn',
        'failover',
        'circuitBreaker',
      ]);
      const cases: [JSONSchemaProps, string, string[]][] = [];
      for (const schema of [secretStoreSchema, clusterSecretStoreSchema]) {
        cases.push(
          [
            schema,
            'spec.provider',
            keysOf<ProviderSpec>()([
              'local',
              'awsKms',
              'awsSecretsManager',
              'awsParameterStore',
              'vault',
              'ibmSecretsManager',
            ]),
          ],
          [
            schema,
            'spec.provider.local',
            keysOf<LocalProviderSpec>()(['path', 'masterKeySecretRef', 'decrypt', 'events']),
          ],
          [schema, 'spec.provider.local.events', keysOf<LocalEventsSpec>()(['watch', 'fallbackRefreshInterval'])],
          [
            schema,
            'spec.provider.vault',
            keysOf<VaultProviderSpec>()([
              'server',
              'failover',
              'circuitBreaker',
              'namespace',
              'path',
              'version',
              'auth',
              'tls',
              'requestsPerSecond',
              'decrypt',
              'issuePaths',
            ]),
          ],
          [
            schema,
            'spec.provider.ibmSecretsManager',
            keysOf<IbmSecretsManagerProviderSpec>()([
              'serviceUrl',
              'instanceId',
              'region',
              'endpointType',
              'iamEndpoint',
              'auth',
              'requestsPerSecond',
              'failover',
              'circuitBreaker',
            ]),
          ],
          [
            schema,
            'spec.provider.ibmSecretsManager.auth',
            keysOf<IbmAuthSpec>()(['apiKeySecretRef', 'trustedProfile']),
          ],
          [
            schema,
            'spec.provider.ibmSecretsManager.failover[]',
            keysOf<IbmInstanceSpec>()(['serviceUrl', 'instanceId', 'region', 'endpointType']),
          ],
          [schema, 'spec.provider.vault.auth', keysOf<VaultAuthSpec>()(['kubernetes', 'appRole', 'tokenSecretRef'])],
          [
            schema,
            'spec.provider.vault.auth.appRole',
            keysOf<VaultAppRoleAuth>()(['mountPath', 'roleId', 'roleIdSecretRef', 'secretIdSecretRef']),
          ],
          [
            schema,
            'spec.provider.vault.auth.kubernetes',
            keysOf<VaultKubernetesAuth>()(['mountPath', 'role', 'serviceAccountRef']),
          ],
          [
            schema,
            'spec.provider.vault.tls',
            keysOf<VaultTlsSpec>()(['caProvider', 'clientCertSecretRef', 'serverName']),
          ],
          [schema, 'spec.provider.vault.decrypt.transit', keysOf<VaultTransitSpec>()(['mount', 'key'])],
          [schema, 'spec.provider.local.masterKeySecretRef', selectorKeys],
          [schema, 'spec.provider.local.decrypt', keysOf<KmsDecryptSpec>()(['kms'])],
          [schema, 'spec.provider.local.decrypt.kms', kmsKeys],
          ...authCases(schema, 'spec.provider.local.decrypt.kms.auth'),
          [schema, 'spec.provider.awsKms', keysOf<AwsKmsProviderSpec>()(common)],
          ...authCases(schema, 'spec.provider.awsKms.auth'),
          [
            schema,
            'spec.provider.awsSecretsManager',
            keysOf<AwsSecretsManagerProviderSpec>()([...common, 'decrypt', 'events']),
          ],
          [
            schema,
            'spec.provider.awsParameterStore',
            keysOf<AwsParameterStoreProviderSpec>()([...common, 'decrypt', 'events']),
          ],
        );
        for (const block of ['awsSecretsManager', 'awsParameterStore']) {
          cases.push(
            [schema, `spec.provider.${block}.decrypt`, keysOf<KmsDecryptSpec>()(['kms'])],
            [schema, `spec.provider.${block}.decrypt.kms`, kmsKeys],
            [schema, `spec.provider.${block}.events`, keysOf<AwsEventsSpec>()(['sqs', 'fallbackRefreshInterval'])],
            [
              schema,
              `spec.provider.${block}.events.sqs`,
              keysOf<SqsEventsSourceSpec>()(['queueUrl', 'region', 'endpoint', 'auth', 'roleArn']),
            ],
            ...authCases(schema, `spec.provider.${block}.events.sqs.auth`),
            ...authCases(schema, `spec.provider.${block}.auth`),
            ...authCases(schema, `spec.provider.${block}.decrypt.kms.auth`),
          );
        }
      }
      cases.push(
        [managedSecretSchema, 'spec.data[]', keysOf<DataItem>()(['secretKey', 'remoteRef', 'ciphertext'])],
        [managedSecretSchema, 'spec.data[].remoteRef', keysOf<RemoteRef>()(['key', 'property', 'version'])],
        [managedSecretSchema, 'spec.dataFrom[]', keysOf<DataFromItem>()(['extract', 'find', 'certificate', 'dynamic'])],
        [
          managedSecretSchema,
          'spec.dataFrom[].certificate',
          keysOf<CertificateSource>()(['path', 'commonName', 'altNames', 'ipSans', 'ttl', 'renewAtPercent']),
        ],
        [
          managedSecretSchema,
          'spec.dataFrom[].dynamic',
          keysOf<DynamicSource>()(['path', 'method', 'parameters', 'renewAtPercent', 'onDelete']),
        ],
        [
          managedSecretSchema,
          'spec.dataFrom[].find',
          keysOf<FindSpec>()(['prefix', 'nameRegexp', 'tags', 'labels', 'secretGroup']),
        ],
        [
          managedSecretSchema,
          'spec.rotation',
          keysOf<RotationSpec>()(['schedule', 'timeZone', 'interval', 'generator', 'remoteRef', 'keepVersions']),
        ],
        [
          managedSecretSchema,
          'spec.rotation.generator',
          keysOf<GeneratorSpec>()(['password', 'randomBytes', 'uuid', 'rsa', 'ecdsa', 'ed25519']),
        ],
        [
          managedSecretSchema,
          'spec.rotation.generator.password',
          keysOf<PasswordGenerator>()(['length', 'classes', 'minimum', 'exclude']),
        ],
        [
          managedSecretSchema,
          'spec.rotation.generator.password.minimum',
          keysOf<NonNullable<PasswordGenerator['minimum']>>()(['lowercase', 'uppercase', 'digits', 'symbols']),
        ],
        [
          managedSecretSchema,
          'spec.rotation.generator.randomBytes',
          keysOf<RandomBytesGenerator>()(['length', 'encoding']),
        ],
        [managedSecretSchema, 'spec.rotation.generator.uuid', []],
        [managedSecretSchema, 'spec.rotation.generator.ed25519', []],
        [managedSecretSchema, 'spec.rotation.generator.rsa', keysOf<NonNullable<GeneratorSpec['rsa']>>()(['bits'])],
        [
          managedSecretSchema,
          'spec.rotation.generator.ecdsa',
          keysOf<NonNullable<GeneratorSpec['ecdsa']>>()(['curve']),
        ],
        [managedSecretSchema, 'spec.rotation.remoteRef', keysOf<RotationRemoteRef>()(['key', 'property'])],
        [
          managedSecretSchema,
          'spec.rolloutRestart',
          keysOf<RolloutRestartSpec>()(['targets', 'auto', 'debounce', 'maxChangesPerHour']),
        ],
        [managedSecretSchema, 'spec.rolloutRestart.targets[]', keysOf<RolloutTarget>()(['kind', 'name', 'selector'])],
        [
          managedSecretSchema,
          'spec.rolloutRestart.targets[].selector',
          keysOf<LabelSelector>()(['matchLabels', 'matchExpressions']),
        ],
        [
          managedSecretSchema,
          'status',
          keysOf<ManagedSecretStatus>()([
            'conditions',
            'observedGeneration',
            'lastSyncTime',
            'lastSuccessfulSyncTime',
            'secretName',
            'syncedVersion',
            'lastRotationTime',
            'nextRotationTime',
            'rotationVersion',
            'rotationInProgress',
            'handledRotateNow',
            'rolloutRestart',
            'region',
            'endpoint',
            'issued',
          ]),
        ],
        [
          managedSecretSchema,
          'status.issued[]',
          keysOf<IssuedStatus>()([
            'source',
            'leaseId',
            'serialNumber',
            'keys',
            'issuedAt',
            'expiresAt',
            'renewAt',
            'renewable',
            'leaseSeconds',
            'specHash',
          ]),
        ],
        [
          managedSecretSchema,
          'status.rotationInProgress',
          keysOf<RotationInProgress>()(['dueTime', 'requestToken', 'startedAt']),
        ],
        [managedSecretSchema, 'status.rolloutRestart', keysOf<RolloutRestartStatus>()(['pendingVersion', 'notBefore'])],
      );
      const namespacedKeys = keysOf<ReplicatedNamespacedObjects>()(['selector', 'namespaces']);
      cases.push(
        [
          replicationTargetSchema,
          'spec',
          keysOf<ReplicationTargetSpec>()([
            'kubeconfigSecretRef',
            'clusterStores',
            'stores',
            'managedSecrets',
            'includeCredentials',
            'overrides',
            'prune',
            'interval',
          ]),
        ],
        [replicationTargetSchema, 'spec.stores', namespacedKeys],
        [replicationTargetSchema, 'spec.managedSecrets', namespacedKeys],
        [
          replicationTargetSchema,
          'spec.overrides.aws',
          keysOf<NonNullable<NonNullable<ReplicationTargetSpec['overrides']>['aws']>>()([
            'region',
            'endpoint',
            'roleArn',
          ]),
        ],
        [
          replicationTargetSchema,
          'status',
          keysOf<ReplicationTargetStatus>()([
            'conditions',
            'observedGeneration',
            'objectsInSync',
            'lastReplicationTime',
            'lagSeconds',
          ]),
        ],
      );
      for (const [schema, path, keys] of cases) expect(properties(schema, path), path).to.deep.equal([...keys].sort());
    });

    it('require exactly the fields the TypeScript types require', () => {
      const required = (schema: JSONSchemaProps, path: string) => [...(schemaAt(schema, path).required ?? [])].sort();
      // KNOWN DIVERGENCE: the AWS credential refs are SecretKeySelectors, whose key is optional (it
      // defaults to master-key for masterKeySecretRef), but the schema requires key on them: there is no
      // sensible default key for an access key id. Pinned here so that either side changing fails the test.
      const credentialSelector = [...requiredKeysOf<SecretKeySelector>()(['name']), 'key'];
      const authRequired = (schema: JSONSchemaProps, auth: string): [JSONSchemaProps, string, string[]][] => [
        [schema, auth, requiredKeysOf<AwsAuthSpec>()([])],
        [
          schema,
          `${auth}.secretRef`,
          requiredKeysOf<AwsSecretRefAuth>()(['accessKeyIdSecretRef', 'secretAccessKeySecretRef']),
        ],
        [schema, `${auth}.secretRef.accessKeyIdSecretRef`, credentialSelector],
        [schema, `${auth}.secretRef.secretAccessKeySecretRef`, credentialSelector],
        [schema, `${auth}.secretRef.sessionTokenSecretRef`, credentialSelector],
        [schema, `${auth}.serviceAccountRef`, requiredKeysOf<AwsServiceAccountAuth>()(['name'])],
      ];
      const awsRequired = (schema: JSONSchemaProps): [JSONSchemaProps, string, string[]][] => [
        [schema, 'spec.provider.local.decrypt', requiredKeysOf<KmsDecryptSpec>()(['kms'])],
        // Stricter than the type on purpose, as LocalProviderSpec.decrypt documents: a local store has no
        // provider block to inherit the region from (Partial<AwsCommonSpec> cannot say so).
        [schema, 'spec.provider.local.decrypt.kms', [...requiredKeysOf<KmsDecryptSpec['kms']>()([]), 'region']],
        ...authRequired(schema, 'spec.provider.local.decrypt.kms.auth'),
        [schema, 'spec.provider.awsKms', requiredKeysOf<AwsKmsProviderSpec>()(['region'])],
        ...authRequired(schema, 'spec.provider.awsKms.auth'),
        [schema, 'spec.provider.awsSecretsManager', requiredKeysOf<AwsSecretsManagerProviderSpec>()(['region'])],
        [schema, 'spec.provider.awsParameterStore', requiredKeysOf<AwsParameterStoreProviderSpec>()(['region'])],
        ...['awsSecretsManager', 'awsParameterStore'].flatMap((block): [JSONSchemaProps, string, string[]][] => [
          [schema, `spec.provider.${block}.decrypt`, requiredKeysOf<KmsDecryptSpec>()(['kms'])],
          // Absent fields, the region too, come from the provider block.
          [schema, `spec.provider.${block}.decrypt.kms`, requiredKeysOf<KmsDecryptSpec['kms']>()([])],
          ...authRequired(schema, `spec.provider.${block}.auth`),
          ...authRequired(schema, `spec.provider.${block}.decrypt.kms.auth`),
        ]),
      ];
      const cases: [JSONSchemaProps, string, string[]][] = [
        [secretStoreSchema, 'spec', requiredKeysOf<SecretStoreSpec>()(['provider'])],
        [clusterSecretStoreSchema, 'spec', requiredKeysOf<ClusterSecretStoreSpec>()(['provider'])],
        [secretStoreSchema, 'spec.provider', requiredKeysOf<ProviderSpec>()([])],
        [secretStoreSchema, 'spec.provider.local', requiredKeysOf<LocalProviderSpec>()(['path', 'masterKeySecretRef'])],
        [secretStoreSchema, 'spec.provider.local.masterKeySecretRef', requiredKeysOf<SecretKeySelector>()(['name'])],
        [
          clusterSecretStoreSchema,
          'spec.provider.local.masterKeySecretRef',
          requiredKeysOf<SecretKeySelector>()(['name']),
        ],
        ...awsRequired(secretStoreSchema),
        ...awsRequired(clusterSecretStoreSchema),
        [clusterSecretStoreSchema, 'spec.conditions[]', requiredKeysOf<ClusterStoreCondition>()([])],
        [clusterSecretStoreSchema, 'spec.conditions[].namespaceSelector', requiredKeysOf<LabelSelector>()([])],
        [
          clusterSecretStoreSchema,
          'spec.conditions[].namespaceSelector.matchExpressions[]',
          requiredKeysOf<LabelSelectorRequirement>()(['key', 'operator']),
        ],
        [secretStoreSchema, 'status', requiredKeysOf<StoreStatus>()([])],
        [
          secretStoreSchema,
          'status.conditions[]',
          requiredKeysOf<Condition>()(['type', 'status', 'reason', 'message', 'lastTransitionTime']),
        ],
        [managedSecretSchema, 'spec', requiredKeysOf<ManagedSecretSpec>()(['storeRef'])],
        [managedSecretSchema, 'spec.storeRef', requiredKeysOf<StoreRef>()(['name'])],
        [managedSecretSchema, 'spec.data[]', requiredKeysOf<DataItem>()(['secretKey'])],
        [managedSecretSchema, 'spec.data[].remoteRef', requiredKeysOf<RemoteRef>()(['key'])],
        [managedSecretSchema, 'spec.dataFrom[]', requiredKeysOf<DataFromItem>()([])],
        [
          managedSecretSchema,
          'spec.dataFrom[].extract',
          requiredKeysOf<NonNullable<DataFromItem['extract']>>()(['key']),
        ],
        [managedSecretSchema, 'spec.dataFrom[].find', requiredKeysOf<FindSpec>()([])],
        [managedSecretSchema, 'spec.target', requiredKeysOf<TargetSpec>()([])],
        [managedSecretSchema, 'spec.target.template', requiredKeysOf<TargetTemplate>()(['data'])],
        [managedSecretSchema, 'status', requiredKeysOf<ManagedSecretStatus>()([])],
        [managedSecretSchema, 'spec.rotation', requiredKeysOf<RotationSpec>()(['generator', 'remoteRef'])],
        [managedSecretSchema, 'spec.rotation.generator', requiredKeysOf<GeneratorSpec>()([])],
        [managedSecretSchema, 'spec.rotation.generator.password', requiredKeysOf<PasswordGenerator>()([])],
        [managedSecretSchema, 'spec.rotation.generator.randomBytes', requiredKeysOf<RandomBytesGenerator>()([])],
        [managedSecretSchema, 'spec.rotation.remoteRef', requiredKeysOf<RotationRemoteRef>()(['key'])],
        [managedSecretSchema, 'spec.rolloutRestart', requiredKeysOf<RolloutRestartSpec>()([])],
        [managedSecretSchema, 'spec.rolloutRestart.targets[]', requiredKeysOf<RolloutTarget>()(['kind'])],
        [
          managedSecretSchema,
          'status.rotationInProgress',
          requiredKeysOf<RotationInProgress>()(['dueTime', 'requestToken', 'startedAt']),
        ],
        [
          managedSecretSchema,
          'status.rolloutRestart',
          requiredKeysOf<RolloutRestartStatus>()(['pendingVersion', 'notBefore']),
        ],
        [
          managedSecretSchema,
          'status.conditions[]',
          requiredKeysOf<Condition>()(['type', 'status', 'reason', 'message', 'lastTransitionTime']),
        ],
        [replicationTargetSchema, 'spec', requiredKeysOf<ReplicationTargetSpec>()(['kubeconfigSecretRef'])],
        [
          replicationTargetSchema,
          'spec.kubeconfigSecretRef',
          requiredKeysOf<ReplicationTargetSpec['kubeconfigSecretRef']>()(['name']),
        ],
        [replicationTargetSchema, 'spec.stores', requiredKeysOf<ReplicatedNamespacedObjects>()([])],
        [replicationTargetSchema, 'status', requiredKeysOf<ReplicationTargetStatus>()([])],
      ];
      for (const [schema, path, keys] of cases) expect(required(schema, path), path).to.deep.equal([...keys].sort());
    });

    it('enumerate exactly the values of the TypeScript unions', () => {
      const enumAt = (schema: JSONSchemaProps, path: string) => schemaAt(schema, path).enum;
      expect(enumAt(managedSecretSchema, 'spec.target.creationPolicy')).to.deep.equal(
        membersOf<CreationPolicy>()(['Owner', 'Orphan', 'Merge', 'None']),
      );
      expect(enumAt(managedSecretSchema, 'spec.target.deletionPolicy')).to.deep.equal(
        membersOf<DeletionPolicy>()(['Retain', 'Delete']),
      );
      expect(enumAt(managedSecretSchema, 'spec.target.template.mergePolicy')).to.deep.equal(
        membersOf<NonNullable<TargetTemplate['mergePolicy']>>()(['Replace', 'Merge']),
      );
      expect(enumAt(managedSecretSchema, 'spec.storeRef.kind')).to.deep.equal(
        membersOf<NonNullable<StoreRef['kind']>>()(['SecretStore', 'ClusterSecretStore']),
      );
      expect(enumAt(managedSecretSchema, 'status.conditions[].status')).to.deep.equal(
        membersOf<Condition['status']>()(['True', 'False', 'Unknown']),
      );
      expect(enumAt(managedSecretSchema, 'spec.rotation.generator.password.classes[]')).to.deep.equal(
        membersOf<PasswordClass>()(['lowercase', 'uppercase', 'digits', 'symbols']),
      );
      expect(enumAt(managedSecretSchema, 'spec.rotation.generator.randomBytes.encoding')).to.deep.equal(
        membersOf<NonNullable<RandomBytesGenerator['encoding']>>()(['base64', 'hex']),
      );
      expect(enumAt(managedSecretSchema, 'spec.rotation.generator.ecdsa.curve')).to.deep.equal(
        membersOf<EcdsaCurve>()(['P-256', 'P-384', 'P-521']),
      );
      expect(enumAt(managedSecretSchema, 'spec.rolloutRestart.targets[].kind')).to.deep.equal(
        membersOf<WorkloadKind>()(['Deployment', 'StatefulSet', 'DaemonSet']),
      );
      expect(
        enumAt(clusterSecretStoreSchema, 'spec.conditions[].namespaceSelector.matchExpressions[].operator'),
      ).to.deep.equal(membersOf<LabelSelectorRequirement['operator']>()(['In', 'NotIn', 'Exists', 'DoesNotExist']));
    });

    it('refuse what the structural checks can see: unknown fields, bad enums, bad keys, missing fields', () => {
      const ms = structuredClone(fullManagedSecret) as unknown as { spec: Record<string, unknown> };
      ms.spec.refreshEvery = '1h';
      ms.spec.target = { creationPolicy: 'Sometimes' };
      ms.spec.data = [{ secretKey: 'not a key', remoteRef: {} }];
      expect(validate(managedSecretSchema, ms)).to.deep.equal([
        'spec.data[0].secretKey: does not match ^[-._a-zA-Z0-9]+$',
        'spec.data[0].remoteRef.key: required',
        'spec.target.creationPolicy: Sometimes is not one of Owner, Orphan, Merge, None',
        'spec.refreshEvery: unknown field (it would be pruned)',
      ]);
    });
  });

  describe('examples/', () => {
    it('holds a SecretStore, a ClusterSecretStore, a ManagedSecret and a ReplicationTarget', () => {
      const kinds = examples().flatMap(({ docs }) => docs.map((d) => d.kind));
      expect(kinds).to.include.members([
        'Secret',
        'SecretStore',
        'ClusterSecretStore',
        'ManagedSecret',
        'ReplicationTarget',
      ]);
      expect(examples().map((e) => e.file)).to.include.members(['local-store.yaml', 'managed-secret.yaml']);
    });

    it('every document parses, has the right apiVersion for its kind and fits the schema', () => {
      for (const { file, docs } of examples()) {
        for (const doc of docs) {
          const where = `examples/${file} ${String(doc.kind)}`;
          const schema = schemaOf[String(doc.kind)];
          if (schema) {
            expect(doc.apiVersion, where).to.equal(API_VERSION);
            expect(validate(schema, doc), where).to.deep.equal([]);
          } else {
            expect(doc.kind, where).to.equal('Secret');
            expect(doc.apiVersion, where).to.equal('v1');
          }
        }
      }
    });

    it('local-store.yaml: a master key Secret and a local SecretStore in team-a’s directory of the store volume', () => {
      const docs = examples().find((e) => e.file === 'local-store.yaml')?.docs ?? [];
      const secret = docs.find((d) => d.kind === 'Secret') as
        { metadata: { name: string }; stringData: Record<string, string> } | undefined;
      const store = docs.find((d) => d.kind === 'SecretStore') as SecretStore | undefined;
      const ref = store?.spec.provider.local?.masterKeySecretRef;
      expect(store?.spec.provider.local?.path).to.equal('/var/lib/secretsync/store/team-a');
      expect(ref?.name).to.equal(secret?.metadata.name);
      expect(ref?.namespace).to.equal(undefined);
      const key = secret?.stringData[ref?.key ?? 'master-key'] ?? '';
      expect(Buffer.from(key, 'base64')).to.have.length(32);
    });

    it('managed-secret.yaml uses data, dataFrom and a template, with the store from local-store.yaml', () => {
      const ms = examples()
        .find((e) => e.file === 'managed-secret.yaml')
        ?.docs.find((d) => d.kind === 'ManagedSecret') as ManagedSecret | undefined;
      expect(ms?.spec.data?.length).to.be.greaterThan(0);
      expect(ms?.spec.dataFrom?.some((d) => d.extract)).to.equal(true);
      expect(ms?.spec.dataFrom?.some((d) => d.find)).to.equal(true);
      expect(Object.keys(ms?.spec.target?.template?.data ?? {})).to.have.length.greaterThan(0);
      expect(ms?.spec.storeRef.name).to.equal('local');
    });
  });
});
