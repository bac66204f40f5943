// The SDK client settings every AWS provider block shares: region, endpoint,
// adaptive retries and, above all, whose credentials a store may use.
//
//   auth.secretRef          static keys from Kubernetes Secrets (then roleArn, if set)
//   auth.serviceAccountRef  a ServiceAccount token exchanged for roleArn (IRSA-style, per namespace)
//   no auth                 the operator's own identity: ClusterSecretStores always, SecretStores only
//                           when the cluster admin allows it (then roleArn, if set)
import { AssumeRoleCommand, AssumeRoleWithWebIdentityCommand, STSClient, type Credentials } from '@aws-sdk/client-sts';
import { fromNodeProviderChain } from '@aws-sdk/credential-providers';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@aws-sdk/types';
import type { AnyStore, AwsCommonSpec, AwsServiceAccountAuth, SecretKeySelector } from '../../api/types.js';
import {
  DEFAULT_PROVIDER_TIMEOUTS,
  ProviderConfigError,
  storeLabel,
  type CallOptions,
  type ProviderContext,
  type ProviderTimeouts,
} from '../provider.js';
import { memoizeCredentials } from './credentials.js';
import { mapAwsError } from './errors.js';
import { MAX_FAILOVER_TARGETS, sameTarget, type RegionTarget } from './failover.js';

export const DEFAULT_WEB_IDENTITY_AUDIENCES = ['sts.amazonaws.com'];
/** Lifetime asked for ServiceAccount tokens and STS sessions. */
export const SESSION_SECONDS = 3600;
/** SDK attempts per request (the first and two retries): with the per-attempt timeout, a bound on one call. */
export const MAX_ATTEMPTS = 3;

export interface AwsClientConfig {
  region: string;
  endpoint?: string;
  credentials: AwsCredentialIdentityProvider;
  retryMode: 'adaptive';
  maxAttempts: number;
  /** Every client: an endpoint that does not answer fails in time (and, with `failover`, the next target is asked). */
  requestHandler: HttpTimeouts;
}

/** The SDK's NodeHttpHandler options that bound one attempt. */
export interface HttpTimeouts {
  /** Opening the connection (TCP and TLS). */
  connectionTimeout: number;
  /** From sending the request to the answer's headers. */
  requestTimeout: number;
  /** Without it the SDK only logs a warning when requestTimeout passes (and keeps waiting). */
  throwOnRequestTimeout: true;
  /** Idle socket while the answer's body streams in. */
  socketTimeout: number;
}

/** The handler options for these timeouts (ProviderContext.timeouts, or the defaults). */
export function httpTimeouts(timeouts: ProviderTimeouts | undefined): HttpTimeouts {
  const t = timeouts ?? DEFAULT_PROVIDER_TIMEOUTS;
  return {
    connectionTimeout: t.connectMs,
    requestTimeout: t.requestMs,
    throwOnRequestTimeout: true,
    socketTimeout: t.requestMs,
  };
}

/** One target's client settings: the primary (the block's own region and endpoint) first, then each `failover` entry. */
export interface RegionalConfig {
  target: RegionTarget;
  config: AwsClientConfig;
}

/**
 * Client settings for the block's region and endpoint and each of its
 * `failover` targets, in order (an entry without a region is in the block's
 * region). Each target gets its own credentials chain (its own regional STS
 * for roles, at its endpoint), so one target's outage does not take the
 * others' credentials down. Throws ProviderConfigError for an invalid entry,
 * or one whose region and endpoint repeat the primary's or an earlier entry's.
 */
export async function awsRegionalConfigs(
  spec: AwsCommonSpec,
  store: AnyStore,
  ctx: ProviderContext,
  opts: CallOptions = {},
): Promise<RegionalConfig[]> {
  const failover = spec.failover ?? [];
  if (failover.length > MAX_FAILOVER_TARGETS) {
    throw new ProviderConfigError(`failover lists ${failover.length} entries; at most ${MAX_FAILOVER_TARGETS}`);
  }
  const targets: RegionTarget[] = [{ region: spec.region, ...(spec.endpoint ? { endpoint: spec.endpoint } : {}) }];
  for (const [i, f] of failover.entries()) {
    if (f.region === undefined && f.endpoint === undefined) {
      throw new ProviderConfigError(`failover[${i}]: needs a region, an endpoint, or both`);
    }
    targets.push({ region: f.region ?? spec.region, ...(f.endpoint ? { endpoint: f.endpoint } : {}) });
  }
  for (const [i, t] of targets.entries()) {
    validateRegion(t.region);
    validateEndpoint(t.endpoint);
    const earlier = targets.slice(0, i).findIndex((e) => sameTarget(e, t));
    if (earlier >= 0) {
      const where = `region ${t.region} at ${t.endpoint ?? "the region's AWS endpoint"}`;
      throw new ProviderConfigError(
        `failover[${i - 1}]: ${where} repeats ${earlier === 0 ? 'the primary' : `failover[${earlier - 1}]`} ` +
          '(each entry must differ from the primary and the others by region or endpoint)',
      );
    }
  }
  const out: RegionalConfig[] = [];
  for (const target of targets) {
    const regional: AwsCommonSpec = { ...spec, region: target.region };
    if (target.endpoint !== undefined) regional.endpoint = target.endpoint;
    else delete regional.endpoint;
    out.push({ target, config: await awsClientConfig(regional, store, ctx, opts) });
  }
  return out;
}

