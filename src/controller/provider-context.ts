// How the controller builds the ProviderContext a provider's connect gets: the
// cluster access a store may use (its own namespace's Secrets and
// ServiceAccounts), the admin's StorePolicy and timeouts, metrics hooks.
import type { AnyStore } from '../api/types.js';
import { isNotFound, KubeApiError, type KubeClient } from '../kube/client.js';
import {
  ProviderConfigError,
  type ProviderContext,
  type ProviderTimeouts,
  type StorePolicy,
} from '../providers/provider.js';

/** What the controller knows that a store's ProviderContext carries (operator flags and metrics). */
export interface ProviderContextOptions {
  client: KubeClient;
  store: AnyStore;
  /** --allowed-endpoints, --local-store-root. */
  policy: StorePolicy;
  /** --provider-connect-timeout, --provider-request-timeout. */
  timeouts: ProviderTimeouts;
  /** --allow-operator-identity-for-namespaced-stores. */
  allowOperatorIdentityForNamespacedStores: boolean;
  /** Counts and times one backend request (by provider and operation). */
  observe: ProviderContext['observe'];
  /** A store moved to another region or endpoint (metrics, Events). */
  onFailover?: ProviderContext['onFailover'];
  /** The operator's log (event sources: poison messages, degraded and flowing again). */
  log?: ProviderContext['log'];
  /** Counts an event source's messages by outcome (metrics). */
  countEventMessages?: ProviderContext['countEventMessages'];
}

/** The ProviderContext for one store. */
export function providerContext(options: ProviderContextOptions): ProviderContext {
  const { store } = options;
  return {
    ...clusterAccess(options.client),
    storeNamespace: store.kind === 'SecretStore' ? store.metadata.namespace : undefined,
    allowOperatorIdentityForNamespacedStores: options.allowOperatorIdentityForNamespacedStores,
    observe: options.observe,
    policy: options.policy,
    timeouts: options.timeouts,
    ...(options.onFailover ? { onFailover: options.onFailover } : {}),
    ...(options.log ? { log: options.log } : {}),
    ...(options.countEventMessages ? { countEventMessages: options.countEventMessages } : {}),
  };
}

/**
 * What a provider may ask of the cluster: one key of a Secret (credentials,
 * master keys) or of a ConfigMap (a CA bundle) and a short-lived ServiceAccount
 * token (per-namespace cloud identity). Missing or forbidden objects are configuration errors a person
 * must fix, so they surface as ProviderConfigError with the object's name.
 */
export function clusterAccess(
  client: KubeClient,
): Pick<ProviderContext, 'readSecretKey' | 'readConfigMapKey' | 'requestServiceAccountToken'> {
  return {
    async readConfigMapKey(namespace, name, key, opts = {}) {
      let configMap: { data?: Record<string, string> };
      try {
        configMap = await client.request('GET', `/api/v1/namespaces/${namespace}/configmaps/${name}`, {
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
      } catch (err) {
        if (isNotFound(err)) throw new ProviderConfigError(`ConfigMap ${namespace}/${name} not found`);
        if (err instanceof KubeApiError && err.status === 403)
          throw new ProviderConfigError(`not allowed to read ConfigMap ${namespace}/${name}`);
        throw err;
      }
      const value = configMap.data?.[key];
      if (value === undefined) throw new ProviderConfigError(`ConfigMap ${namespace}/${name} has no key "${key}"`);
      return value;
    },
    async readSecretKey(namespace, name, key, opts = {}) {
      let secret: { data?: Record<string, string> };
      try {
        secret = await client.request('GET', `/api/v1/namespaces/${namespace}/secrets/${name}`, {
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
      } catch (err) {
        if (isNotFound(err)) throw new ProviderConfigError(`Secret ${namespace}/${name} not found`);
        if (err instanceof KubeApiError && err.status === 403)
          throw new ProviderConfigError(`not allowed to read Secret ${namespace}/${name}`);
        throw err;
      }
      const value = secret.data?.[key];
      if (value === undefined) throw new ProviderConfigError(`Secret ${namespace}/${name} has no key "${key}"`);
      return Buffer.from(value, 'base64');
    },
    async requestServiceAccountToken(namespace, name, audiences, expirationSeconds) {
      try {
        const res = await client.request<{ status?: { token?: string } }>(
          'POST',
          `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
          {
            body: {
              apiVersion: 'authentication.k8s.io/v1',
              kind: 'TokenRequest',
              spec: { audiences, expirationSeconds },
            },
          },
        );
        if (!res.status?.token)
          throw new ProviderConfigError(`TokenRequest for ServiceAccount ${namespace}/${name} returned no token`);
        return res.status.token;
      } catch (err) {
        if (isNotFound(err)) throw new ProviderConfigError(`ServiceAccount ${namespace}/${name} not found`);
        if (err instanceof KubeApiError && err.status === 403)
          throw new ProviderConfigError(`not allowed to request a token for ServiceAccount ${namespace}/${name}`);
        throw err;
      }
    },
  };
}
