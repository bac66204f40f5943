// Provider contexts and stores for the AWS provider tests: one that reads
// Secrets and mints ServiceAccount tokens in the real test cluster (as the
// operator does, through our own KubeClient), and one over in-memory Secrets
// for tests where the cluster is not the point. Both count backend operations.
import type { KubeConfig } from '@kubernetes/client-node';
import type {
  AwsParameterStoreProviderSpec,
  AwsSecretsManagerProviderSpec,
  ClusterSecretStore,
  SecretStore,
} from '../../../src/api/types.js';
import { clusterAccess } from '../../../src/controller/provider-context.js';
import { KubeClient } from '../../../src/kube/client.js';
import { ProviderConfigError, type ProviderContext, type StorePolicy } from '../../../src/providers/provider.js';
import { sharedMoto } from '../env.js';

export interface CountingContext extends ProviderContext {
  /** Every operation passed to observe, in order. */
  operations: string[];
  /** How many times an operation was observed. */
  count(operation: string): number;
}

function counting(base: Omit<ProviderContext, 'observe'>): CountingContext {
  const operations: string[] = [];
  return {
    ...base,
    operations,
    count: (operation) => operations.filter((o) => o === operation).length,
    observe: (operation, call) => {
      operations.push(operation);
      return call();
    },
  };
}

/** What the test operator allows namespaced stores: the shared moto endpoint, no local directory. */
export function motoPolicy(): StorePolicy {
  return { allowedEndpoints: [sharedMoto().endpoint], localStoreRoot: undefined };
}

/** Secrets held in memory ("namespace/name" → key → value). */
export function memoryContext(
  secrets: Record<string, Record<string, string>>,
  storeNamespace: string | undefined,
  allowOperatorIdentityForNamespacedStores = false,
  policy: StorePolicy = motoPolicy(),
): CountingContext {
  return counting({
    storeNamespace,
    allowOperatorIdentityForNamespacedStores,
    policy,
    requestServiceAccountToken: async () => {
      throw new Error('no ServiceAccounts in a memory context');
    },
    async readSecretKey(namespace, name, key) {
      const value = secrets[`${namespace}/${name}`]?.[key];
      if (value === undefined) throw new ProviderConfigError(`Secret ${namespace}/${name} has no key "${key}"`);
      return Buffer.from(value);
    },
  });
}

/** The operator's context over a real cluster: Secrets and TokenRequests through KubeClient. */
export function clusterContext(
  kc: KubeConfig,
  storeNamespace: string | undefined,
  allowOperatorIdentityForNamespacedStores = false,
): CountingContext & { client: KubeClient; tokens: string[] } {
  const client = new KubeClient(kc);
  const tokens: string[] = [];
  const access = clusterAccess(client);
  const ctx = counting({
    storeNamespace,
    allowOperatorIdentityForNamespacedStores,
    policy: motoPolicy(),
    readSecretKey: access.readSecretKey,
    async requestServiceAccountToken(namespace, name, audiences, expirationSeconds) {
      const token = await access.requestServiceAccountToken(namespace, name, audiences, expirationSeconds);
      tokens.push(token);
      return token;
    },
  });
  return Object.assign(ctx, { client, tokens });
}

type AwsBlock = 'awsSecretsManager' | 'awsParameterStore';
type AwsSpec = AwsSecretsManagerProviderSpec | AwsParameterStoreProviderSpec;

/** moto's region and endpoint, plus whatever the test adds. */
export function motoSpec<T extends AwsSpec>(extra: Partial<T> = {}): T {
  const moto = sharedMoto();
  return { region: moto.region, endpoint: moto.endpoint, ...extra } as T;
}

export function awsClusterStore(block: AwsBlock, spec: AwsSpec, name = 'aws'): ClusterSecretStore {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'ClusterSecretStore',
    metadata: { name },
    spec: { provider: { [block]: spec } },
  };
}

export function awsSecretStore(block: AwsBlock, spec: AwsSpec, namespace: string, name = 'aws'): SecretStore {
  return {
    apiVersion: 'secretsync.io/v1alpha1',
    kind: 'SecretStore',
    metadata: { name, namespace },
    spec: { provider: { [block]: spec } },
  };
}

/** Static moto credentials in a memory Secret `creds/aws`, as a ClusterSecretStore's auth. */
export const motoKeys = {
  secrets: { 'creds/aws': { id: 'testing', secret: 'testing' } },
  auth: {
    secretRef: {
      accessKeyIdSecretRef: { name: 'aws', key: 'id', namespace: 'creds' },
      secretAccessKeySecretRef: { name: 'aws', key: 'secret', namespace: 'creds' },
    },
  },
};
