// The `awsSecretsManager` provider: remoteRef.key is a secret name or ARN,
// version a version id or staging label (AWSCURRENT by default), property a
// field of a JSON secret. Values are read with BatchGetSecretValue where the
// controller batches; every request first takes a token from the store's budget.
import {
  BatchGetSecretValueCommand,
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ListSecretsCommand,
  SecretsManagerClient,
  type Filter,
  type SecretListEntry,
} from '@aws-sdk/client-secrets-manager';
import { tooManyEntries } from '../../api/limits.js';
import type { AnyStore, FindSpec, RemoteRef } from '../../api/types.js';
import { raceAbort } from '../../api/abort.js';
import { storeBudgets, type RequestBudget } from '../budget.js';
import { awsRegionalConfigs } from '../aws/client-config.js';
import { storeKms, type StoreKms } from '../aws/decrypt.js';
import { awsErrorName, isAwsConfigError, mapAwsError } from '../aws/errors.js';
import { RegionalClients, breakerSettings } from '../aws/failover.js';
import { sqsWatcher } from '../aws/events/sqs-events.js';
import { storeLifecycle } from '../aws/lifecycle.js';
import { chunks, compileNameRegexp, mapLimit, selectProperty, toProperties, utf8 } from '../aws/values.js';
import { validateStorePolicy } from '../policy.js';
import {
  KeyNotFoundError,
  ProviderConfigError,
  ProviderError,
  refKey,
  storeLabel,
  type CallOptions,
  type ChangeListener,
  type CiphertextBinding,
  type FindOptions,
  type Properties,
  type Provider,
  type ProviderClient,
  type ProviderContext,
  type ServedRegion,
  type PutValueOptions,
  type WriteRef,
} from '../provider.js';

const SERVICE = 'Secrets Manager';
/** Where a request may go: any available region (reads), or only the primary (writes). */
type Where = 'any' | 'primary';
/** How one request is sent: where, and the caller's signal. */
interface SendOptions {
  where?: Where;
  signal?: AbortSignal | undefined;
  /** The namespace asking: the store's budget serves waiting namespaces in turn. */
  tenant?: string | undefined;
}
/** The SDK's per-request options: the signal aborts the HTTP request (and the SDK's retry waits). */
type HttpOptions = { abortSignal?: AbortSignal };
export const DEFAULT_STAGE = 'AWSCURRENT';
/** BatchGetSecretValue takes at most 20 ids. */
export const BATCH_SIZE = 20;
/** Single reads in flight at once for one getValues/find call (the budget paces them anyway). */
const CONCURRENCY = 8;
const MAX_FILTERS = 10;
const BATCH_DENIED = new Set(['AccessDenied', 'AccessDeniedException']);
/** ListSecrets filter values: letters, digits, spaces and :_@/+=.-; a leading ! negates. */
const FILTER_VALUE = /^[a-zA-Z0-9 :_@/+=.-]{1,512}$/;

/** Version ids that AWS (and moto) generate are UUIDs; anything else names a staging label. */
const VERSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `version` as GetSecretValue parameters: absent → AWSCURRENT; a UUID →
 * VersionId; anything else → VersionStage (AWSPREVIOUS, AWSPENDING, custom labels).
 */
export function versionSelector(version: string | undefined): { VersionId?: string; VersionStage?: string } {
  if (version === undefined || version === '') return { VersionStage: DEFAULT_STAGE };
  return VERSION_ID.test(version) ? { VersionId: version } : { VersionStage: version };
}

function isCurrent(version: string | undefined): boolean {
  return version === undefined || version === '' || version === DEFAULT_STAGE;
}

const lifecycle = storeLifecycle();