/** Which identity a spec resolves to; `awsClientConfig` turns it into a credential provider. */
export type AwsIdentityPlan =
  | { kind: 'static'; namespace: string; secretRef: NonNullable<NonNullable<AwsCommonSpec['auth']>['secretRef']> }
  | { kind: 'webIdentity'; namespace: string; serviceAccount: string; audiences: string[]; roleArn: string }
  | { kind: 'operator' };

/**
 * Settings for an `@aws-sdk/*` client for this spec. Throws ProviderConfigError
 * for an invalid spec, a Secret that cannot be read, or an identity the store
 * may not use. Credentials are fetched lazily (the first request, or `check()`)
 * and cached until shortly before they expire; STS errors then surface through
 * the request as ProviderConfigError (denied) or ProviderError (unreachable).
 */
export async function awsClientConfig(
  spec: AwsCommonSpec,
  store: AnyStore,
  ctx: ProviderContext,
  opts: CallOptions = {},
): Promise<AwsClientConfig> {
  const region = validateRegion(spec.region);
  const endpoint = validateEndpoint(spec.endpoint);
  const plan = planIdentity(spec, store, ctx);
  const sessionName = roleSessionName(store);
  const timeouts = httpTimeouts(ctx.timeouts);
  const sts: StsSettings = { region, endpoint, ctx, timeouts };

  let base: AwsCredentialIdentityProvider;
  switch (plan.kind) {
    case 'static':
      base = await staticCredentials(plan.namespace, plan.secretRef, ctx, opts);
      break;
    case 'webIdentity':
      // The role is part of the exchange: no second AssumeRole below.
      return finish(region, endpoint, webIdentityCredentials(plan, sessionName, sts), timeouts);
    case 'operator':
      base = operatorIdentity(region, timeouts);
      break;
  }
  const credentials = spec.roleArn ? assumeRoleCredentials(base, spec.roleArn, sessionName, sts) : base;
  return finish(region, endpoint, credentials, timeouts);
}

/** The identity rules, without touching any Secret or network (unit-tested). */
export function planIdentity(spec: AwsCommonSpec, store: AnyStore, ctx: ProviderContext): AwsIdentityPlan {
  const label = storeLabel(store);
  const auth = spec.auth;
  const cluster = store.kind === 'ClusterSecretStore';
  const ownNamespace = cluster ? undefined : ctx.storeNamespace || store.metadata.namespace;
  if (!cluster && !ownNamespace) throw new ProviderConfigError(`${label}: a SecretStore must have a namespace`);

  if (auth?.secretRef && auth.serviceAccountRef) {
    throw new ProviderConfigError(`${label}: auth sets both secretRef and serviceAccountRef; choose one`);
  }

  if (auth?.secretRef) {
    const refs = auth.secretRef;
    const named: [string, SecretKeySelector | undefined][] = [
      ['accessKeyIdSecretRef', refs.accessKeyIdSecretRef],
      ['secretAccessKeySecretRef', refs.secretAccessKeySecretRef],
      ['sessionTokenSecretRef', refs.sessionTokenSecretRef],
    ];
    const namespaces = new Set<string>();
    for (const [field, ref] of named) {
      if (ref === undefined) {
        if (field === 'sessionTokenSecretRef') continue;
        throw new ProviderConfigError(`${label}: auth.secretRef.${field} is required`);
      }
      if (!ref.name) throw new ProviderConfigError(`${label}: auth.secretRef.${field}.name is required`);
      if (!ref.key) throw new ProviderConfigError(`${label}: auth.secretRef.${field}.key is required`);
      namespaces.add(secretNamespace(ref, `auth.secretRef.${field}`, label, ownNamespace));
    }
    if (namespaces.size > 1) {
      throw new ProviderConfigError(`${label}: the auth.secretRef Secrets must all be in one namespace`);
    }
    const [namespace] = namespaces;
    return { kind: 'static', namespace: namespace ?? '', secretRef: refs };
  }

  if (auth?.serviceAccountRef) {
    const sa: AwsServiceAccountAuth = auth.serviceAccountRef;
    if (!sa.name) throw new ProviderConfigError(`${label}: auth.serviceAccountRef.name is required`);
    let namespace: string;
    if (cluster) {
      if (!sa.namespace) {
        throw new ProviderConfigError(`${label}: auth.serviceAccountRef.namespace is required on a ClusterSecretStore`);
      }
      namespace = sa.namespace;
    } else {
      if (sa.namespace && sa.namespace !== ownNamespace) {
        throw new ProviderConfigError(
          `${label} may only use ServiceAccounts of its own namespace "${ownNamespace}", not ${sa.namespace}/${sa.name}`,
        );
      }
      namespace = ownNamespace ?? '';
    }
    if (!spec.roleArn) {
      throw new ProviderConfigError(
        `${label}: serviceAccountRef needs roleArn (the role the ServiceAccount's token is exchanged for)`,
      );
    }
    const audiences = sa.audiences && sa.audiences.length > 0 ? [...sa.audiences] : DEFAULT_WEB_IDENTITY_AUDIENCES;
    return { kind: 'webIdentity', namespace, serviceAccount: sa.name, audiences, roleArn: spec.roleArn };
  }

  if (!cluster && !ctx.allowOperatorIdentityForNamespacedStores) {
    throw new ProviderConfigError(
      `${label} has no auth and may not use the operator's identity ` +
        '(the cluster admin can allow it with --allow-operator-identity-for-namespaced-stores)',
    );
  }
  return { kind: 'operator' };
}

