// The `ibmSecretsManager` provider: IBM Cloud Secrets Manager (API v2).
// remoteRef.key is a secret id or `<secret group>/<secret type>/<name>`,
// version `current` (default), `previous` or a version id, property one field
// of the secret's type (values.ts). Reads may move to secondary instances
// (failover.ts); rotation writes new versions of arbitrary, username_password
// and kv secrets at the primary, exactly once per request token. Every
// request takes a token from the store's budget, carries the caller's signal
// and a deadline, and an IAM access token (iam.ts).
import { tooManyEntries } from '../../api/limits.js';
import { SpecError } from '../../api/errors.js';
import type { AnyStore, FindSpec, IbmInstanceSpec, IbmSecretsManagerProviderSpec, RemoteRef } from '../../api/types.js';
import { compileNamePattern } from '../../secrets/pattern.js';
import { BudgetRegistry, type RequestBudget } from '../budget.js';
import { validateStorePolicy } from '../policy.js';
import {
  DEFAULT_PROVIDER_TIMEOUTS,
  KeyNotFoundError,
  ProviderConfigError,
  ProviderError,
  storeLabel,
  type CallOptions,
  type FindOptions,
  type Properties,
  type Provider,
  type ProviderClient,
  type ProviderContext,
  type PutValueOptions,
  type ServedRegion,
  type WriteRef,
} from '../provider.js';
import { InstanceFailover, PROVIDER, breakerSettings, hostOf, instanceHealth, type Instance } from './failover.js';
import { IbmUnauthorizedError, ibmRequest } from './http.js';
import { DEFAULT_IAM, IamTokenSource, PRIVATE_IAM, iamGrant } from './iam.js';
import { WRITABLE_TYPES, parseKey, secretProperties, versionAlias, wholeValue, type SecretLocator } from './values.js';

/**
 * IBM advises keeping each instance below 20 requests per second; the
 * budget's burst is twice its rate, so 10 keeps even a burst at that line.
 */
export const DEFAULT_REQUESTS_PER_SECOND = 10;
/** Secrets per list page (IBM allows up to 1000; 200 is its default). */
export const LIST_PAGE = 200;
/** Single reads in flight for one find (the budget paces them anyway). */
const CONCURRENCY = 8;
/** The version_custom_metadata field that records a rotation's request token. */
export const TOKEN_FIELD = 'secretsync_request_token';

type Json = Record<string, unknown>;

/** The store budgets of IBM stores (one per store, kept across client rebuilds). */
export const ibmBudgets = new BudgetRegistry();
const tracked = new Set<string>();