export const awsSecretsManagerProvider: Provider = {
  name: 'awsSecretsManager',
  capabilities: { entries: true, write: true, batchRead: true, decrypt: true, failover: true },
  validateStore: validateStorePolicy,
  async connect(store: AnyStore, ctx: ProviderContext, opts: CallOptions = {}): Promise<ProviderClient> {
    const spec = store.spec.provider.awsSecretsManager;
    if (!spec) throw new ProviderConfigError('spec.provider.awsSecretsManager is not set');
    await validateStorePolicy(store, ctx.policy, opts);
    const budget = storeBudgets.for(store, spec.requestsPerSecond);
    lifecycle.track(store);
    const label = `${storeLabel(store)}: connect`;
    const configs = await raceAbort(awsRegionalConfigs(spec, store, ctx, opts), opts.signal, label);
    const regions = new RegionalClients(
      configs.map(({ target, config }) => ({ target, client: new SecretsManagerClient(config) })),
      {
        store: storeLabel(store),
        provider: 'awsSecretsManager',
        settings: breakerSettings(spec.circuitBreaker),
        ...(ctx.onFailover ? { onFailover: (move) => ctx.onFailover?.(move) } : {}),
      },
    );
    let kms: StoreKms | undefined;
    try {
      kms = await raceAbort(storeKms(spec, spec.decrypt, configs, store, ctx, opts), opts.signal, label);
    } catch (err) {
      for (const r of regions.regions) r.client.destroy();
      throw err;
    }
    const watch = sqsWatcher({ store, spec, service: 'secretsManager', ctx });
    return new SecretsManagerProviderClient(regions, budget, ctx, kms, watch);
  },
  forgetStore: (store) => lifecycle.forgetStore(store),
  stats: () => lifecycle.stats(),
};

/** Exported for tests; built by `awsSecretsManagerProvider.connect`. */
export class SecretsManagerProviderClient implements ProviderClient {
  /** Set once BatchGetSecretValue is denied (a policy granting only GetSecretValue): single reads from then on. */
  private batchDenied = false;
  readonly decrypt?: (ciphertext: string, binding: CiphertextBinding, opts?: CallOptions) => Promise<string>;

  constructor(
    private readonly regions: RegionalClients<SecretsManagerClient>,
    private readonly budget: RequestBudget,
    private readonly ctx: ProviderContext,
    private readonly kms: StoreKms | undefined,
    /** `events.sqs`: the queue's event source; absent when the store declares none. */
    private readonly watch?: (listener: ChangeListener, signal: AbortSignal) => boolean,
  ) {
    if (kms) this.decrypt = (ciphertext, binding, opts) => kms.decryptor.decrypt(ciphertext, binding, opts);
  }

  /** Long-polls the store's `events.sqs` queue until `signal` aborts; false when the store has no queue. */
  watchChanges(listener: ChangeListener, signal: AbortSignal): boolean {
    return this.watch?.(listener, signal) ?? false;
  }

  /** Without `property`, the secret's text as it is (JSON or not). */
  async getValue(ref: RemoteRef, opts: CallOptions = {}): Promise<string> {
    const text = await this.read(ref.key, ref.version, { signal: opts.signal, tenant: opts.tenant });
    return ref.property === undefined ? text : selectProperty(text, ref.property, describe(ref), ref.key);
  }

  /** A JSON object secret's fields; any other secret is `{ value: <text> }`. */
  async getProperties(key: string, version?: string, opts: CallOptions = {}): Promise<Properties> {
    return toProperties(await this.read(key, version, { signal: opts.signal, tenant: opts.tenant }));
  }

  /**
   * Current values are read 20 at a time with BatchGetSecretValue; refs with
   * another version, and ids a batch could not match, are read one by one.
   */
  async getValues(refs: RemoteRef[], opts: CallOptions = {}): Promise<Map<string, string | KeyNotFoundError>> {
    const signal = opts.signal;
    const texts = new Map<string, string | KeyNotFoundError>();
    const current = [...new Set(refs.filter((r) => isCurrent(r.version)).map((r) => r.key))];
    const rest = refs.filter((r) => !isCurrent(r.version));

    const leftovers: string[] = [];
    if (!this.batchDenied) {
      for (const ids of chunks(current, BATCH_SIZE)) {
        const batch = await this.batchRead(ids, signal);
        if (batch === undefined) {
          leftovers.push(...ids);
          continue;
        }
        for (const id of ids) {
          const got = batch.get(id);
          if (got === undefined) leftovers.push(id);
          else texts.set(textKey(id, undefined), got);
        }
      }
    } else {
      leftovers.push(...current);
    }

    const singles: { key: string; version: string | undefined }[] = [
      ...leftovers.map((key) => ({ key, version: undefined })),
      ...uniqueBy(rest, (r) => textKey(r.key, r.version)).map((r) => ({ key: r.key, version: r.version })),
    ];
    await mapLimit(singles, CONCURRENCY, async ({ key, version }) => {
      try {
        texts.set(textKey(key, version), await this.read(key, version, { signal, tenant: opts.tenant }));
      } catch (err) {
        if (!(err instanceof KeyNotFoundError)) throw err;
        texts.set(textKey(key, version), err);
      }
    });

    const out = new Map<string, string | KeyNotFoundError>();
    for (const ref of refs) {
      const got = texts.get(textKey(ref.key, isCurrent(ref.version) ? undefined : ref.version));
      if (got === undefined || got instanceof KeyNotFoundError) {
        out.set(refKey(ref), got ?? new KeyNotFoundError(`${SERVICE}: secret "${ref.key}" not found`, ref.key));
        continue;
      }
      if (ref.property === undefined) {
        out.set(refKey(ref), got);
        continue;
      }
      try {
        out.set(refKey(ref), selectProperty(got, ref.property, describe(ref), ref.key));
      } catch (err) {
        if (!(err instanceof KeyNotFoundError)) throw err;
        out.set(refKey(ref), err);
      }
    }
    return out;
  }

