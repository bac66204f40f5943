// Credential caching: temporary credentials are reused until shortly before
// they expire, concurrent callers share one refresh, and a failed refresh
// keeps serving the old credentials while they are still valid.
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@aws-sdk/types';

/** STS credentials are refreshed this long before `expiration` (or at half their lifetime when that is shorter). */
export const REFRESH_BEFORE_EXPIRY_MS = 5 * 60_000;

export interface MemoizeOptions {
  refreshBeforeMs?: number;
  now?: () => number;
}

/**
 * Wraps a credential fetch. Credentials without `expiration` are kept for the
 * life of the provider; others are fetched again once
 * `expiration - min(refreshBeforeMs, lifetime / 2)` has passed.
 */
export function memoizeCredentials(
  fetch: () => Promise<AwsCredentialIdentity>,
  options: MemoizeOptions = {},
): AwsCredentialIdentityProvider {
  const now = options.now ?? Date.now;
  const refreshBefore = options.refreshBeforeMs ?? REFRESH_BEFORE_EXPIRY_MS;
  let current: AwsCredentialIdentity | undefined;
  let refreshAt = 0;
  let pending: Promise<AwsCredentialIdentity> | undefined;

  const refresh = (): Promise<AwsCredentialIdentity> => {
    pending ??= (async () => {
      try {
        const fetchedAt = now();
        const creds = await fetch();
        current = creds;
        if (creds.expiration) {
          const expires = creds.expiration.getTime();
          const margin = Math.min(refreshBefore, Math.max(0, (expires - fetchedAt) / 2));
          refreshAt = expires - margin;
        } else {
          refreshAt = Number.POSITIVE_INFINITY;
        }
        return creds;
      } finally {
        pending = undefined;
      }
    })();
    return pending;
  };

  return async () => {
    if (current && now() < refreshAt) return current;
    try {
      return await refresh();
    } catch (err) {
      // STS hiccup during an early refresh: the old credentials still work for a few minutes.
      if (current?.expiration && now() < current.expiration.getTime()) return current;
      throw err;
    }
  };
}
