import { isNotFound, KubeApiError, type KubeClient } from '../kube/client.js';
import { ProviderConfigError, type ProviderContext } from '../providers/provider.js';

/**
 * What a provider may ask of the cluster: one key of a Secret (credentials,
 * master keys) and a short-lived ServiceAccount token (per-namespace cloud
 * identity). Missing or forbidden objects are configuration errors a person
 * must fix, so they surface as ProviderConfigError with the object's name.
 */
export function clusterAccess(
  client: KubeClient,
): Pick<ProviderContext, 'readSecretKey' | 'requestServiceAccountToken'> {
  return {
    async readSecretKey(namespace, name, key) {
      let secret: { data?: Record<string, string> };
      try {
        secret = await client.get(`/api/v1/namespaces/${namespace}/secrets/${name}`);
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