  /**
   * ListSecrets narrowed on the server (name prefix, tag keys and values),
   * checked exactly here (prefix, regexp, tags), then the values in batches.
   * Result keys are secret names.
   */
  async find(query: FindSpec, opts: FindOptions = {}): Promise<Map<string, Properties>> {
    const pattern = compileNameRegexp(query.nameRegexp);
    const tags = Object.entries(query.tags ?? {});
    const filters = listFilters(query.prefix, tags);
    const matched: SecretListEntry[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.send(
        'ListSecrets',
        undefined,
        (client, http) =>
          client.send(
            new ListSecretsCommand({
              MaxResults: 100,
              ...(filters.length > 0 ? { Filters: filters } : {}),
              ...(nextToken ? { NextToken: nextToken } : {}),
            }),
            http,
          ),
        { signal: opts.signal, tenant: opts.tenant },
      );
      for (const entry of page.SecretList ?? []) {
        const name = entry.Name;
        if (!name || !entry.ARN) continue;
        if (query.prefix !== undefined && !name.startsWith(query.prefix)) continue;
        if (pattern && !pattern.test(name)) continue;
        if (!tags.every(([k, v]) => (entry.Tags ?? []).some((t) => t.Key === k && t.Value === v))) continue;
        matched.push(entry);
        // Stop listing: no more pages, and no value read.
        if (opts?.maxEntries !== undefined && matched.length > opts.maxEntries)
          throw tooManyEntries(opts.maxEntries, query);
      }
      nextToken = page.NextToken;
    } while (nextToken);

    // Read by ARN: exact, even if a secret of the same name was recreated meanwhile.
    const byArn = new Map(matched.map((e) => [e.ARN as string, e.Name as string]));
    const values = await this.getValues(
      [...byArn.keys()].map((key) => ({ key })),
      opts,
    );
    const out = new Map<string, Properties>();
    for (const [arn, name] of byArn) {
      const value = values.get(refKey({ key: arn }));
      // Deleted between list and read: absent, as if the search had run a moment later.
      if (value === undefined || value instanceof KeyNotFoundError) continue;
      out.set(name, toProperties(value));
    }
    return out;
  }

  /**
   * PutSecretValue with ClientRequestToken = the rotation's token, so the new
   * version's id is the token: AWSCURRENT moves to it and the old current
   * version becomes AWSPREVIOUS. A version with that id already there means an
   * earlier attempt landed (the answer was lost, or the operator crashed):
   * its id is returned and nothing is written. A missing secret is created.
   */
  async putValue(ref: WriteRef, value: string | Properties, opts: PutValueOptions): Promise<{ version: string }> {
    const token = opts.requestToken;
    // Writes go to the primary region only: replica secrets are read-only, and a
    // write elsewhere would fork the value. A rotation waits for the primary.
    const primary: SendOptions = { where: 'primary', signal: opts.signal, tenant: opts.tenant };
    if (await this.hasVersion(ref.key, token, primary)) return { version: token };
    const text = await mergedText(ref, value, async () => {
      try {
        return await this.read(ref.key, undefined, primary);
      } catch (err) {
        if (err instanceof KeyNotFoundError) return undefined;
        throw err;
      }
    });
    try {
      const out = await this.sendRaw(
        'PutSecretValue',
        (client, http) =>
          client.send(
            new PutSecretValueCommand({ SecretId: ref.key, SecretString: text, ClientRequestToken: token }),
            http,
          ),
        primary,
      );
      return { version: out.VersionId ?? token };
    } catch (err) {
      const name = awsErrorName(err);
      // Same token, already there (a race with our own retry): the rotation happened once.
      if (name === 'ResourceExistsException') return { version: token };
      if (name !== 'ResourceNotFoundException')
        throw mapAwsError(err, {
          service: SERVICE,
          operation: 'PutSecretValue',
          key: ref.key,
          noun: 'secret',
          ...(opts.signal ? { signal: opts.signal, tenant: opts.tenant } : {}),
        });
    }
    const created = await this.send(
      'CreateSecret',
      ref.key,
      (client, http) =>
        client.send(new CreateSecretCommand({ Name: ref.key, SecretString: text, ClientRequestToken: token }), http),
      primary,
    );
    return { version: created.VersionId ?? token };
  }