/** An instance's service URL: as given, or IBM's public or private endpoint of an instance id in a region. */
export function instanceUrl(spec: IbmInstanceSpec, field: string): Instance {
  if (spec.serviceUrl) {
    const url = spec.serviceUrl.replace(/\/+$/, '');
    if (!/^https?:\/\//.test(url)) throw new ProviderConfigError(`${field}.serviceUrl must be an http(s) URL`);
    const fromHost = /^[^.]+\.(?:private\.)?([a-z]+-[a-z]+(?:-\d)?)\.secrets-manager\.appdomain\.cloud$/.exec(
      hostOf(url),
    )?.[1];
    return { url, region: spec.region ?? fromHost ?? hostOf(url) };
  }
  if (spec.instanceId && spec.region) {
    if (!/^[0-9a-f-]{36}$/i.test(spec.instanceId) || !/^[a-z]+-[a-z]+(-\d)?$/.test(spec.region))
      throw new ProviderConfigError(`${field}: instanceId must be a UUID and region an IBM Cloud region`);
    const privatePart = spec.endpointType === 'private' ? 'private.' : '';
    return {
      url: `https://${spec.instanceId}.${privatePart}${spec.region}.secrets-manager.appdomain.cloud`,
      region: spec.region,
    };
  }
  throw new ProviderConfigError(`${field}: set serviceUrl, or instanceId and region`);
}

export const ibmSecretsManagerProvider: Provider = {
  name: PROVIDER,
  capabilities: { entries: true, write: true, batchRead: false, decrypt: false, failover: true },
  validateStore: validateStorePolicy,
  async connect(store: AnyStore, ctx: ProviderContext, opts: CallOptions = {}): Promise<ProviderClient> {
    const spec = store.spec.provider.ibmSecretsManager;
    if (!spec) throw new ProviderConfigError('spec.provider.ibmSecretsManager is not set');
    await validateStorePolicy(store, ctx.policy, opts);
    const label = storeLabel(store);
    const primary = instanceUrl(spec, 'spec.provider.ibmSecretsManager');
    const secondaries = (spec.failover ?? []).map((f, i) =>
      instanceUrl(f, `spec.provider.ibmSecretsManager.failover[${i}]`),
    );
    const urls = new Set([primary.url, ...secondaries.map((s) => s.url)]);
    if (urls.size !== secondaries.length + 1)
      throw new ProviderConfigError(`${label}: failover instances must differ from the primary and each other`);
    const budget = ibmBudgets.for(store, spec.requestsPerSecond ?? DEFAULT_REQUESTS_PER_SECOND);
    tracked.add(label);
    const timeouts = ctx.timeouts ?? DEFAULT_PROVIDER_TIMEOUTS;
    const grant = await iamGrant(spec, store, ctx, opts);
    const iam = new IamTokenSource(
      iamEndpointOf(spec),
      grant,
      label,
      timeouts.connectMs + timeouts.requestMs,
      (operation, call) => ctx.observe(operation, call),
    );
    const failover = new InstanceFailover([primary, ...secondaries], {
      store: label,
      settings: breakerSettings(spec.circuitBreaker),
      ...(ctx.onFailover ? { onFailover: (move) => ctx.onFailover?.(move) } : {}),
    });
    return new IbmSecretsManagerClient(failover, iam, budget, ctx, label, timeouts.connectMs + timeouts.requestMs);
  },
  forgetStore(store) {
    const label = storeLabel(store);
    tracked.delete(label);
    ibmBudgets.forget(store);
    instanceHealth.forget(label);
  },
  stats() {
    return {
      budgets: ibmBudgets
        .all()
        .filter((b) => tracked.has(b.store))
        .map((b) => ({ store: b.store, waiting: b.waiting, used: b.used })),
      circuits: instanceHealth.stats().filter((c) => c.provider === PROVIDER && tracked.has(c.store)),
    };
  },
};

export function iamEndpointOf(spec: IbmSecretsManagerProviderSpec): string {
  if (spec.iamEndpoint) return spec.iamEndpoint.replace(/\/+$/, '');
  return spec.endpointType === 'private' ? PRIVATE_IAM : DEFAULT_IAM;
}

interface Send {
  signal?: AbortSignal | undefined;
  tenant?: string | undefined;
  primaryOnly?: boolean;
}

/** Exported for tests; built by `ibmSecretsManagerProvider.connect`. */
export class IbmSecretsManagerClient implements ProviderClient {
  constructor(
    private readonly instances: InstanceFailover,
    private readonly iam: IamTokenSource,
    private readonly budget: RequestBudget,
    private readonly ctx: ProviderContext,
    private readonly label: string,
    private readonly timeoutMs: number,
  ) {}

  async getValue(ref: RemoteRef, opts: CallOptions = {}): Promise<string> {
    const body = await this.read(ref.key, ref.version, opts);
    const props = secretProperties(body);
    if (ref.property === undefined) return wholeValue(body.secret_type, props);
    const value = props[ref.property];
    if (value === undefined)
      throw new KeyNotFoundError(
        `IBM Cloud Secrets Manager: secret "${ref.key}" (${String(body.secret_type)}) has no property "${ref.property}"`,
        ref.key,
      );
    return value;
  }

  async getProperties(key: string, version?: string, opts: CallOptions = {}): Promise<Properties> {
    return secretProperties(await this.read(key, version, opts));
  }

  /**
   * Lists secrets narrowed on the server (secret group, labels, and the
   * prefix as `search`), checks names exactly here, then reads each match.
   * Result keys are secret names.
   */
  async find(query: FindSpec, opts: FindOptions = {}): Promise<Map<string, Properties>> {
    const pattern = query.nameRegexp !== undefined ? compileNamePattern(query.nameRegexp) : undefined;
    const send: Send = { signal: opts.signal, tenant: opts.tenant };
    const groupId = query.secretGroup !== undefined ? await this.groupId(query.secretGroup, send) : undefined;
    const matched: { id: string; name: string }[] = [];
    for (let offset = 0; ; offset += LIST_PAGE) {
      const params = new URLSearchParams({ offset: String(offset), limit: String(LIST_PAGE), sort: 'name' });
      if (groupId !== undefined) params.set('groups', groupId);
      if (query.labels && query.labels.length > 0) params.set('match_all_labels', query.labels.join(','));
      if (query.prefix) params.set('search', query.prefix);
      const page = (await this.call('GET', `/api/v2/secrets?${params.toString()}`, 'list secrets', send)) as Json;
      const secrets = Array.isArray(page.secrets) ? (page.secrets as Json[]) : [];
      for (const s of secrets) {
        const name = typeof s.name === 'string' ? s.name : undefined;
        const id = typeof s.id === 'string' ? s.id : undefined;
        if (!name || !id) continue;
        if (query.prefix !== undefined && !name.startsWith(query.prefix)) continue;
        if (pattern && !pattern.test(name)) continue;
        matched.push({ id, name });
        if (opts.maxEntries !== undefined && matched.length > opts.maxEntries)
          throw tooManyEntries(opts.maxEntries, query);
      }
      const total = typeof page.total_count === 'number' ? page.total_count : 0;
      if (secrets.length === 0 || offset + secrets.length >= total) break;
    }
    const names = new Set<string>();
    for (const m of matched) {
      if (names.has(m.name))
        throw new ProviderError(
          `${this.label}: dataFrom.find matched two secrets named "${m.name}" (of other types or groups); narrow it with secretGroup`,
        );
      names.add(m.name);
    }
    const out = new Map<string, Properties>();
    await mapLimit(matched, CONCURRENCY, async ({ id, name }) => {
      try {
        out.set(name, secretProperties(await this.read(id, undefined, opts)));
      } catch (err) {
        // Deleted between list and read: absent, as if the search had run a moment later.
        if (!(err instanceof KeyNotFoundError)) throw err;
      }
    });
    return out;
  }

  /**
   * A new version at the primary. IBM has no client token, so the rotation's
   * token is written into the version's `version_custom_metadata` and looked
   * for among the secret's versions before writing: a retry after a lost
   * answer or a crash finds its version and writes nothing. (Two writers with
   * one token at the same moment are not possible: one leader rotates.)
   */
  async putValue(ref: WriteRef, value: string | Properties, opts: PutValueOptions): Promise<{ version: string }> {
    const send: Send = { signal: opts.signal, tenant: opts.tenant, primaryOnly: true };
    const token = opts.requestToken;
    let current: Json;
    try {
      current = await this.read(ref.key, undefined, send);
    } catch (err) {
      if (err instanceof KeyNotFoundError) return this.create(ref, value, token, send);
      throw err;
    }
    const id = String(current.id);
    const type = String(current.secret_type);
    if (!WRITABLE_TYPES.has(type))
      throw new ProviderError(
        `${this.label}: secret "${ref.key}" is a ${type} secret; IBM Cloud Secrets Manager rotates those itself, so rotation cannot write it`,
      );
    const existing = await this.versionWithToken(id, token, send);
    if (existing) return { version: existing };
    const body = { ...versionBody(type, ref, value, current), version_custom_metadata: { [TOKEN_FIELD]: token } };
    const created = (await this.call(
      'POST',
      `/api/v2/secrets/${enc(id)}/versions`,
      `new version of secret "${ref.key}"`,
      send,
      body,
      ref.key,
    )) as Json;
    return { version: String(created.id) };
  }

  async check(opts: CallOptions = {}): Promise<void> {
    await this.call('GET', '/api/v2/secrets?limit=1', 'list secrets', { signal: opts.signal, tenant: opts.tenant });
  }

  servedRegion(): ServedRegion | undefined {
    return this.instances.servedRegion();
  }

  async close(): Promise<void> {
    // Nothing held open: fetch pools its connections process-wide.
  }

  /** A secret (current version) or one version of it, with its payload fields. */
  private async read(key: string, version: string | undefined, opts: Send): Promise<Json> {
    const locator = parseKey(key);
    const alias = versionAlias(version);
    const what = `secret "${key}"${alias !== 'current' ? ` version ${alias}` : ''}`;
    if (alias === 'current') return (await this.call('GET', secretPath(locator), what, opts, undefined, key)) as Json;
    const id =
      'id' in locator
        ? locator.id
        : String(((await this.call('GET', secretPath(locator), what, opts, undefined, key)) as Json).id);
    const v = (await this.call(
      'GET',
      `/api/v2/secrets/${enc(id)}/versions/${enc(alias)}`,
      what,
      opts,
      undefined,
      key,
    )) as Json;
    if (v.payload_available === false)
      throw new KeyNotFoundError(`IBM Cloud Secrets Manager: ${what} no longer holds its payload`, key);
    return v;
  }

  private async versionWithToken(id: string, token: string, send: Send): Promise<string | undefined> {
    const list = (await this.call('GET', `/api/v2/secrets/${enc(id)}/versions`, 'list versions', send)) as Json;
    const versions = Array.isArray(list.versions) ? (list.versions as Json[]) : [];
    const found = versions.find((v) => {
      const meta = v.version_custom_metadata as Json | undefined;
      return meta !== undefined && meta !== null && meta[TOKEN_FIELD] === token;
    });
    return found ? String(found.id) : undefined;
  }

  /** A rotation of a secret that does not exist yet (a key by group, type and name): created with the token. */
  private async create(
    ref: WriteRef,
    value: string | Properties,
    token: string,
    send: Send,
  ): Promise<{ version: string }> {
    const locator = parseKey(ref.key);
    if ('id' in locator)
      throw new KeyNotFoundError(
        `IBM Cloud Secrets Manager: secret "${ref.key}" not found (an id cannot be created)`,
        ref.key,
      );
    if (!WRITABLE_TYPES.has(locator.type))
      throw new ProviderError(`${this.label}: rotation cannot create a ${locator.type} secret`);
    const groupId = await this.groupId(locator.group, send);
    const body = {
      name: locator.name,
      secret_type: locator.type,
      secret_group_id: groupId,
      ...versionBody(locator.type, ref, value, {}),
      version_custom_metadata: { [TOKEN_FIELD]: token },
    };
    try {
      const created = (await this.call('POST', '/api/v2/secrets', `create secret "${ref.key}"`, send, body)) as Json;
      const versions = await this.versionWithToken(String(created.id), token, send);
      return { version: versions ?? String(created.id) };
    } catch (err) {
      // 409: created meanwhile (our own earlier attempt): its versions say whether this token landed.
      if (err instanceof ProviderError && / HTTP 409/.test(err.message)) {
        const existing = await this.read(ref.key, undefined, send);
        const found = await this.versionWithToken(String(existing.id), token, send);
        if (found) return { version: found };
      }
      throw err;
    }
  }

  /** A secret group's id from its name (or id). */
  private async groupId(group: string, send: Send): Promise<string> {
    if (group === 'default') return 'default';
    const list = (await this.call('GET', '/api/v2/secret_groups', 'list secret groups', send)) as Json;
    const groups = Array.isArray(list.secret_groups) ? (list.secret_groups as Json[]) : [];
    const found = groups.find((g) => g.id === group || g.name === group);
    if (!found) throw new SpecError(`IBM Cloud Secrets Manager: there is no secret group "${group}"`);
    return String(found.id);
  }

  /** Budget, IAM token, deadline, failover, metrics: every request goes through here. */
  private async call(
    method: 'GET' | 'POST',
    path: string,
    what: string,
    send: Send,
    body?: unknown,
    key?: string,
  ): Promise<unknown> {
    const operation = operationName(method, path);
    const attempt = async (token: string) =>
      this.instances.run(
        (instance) =>
          this.ctx.observe(
            operation,
            async () => {
              const answer = await ibmRequest({
                method,
                url: `${instance.url}${path}`,
                headers: { authorization: `Bearer ${token}` },
                ...(body !== undefined ? { body } : {}),
                what: `${this.label}: ${what} at ${hostOf(instance.url)}`,
                ...(key !== undefined ? { key } : {}),
                signal: send.signal,
                timeoutMs: this.timeoutMs,
                beforeAttempt: () => this.budget.take(send.signal, send.tenant),
              });
              return answer.body;
            },
            instance.region,
            hostOf(instance.url),
          ),
        send.signal,
        send.primaryOnly === true,
      );
    // IAM is global, not one of the instances: its failures must not count against an instance's breaker.
    const exchangesBefore = this.iam.exchanges;
    const token = await this.iam.token({ ...(send.signal ? { signal: send.signal } : {}) });
    // Whether the token came from an exchange made (or joined) by this call, not from the cache.
    const freshToken = this.iam.exchanges !== exchangesBefore;
    try {
      return await attempt(token);
    } catch (err) {
      if (!(err instanceof IbmUnauthorizedError)) throw err;
      this.iam.invalidate();
      // A token exchanged for this very call was refused: the credentials are wrong (AuthenticationFailed).
      if (freshToken) throw err;
      // A cached token was refused (revoked, or the account's keys rotated): once more with a fresh one.
      const fresh = await this.iam.token({ ...(send.signal ? { signal: send.signal } : {}) });
      try {
        return await attempt(fresh);
      } catch (again) {
        if (again instanceof IbmUnauthorizedError) this.iam.invalidate();
        throw again;
      }
    }
  }
}

/** The SDK's name of a call, for metrics (no ids or names: they would make a label per secret). */
export function operationName(method: string, path: string): string {
  const p = path.split('?')[0] ?? path;
  if (p.startsWith('/api/v2/secret_groups/')) return 'GetSecretByNameType';
  if (p === '/api/v2/secret_groups') return 'ListSecretGroups';
  if (p === '/api/v2/secrets') return method === 'POST' ? 'CreateSecret' : 'ListSecrets';
  if (/\/versions\/[^/]+$/.test(p)) return 'GetSecretVersion';
  if (p.endsWith('/versions')) return method === 'POST' ? 'CreateSecretVersion' : 'ListSecretVersions';
  return 'GetSecret';
}

function secretPath(locator: SecretLocator): string {
  return 'id' in locator
    ? `/api/v2/secrets/${enc(locator.id)}`
    : `/api/v2/secret_groups/${enc(locator.group)}/secret_types/${enc(locator.type)}/secrets/${enc(locator.name)}`;
}

function enc(part: string): string {
  return encodeURIComponent(part);
}

/**
 * The payload of a new version. arbitrary: the string, or a property laid
 * over a JSON object payload; username_password: a new password (the
 * username is fixed); kv: properties laid over the current data.
 */
export function versionBody(type: string, ref: WriteRef, value: string | Properties, current: Json): Json {
  const changes: Properties =
    typeof value === 'string' ? (ref.property !== undefined ? { [ref.property]: value } : {}) : value;
  if (type === 'arbitrary') {
    if (typeof value === 'string' && ref.property === undefined) return { payload: value };
    let base: Json = {};
    if (typeof current.payload === 'string' && current.payload !== '') {
      try {
        const parsed: unknown = JSON.parse(current.payload);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
        base = parsed as Json;
      } catch {
        throw new ProviderError(`"${ref.key}" does not hold a JSON object, so a property cannot be written into it`);
      }
    }
    return { payload: JSON.stringify({ ...base, ...changes }) };
  }
  if (type === 'username_password') {
    const password = typeof value === 'string' && ref.property === undefined ? value : changes.password;
    const others = Object.keys(changes).filter((k) => k !== 'password' && k !== 'username');
    if (
      password === undefined ||
      others.length > 0 ||
      (changes.username !== undefined && changes.username !== current.username && current.username !== undefined)
    )
      throw new ProviderError(`"${ref.key}" is a username_password secret: rotation writes its password only`);
    return {
      password,
      ...(current.username === undefined && changes.username !== undefined ? { username: changes.username } : {}),
    };
  }
  if (type === 'kv') {
    if (typeof value === 'string' && ref.property === undefined)
      throw new ProviderError(`"${ref.key}" is a kv secret: rotation writes properties into it, not a whole value`);
    const base = typeof current.data === 'object' && current.data !== null ? (current.data as Json) : {};
    return { data: { ...base, ...changes } };
  }
  throw new ProviderError(`"${ref.key}": rotation cannot write a ${type} secret`);
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