/** A SecretStore reads only its own namespace; a ClusterSecretStore must say which. */
function secretNamespace(
  ref: SecretKeySelector,
  field: string,
  label: string,
  ownNamespace: string | undefined,
): string {
  if (ownNamespace === undefined) {
    if (!ref.namespace)
      throw new ProviderConfigError(`${label}: ${field}.namespace is required on a ClusterSecretStore`);
    return ref.namespace;
  }
  if (ref.namespace && ref.namespace !== ownNamespace) {
    throw new ProviderConfigError(
      `${label} may only read Secrets of its own namespace "${ownNamespace}", not ${ref.namespace}/${ref.name} (${field})`,
    );
  }
  return ownNamespace;
}

function validateRegion(region: unknown): string {
  if (typeof region !== 'string' || !/^[a-z0-9-]{1,64}$/.test(region)) {
    throw new ProviderConfigError(`region must be an AWS region such as us-east-1, got ${JSON.stringify(region)}`);
  }
  return region;
}

function validateEndpoint(endpoint: unknown): string | undefined {
  if (endpoint === undefined || endpoint === '') return undefined;
  if (typeof endpoint === 'string') {
    try {
      const url = new URL(endpoint);
      if (url.protocol === 'http:' || url.protocol === 'https:') return endpoint;
    } catch {
      // reported below
    }
  }
  throw new ProviderConfigError(`endpoint must be an http(s) URL, got ${JSON.stringify(endpoint)}`);
}

function finish(
  region: string,
  endpoint: string | undefined,
  credentials: AwsCredentialIdentityProvider,
  requestHandler: HttpTimeouts,
): AwsClientConfig {
  return {
    region,
    ...(endpoint !== undefined ? { endpoint } : {}),
    credentials,
    retryMode: 'adaptive',
    maxAttempts: MAX_ATTEMPTS,
    requestHandler,
  };
}

/** Read once per client: the controller rebuilds clients periodically, which picks up rotated keys. */
async function staticCredentials(
  namespace: string,
  refs: NonNullable<NonNullable<AwsCommonSpec['auth']>['secretRef']>,
  ctx: ProviderContext,
  opts: CallOptions,
): Promise<AwsCredentialIdentityProvider> {
  const read = async (ref: SecretKeySelector, what: string): Promise<string> => {
    const raw = await ctx.readSecretKey(namespace, ref.name, ref.key ?? '', opts);
    const value = raw.toString('utf8').trim();
    if (value.length === 0) {
      throw new ProviderConfigError(`key "${ref.key ?? ''}" of Secret ${namespace}/${ref.name} (${what}) is empty`);
    }
    return value;
  };
  const [accessKeyId, secretAccessKey, sessionToken] = await Promise.all([
    read(refs.accessKeyIdSecretRef, 'access key id'),
    read(refs.secretAccessKeySecretRef, 'secret access key'),
    refs.sessionTokenSecretRef ? read(refs.sessionTokenSecretRef, 'session token') : Promise.resolve(undefined),
  ]);
  const identity: AwsCredentialIdentity = {
    accessKeyId,
    secretAccessKey,
    ...(sessionToken !== undefined ? { sessionToken } : {}),
  };
  return async () => identity;
}