  /** Whether the secret has a version with this id (GetSecretValue by VersionId; the value is dropped). */
  private async hasVersion(key: string, versionId: string, send: SendOptions): Promise<boolean> {
    try {
      await this.send(
        'GetSecretValue',
        key,
        (client, http) => client.send(new GetSecretValueCommand({ SecretId: key, VersionId: versionId }), http),
        send,
      );
      return true;
    } catch (err) {
      if (err instanceof KeyNotFoundError) return false;
      throw err;
    }
  }

  /** One ListSecrets call: the endpoint answers and the credentials (and their chain) work. */
  async check(opts: CallOptions = {}): Promise<void> {
    await this.send(
      'ListSecrets',
      undefined,
      (client, http) => client.send(new ListSecretsCommand({ MaxResults: 1 }), http),
      { signal: opts.signal, tenant: opts.tenant },
    );
  }

  /** The region that answered the latest request (the primary, or a failover region). */
  servedRegion(): ServedRegion | undefined {
    return this.regions.servedRegion();
  }

  async close(): Promise<void> {
    for (const r of this.regions.regions) r.client.destroy();
    this.kms?.close();
  }

  /** One GetSecretValue; the value as text. */
  private async read(key: string, version: string | undefined, send: SendOptions): Promise<string> {
    const out = await this.send(
      'GetSecretValue',
      key,
      (client, http) => client.send(new GetSecretValueCommand({ SecretId: key, ...versionSelector(version) }), http),
      send,
    );
    return secretText(out, describe({ key, version }));
  }

  /**
   * One BatchGetSecretValue: id → text, or KeyNotFoundError for ids AWS reports
   * missing. Ids it neither returns nor reports are left out (read singly).
   * Undefined when the caller may not batch at all.
   */
  private async batchRead(
    ids: string[],
    signal: AbortSignal | undefined,
  ): Promise<Map<string, string | KeyNotFoundError> | undefined> {
    const out = new Map<string, string | KeyNotFoundError>();
    let nextToken: string | undefined;
    do {
      let page;
      try {
        page = await this.sendRaw(
          'BatchGetSecretValue',
          (client, http) =>
            client.send(
              new BatchGetSecretValueCommand({ SecretIdList: ids, ...(nextToken ? { NextToken: nextToken } : {}) }),
              http,
            ),
          { signal },
        );
      } catch (err) {
        // The batch call itself refused (a policy granting only GetSecretValue): single reads may still be allowed.
        if (nextToken === undefined && !signal?.aborted && BATCH_DENIED.has(awsErrorName(err) ?? '')) {
          this.batchDenied = true;
          return undefined;
        }
        throw mapAwsError(err, { service: SERVICE, operation: 'BatchGetSecretValue', ...(signal ? { signal } : {}) });
      }
      for (const entry of page.SecretValues ?? []) {
        for (const id of ids) {
          if (out.has(id) || !matchesId(id, entry.Name, entry.ARN)) continue;
          out.set(id, secretText(entry, describe({ key: id })));
        }
      }
      for (const error of page.Errors ?? []) {
        const id = error.SecretId;
        if (id === undefined || !ids.includes(id) || out.has(id)) continue;
        const code = error.ErrorCode ?? 'Error';
        const synthetic = Object.assign(new Error(error.Message ?? ''), { name: code });
        const mapped = mapAwsError(synthetic, {
          service: SERVICE,
          operation: 'BatchGetSecretValue',
          key: id,
          noun: 'secret',
        });
        if (mapped instanceof KeyNotFoundError) {
          out.set(id, mapped);
        } else if (isAwsConfigError(synthetic) || code === 'InvalidRequestException') {
          // Denied or unreadable: the single read below reports it with the secret's own error.
          continue;
        } else {
          throw mapped;
        }
      }
      nextToken = page.NextToken;
    } while (nextToken);
    return out;
  }

  /** Budget, metrics, error mapping: every request goes through here. */
  private async send<T>(
    operation: string,
    key: string | undefined,
    call: (client: SecretsManagerClient, http: HttpOptions) => Promise<T>,
    send: SendOptions = {},
  ): Promise<T> {
    try {
      return await this.sendRaw(operation, call, send);
    } catch (err) {
      throw mapAwsError(err, {
        service: SERVICE,
        operation,
        ...(key !== undefined ? { key } : {}),
        noun: 'secret',
        ...(send.signal ? { signal: send.signal } : {}),
      });
    }
  }

  /**
   * In the primary region, or (reads) the first available failover region.
   * Every attempt in a region draws from the store's budget. The signal ends
   * the wait for the budget and the HTTP request, and no further region is
   * asked once it fired.
   */
  private async sendRaw<T>(
    operation: string,
    call: (client: SecretsManagerClient, http: HttpOptions) => Promise<T>,
    { where = 'any', signal, tenant }: SendOptions = {},
  ): Promise<T> {
    const http: HttpOptions = signal ? { abortSignal: signal } : {};
    return this.regions.run(
      async (client, target) => {
        await this.budget.take(signal, tenant);
        return this.ctx.observe(operation, () => call(client, http), target.region);
      },
      where === 'primary' ? () => false : undefined,
      signal,
    );
  }
}

/**
 * The text a rotation writes: a whole value as is, or the current JSON object
 * with the property (or key pair) laid over it. A current value that is not a
 * JSON object cannot take a property.
 */
export async function mergedText(
  ref: WriteRef,
  value: string | Properties,
  current: () => Promise<string | undefined>,
): Promise<string> {
  if (typeof value === 'string' && ref.property === undefined) return value;
  const changes = typeof value === 'string' ? { [ref.property as string]: value } : value;
  const text = await current();
  let base: Record<string, unknown> = {};
  if (text !== undefined && text !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      throw new ProviderError(`"${ref.key}" does not hold a JSON object, so a property cannot be written into it`);
    base = parsed as Record<string, unknown>;
  }
  return JSON.stringify({ ...base, ...changes });
}

function secretText(out: { SecretString?: string; SecretBinary?: Uint8Array }, where: string): string {
  if (out.SecretString !== undefined) return out.SecretString;
  if (out.SecretBinary !== undefined) return utf8(out.SecretBinary, where);
  throw new ProviderError(`${where} has neither SecretString nor SecretBinary`);
}

/** `secret "k"`, `secret "k" version AWSPREVIOUS` — how messages name what was read. */
function describe(ref: { key: string; version?: string | undefined }): string {
  return `secret "${ref.key}"${ref.version ? ` version ${ref.version}` : ''}`;
}

function textKey(key: string, version: string | undefined): string {
  return JSON.stringify([key, version ?? null]);
}

function uniqueBy<T>(items: T[], key: (item: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const item of items) if (!seen.has(key(item))) seen.set(key(item), item);
  return [...seen.values()];
}

/** An id is a name, a full ARN, or a partial ARN (without the 6-character suffix AWS appends). */
function matchesId(id: string, name: string | undefined, arn: string | undefined): boolean {
  if (id === name || id === arn) return true;
  return id.startsWith('arn:') && arn !== undefined && arn.startsWith(`${id}-`) && arn.length === id.length + 7;
}

/** Server-side narrowing only; the exact checks happen on each entry. Values AWS would reject are left to those checks. */
function listFilters(prefix: string | undefined, tags: [string, string][]): Filter[] {
  const filters: Filter[] = [];
  if (prefix && FILTER_VALUE.test(prefix)) filters.push({ Key: 'name', Values: [prefix] });
  for (const [k, v] of tags) {
    if (filters.length + 2 > MAX_FILTERS) break;
    if (!FILTER_VALUE.test(k) || !FILTER_VALUE.test(v)) continue;
    filters.push({ Key: 'tag-key', Values: [k] }, { Key: 'tag-value', Values: [v] });
  }
  return filters;
}