const operatorChains = new Map<string, AwsCredentialIdentityProvider>();

/**
 * The default Node.js chain (env, web identity file, ECS, instance profile),
 * one per region and timeouts, memoized by the SDK. Its STS client gets the
 * same timeouts as ours; instance and container metadata keep the SDK's (1 s).
 */
function operatorIdentity(region: string, timeouts: HttpTimeouts): AwsCredentialIdentityProvider {
  const key = JSON.stringify([region, timeouts.connectionTimeout, timeouts.requestTimeout]);
  let chain = operatorChains.get(key);
  if (!chain) {
    chain = fromNodeProviderChain({ clientConfig: { region, requestHandler: timeouts } });
    operatorChains.set(key, chain);
  }
  return chain;
}

interface StsSettings {
  region: string;
  endpoint: string | undefined;
  ctx: ProviderContext;
  timeouts: HttpTimeouts;
}

/** One STS client per exchange: they are rare (hourly), and nothing is left open between them. */
async function withSts<T>(
  settings: StsSettings,
  credentials: AwsCredentialIdentityProvider | undefined,
  call: (sts: STSClient) => Promise<T>,
): Promise<T> {
  const sts = new STSClient({
    region: settings.region,
    ...(settings.endpoint !== undefined ? { endpoint: settings.endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    retryMode: 'adaptive',
    maxAttempts: MAX_ATTEMPTS,
    requestHandler: settings.timeouts,
  });
  try {
    return await call(sts);
  } finally {
    sts.destroy();
  }
}

function assumeRoleCredentials(
  base: AwsCredentialIdentityProvider,
  roleArn: string,
  sessionName: string,
  settings: StsSettings,
): AwsCredentialIdentityProvider {
  return memoizeCredentials(async () => {
    try {
      const out = await withSts(settings, base, (sts) =>
        settings.ctx.observe('AssumeRole', () =>
          sts.send(
            new AssumeRoleCommand({ RoleArn: roleArn, RoleSessionName: sessionName, DurationSeconds: SESSION_SECONDS }),
          ),
        ),
      );
      return toIdentity(out.Credentials, 'AssumeRole', roleArn);
    } catch (err) {
      throw mapAwsError(err, { service: 'STS', operation: 'AssumeRole', key: roleArn, noun: 'role' });
    }
  });
}

function webIdentityCredentials(
  plan: Extract<AwsIdentityPlan, { kind: 'webIdentity' }>,
  sessionName: string,
  settings: StsSettings,
): AwsCredentialIdentityProvider {
  return memoizeCredentials(async () => {
    // A fresh token per exchange: ServiceAccount tokens are short-lived and never stored.
    const token = await settings.ctx.requestServiceAccountToken(
      plan.namespace,
      plan.serviceAccount,
      plan.audiences,
      SESSION_SECONDS,
    );
    try {
      // AssumeRoleWithWebIdentity is unsigned: the client needs no credentials of its own.
      const out = await withSts(settings, undefined, (sts) =>
        settings.ctx.observe('AssumeRoleWithWebIdentity', () =>
          sts.send(
            new AssumeRoleWithWebIdentityCommand({
              RoleArn: plan.roleArn,
              RoleSessionName: sessionName,
              WebIdentityToken: token,
              DurationSeconds: SESSION_SECONDS,
            }),
          ),
        ),
      );
      return toIdentity(out.Credentials, 'AssumeRoleWithWebIdentity', plan.roleArn);
    } catch (err) {
      throw mapAwsError(err, {
        service: 'STS',
        operation: `AssumeRoleWithWebIdentity (ServiceAccount ${plan.namespace}/${plan.serviceAccount})`,
        key: plan.roleArn,
        noun: 'role',
      });
    }
  });
}

function toIdentity(creds: Credentials | undefined, operation: string, roleArn: string): AwsCredentialIdentity {
  if (!creds?.AccessKeyId || !creds.SecretAccessKey) {
    throw new ProviderConfigError(`STS ${operation} "${roleArn}" returned no credentials`);
  }
  return {
    accessKeyId: creds.AccessKeyId,
    secretAccessKey: creds.SecretAccessKey,
    ...(creds.SessionToken ? { sessionToken: creds.SessionToken } : {}),
    ...(creds.Expiration ? { expiration: new Date(creds.Expiration) } : {}),
  };
}

/** `secretsync-<namespace>-<store>`, within STS's 64 characters of [\w+=,.@-]; CloudTrail shows it. */
export function roleSessionName(store: AnyStore): string {
  const parts = ['secretsync', store.metadata.namespace, store.metadata.name].filter((p): p is string => !!p);
  return parts
    .join('-')
    .replace(/[^\w+=,.@-]/g, '-')
    .slice(0, 64);
}
