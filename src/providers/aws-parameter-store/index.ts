// The `awsParameterStore` provider: remoteRef.key is a parameter name (or ARN),
// version a version number (`3`) or label, property a field of a JSON value.
// SecureStrings are always decrypted. Every request first takes a token from
// the store's budget.
import {
  DescribeParametersCommand,
  GetParameterCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  PutParameterCommand,
  SSMClient,
  type ParameterType,
  type Parameter,
  type ParameterStringFilter,
} from '@aws-sdk/client-ssm';
import { tooManyEntries } from '../../api/limits.js';
import type { AnyStore, FindSpec, RemoteRef } from '../../api/types.js';
import { raceAbort } from '../../api/abort.js';
import { storeBudgets, type RequestBudget } from '../budget.js';
import { awsRegionalConfigs } from '../aws/client-config.js';
import { storeKms, type StoreKms } from '../aws/decrypt.js';
import { mapAwsError } from '../aws/errors.js';
import { RegionalClients, breakerSettings } from '../aws/failover.js';
import { sqsWatcher } from '../aws/events/sqs-events.js';
import { storeLifecycle } from '../aws/lifecycle.js';
import { mergedText } from '../aws-secrets-manager/index.js';
import { chunks, compileNameRegexp, mapLimit, selectProperty, toProperties } from '../aws/values.js';
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

const SERVICE = 'Parameter Store';
/** GetParameters takes at most 10 names. */
export const BATCH_SIZE = 10;
const CONCURRENCY = 8;
const BY_PATH_PAGE = 10;
const DESCRIBE_PAGE = 50;
/** How one request is sent: where (reads anywhere, writes to the primary), and the caller's signal. */
interface SendOptions {
  where?: 'any' | 'primary';
  signal?: AbortSignal | undefined;
  /** The namespace asking: the store's budget serves waiting namespaces in turn. */
  tenant?: string | undefined;
}
/** The SDK's per-request options: the signal aborts the HTTP request (and the SDK's retry waits). */
type HttpOptions = { abortSignal?: AbortSignal };

/** `name:3` or `name:label`, as GetParameter and GetParameters take it. */
export function parameterSelector(key: string, version: string | undefined): string {
  return version === undefined || version === '' ? key : `${key}:${version}`;
}

const lifecycle = storeLifecycle();

export const awsParameterStoreProvider: Provider = {
  name: 'awsParameterStore',
  capabilities: { entries: true, write: true, batchRead: true, decrypt: true, failover: true },
  validateStore: validateStorePolicy,
  async connect(store: AnyStore, ctx: ProviderContext, opts: CallOptions = {}): Promise<ProviderClient> {
    const spec = store.spec.provider.awsParameterStore;
    if (!spec) throw new ProviderConfigError('spec.provider.awsParameterStore is not set');
    await validateStorePolicy(store, ctx.policy, opts);
    const budget = storeBudgets.for(store, spec.requestsPerSecond);
    lifecycle.track(store);
    const label = `${storeLabel(store)}: connect`;
    const configs = await raceAbort(awsRegionalConfigs(spec, store, ctx, opts), opts.signal, label);
    const regions = new RegionalClients(
      configs.map(({ target, config }) => ({ target, client: new SSMClient(config) })),
      {
        store: storeLabel(store),
        provider: 'awsParameterStore',
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
    const watch = sqsWatcher({ store, spec, service: 'parameterStore', ctx });
    return new ParameterStoreProviderClient(regions, budget, ctx, kms, watch);
  },
  forgetStore: (store) => lifecycle.forgetStore(store),
  stats: () => lifecycle.stats(),
};

/** Exported for tests; built by `awsParameterStoreProvider.connect`. */
export class ParameterStoreProviderClient implements ProviderClient {
  readonly decrypt?: (ciphertext: string, binding: CiphertextBinding, opts?: CallOptions) => Promise<string>;

  constructor(
    private readonly regions: RegionalClients<SSMClient>,
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

  /** Without `property`, the value as it is (a StringList stays comma-separated). */
  async getValue(ref: RemoteRef, opts: CallOptions = {}): Promise<string> {
    const text = await this.read(ref.key, ref.version, { signal: opts.signal, tenant: opts.tenant });
    return ref.property === undefined ? text : selectProperty(text, ref.property, describe(ref), ref.key);
  }

  /** A JSON object value's fields; any other value is `{ value: <text> }`. */
  async getProperties(key: string, version?: string, opts: CallOptions = {}): Promise<Properties> {
    return toProperties(await this.read(key, version, { signal: opts.signal, tenant: opts.tenant }));
  }

  /** Unversioned refs 10 names per GetParameters call; versioned ones (and unmatched names) one by one. */
  async getValues(refs: RemoteRef[], opts: CallOptions = {}): Promise<Map<string, string | KeyNotFoundError>> {
    const signal = opts.signal;
    const texts = new Map<string, string | KeyNotFoundError>();
    const names = [...new Set(refs.filter((r) => !r.version).map((r) => r.key))];
    const leftovers: string[] = [];
    for (const batch of chunks(names, BATCH_SIZE)) {
      const got = await this.readMany(batch, signal);
      for (const name of batch) {
        const value = got.get(name);
        if (value === undefined) leftovers.push(name);
        else texts.set(parameterSelector(name, undefined), value);
      }
    }
    const singles = [
      ...leftovers.map((key) => ({ key, version: undefined as string | undefined })),
      ...refs.filter((r) => r.version).map((r) => ({ key: r.key, version: r.version })),
    ].filter((s, i, all) => all.findIndex((o) => o.key === s.key && o.version === s.version) === i);
    await mapLimit(singles, CONCURRENCY, async ({ key, version }) => {
      try {
        texts.set(parameterSelector(key, version), await this.read(key, version, { signal, tenant: opts.tenant }));
      } catch (err) {
        if (!(err instanceof KeyNotFoundError)) throw err;
        texts.set(parameterSelector(key, version), err);
      }
    });

    const out = new Map<string, string | KeyNotFoundError>();
    for (const ref of refs) {
      const got = texts.get(parameterSelector(ref.key, ref.version || undefined));
      if (got === undefined || got instanceof KeyNotFoundError) {
        out.set(refKey(ref), got ?? new KeyNotFoundError(`${SERVICE}: parameter "${ref.key}" not found`, ref.key));
      } else if (ref.property === undefined) {
        out.set(refKey(ref), got);
      } else {
        try {
          out.set(refKey(ref), selectProperty(got, ref.property, describe(ref), ref.key));
        } catch (err) {
          if (!(err instanceof KeyNotFoundError)) throw err;
          out.set(refKey(ref), err);
        }
      }
    }
    return out;
  }

  /**
   * `prefix` starting with `/` (alone): GetParametersByPath from the prefix's
   * last `/`, recursive, decrypted, so values come with the listing. With
   * `nameRegexp`, `tags` or a prefix without a leading `/`: DescribeParameters
   * (name BeginsWith, tag filters), the regexp here, then GetParameters.
   * Result keys are full parameter names.
   */
  async find(query: FindSpec, opts: FindOptions = {}): Promise<Map<string, Properties>> {
    const pattern = compileNameRegexp(query.nameRegexp);
    const prefix = query.prefix ?? '';
    const tags = Object.entries(query.tags ?? {});
    const out = new Map<string, Properties>();

    if (prefix.startsWith('/') && !pattern && tags.length === 0) {
      const path = prefix.slice(0, prefix.lastIndexOf('/')) || '/';
      let nextToken: string | undefined;
      do {
        const page = await this.send(
          'GetParametersByPath',
          path,
          (client, http) =>
            client.send(
              new GetParametersByPathCommand({
                Path: path,
                Recursive: true,
                WithDecryption: true,
                MaxResults: BY_PATH_PAGE,
                ...(nextToken ? { NextToken: nextToken } : {}),
              }),
              http,
            ),
          { signal: opts.signal, tenant: opts.tenant },
        );
        for (const p of page.Parameters ?? []) {
          if (p.Name?.startsWith(prefix) && p.Value !== undefined) out.set(p.Name, toProperties(p.Value));
          if (opts?.maxEntries !== undefined && out.size > opts.maxEntries)
            throw tooManyEntries(opts.maxEntries, query);
        }
        nextToken = page.NextToken;
      } while (nextToken);
      return out;
    }

    const filters: ParameterStringFilter[] = [];
    if (prefix) filters.push({ Key: 'Name', Option: 'BeginsWith', Values: [prefix] });
    for (const [k, v] of tags) filters.push({ Key: `tag:${k}`, Option: 'Equals', Values: [v] });
    const names: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await this.send(
        'DescribeParameters',
        undefined,
        (client, http) =>
          client.send(
            new DescribeParametersCommand({
              MaxResults: DESCRIBE_PAGE,
              ...(filters.length > 0 ? { ParameterFilters: filters } : {}),
              ...(nextToken ? { NextToken: nextToken } : {}),
            }),
            http,
          ),
        { signal: opts.signal, tenant: opts.tenant },
      );
      for (const p of page.Parameters ?? []) {
        if (!p.Name || !p.Name.startsWith(prefix)) continue;
        if (pattern && !pattern.test(p.Name)) continue;
        names.push(p.Name);
        // Stop listing: no more pages, and no value read.
        if (opts?.maxEntries !== undefined && names.length > opts.maxEntries)
          throw tooManyEntries(opts.maxEntries, query);
      }
      nextToken = page.NextToken;
    } while (nextToken);

    for (const batch of chunks([...new Set(names)], BATCH_SIZE)) {
      const got = await this.readMany(batch, opts.signal);
      // Deleted between listing and reading: absent, as if the search had run a moment later.
      for (const name of batch) {
        const value = got.get(name);
        if (typeof value === 'string') out.set(name, toProperties(value));
      }
    }
    return out;
  }

  /**
   * PutParameter with Overwrite: a new parameter version (a new parameter is
   * a SecureString). Parameter Store has no request token, so the token goes
   * into the version's Description: when the latest version already carries
   * it, an earlier attempt landed and its version is returned, nothing written.
   */
  async putValue(ref: WriteRef, value: string | Properties, opts: PutValueOptions): Promise<{ version: string }> {
    const marker = rotationMarker(opts.requestToken);
    // Writes go to the primary region only (the value would fork otherwise); a rotation waits for it.
    const primary: SendOptions = { where: 'primary', signal: opts.signal, tenant: opts.tenant };
    const described = await this.send(
      'DescribeParameters',
      ref.key,
      (client, http) =>
        client.send(
          new DescribeParametersCommand({ ParameterFilters: [{ Key: 'Name', Option: 'Equals', Values: [ref.key] }] }),
          http,
        ),
      primary,
    );
    const existing = described.Parameters?.find((p) => p.Name === ref.key);
    if (existing?.Description === marker && existing.Version !== undefined)
      return { version: String(existing.Version) };
    const text = await mergedText(ref, value, async () =>
      existing ? this.read(ref.key, undefined, primary) : undefined,
    );
    const type: ParameterType = existing?.Type ?? 'SecureString';
    const out = await this.send(
      'PutParameter',
      ref.key,
      (client, http) =>
        client.send(
          new PutParameterCommand({
            Name: ref.key,
            Value: text,
            Type: type,
            Overwrite: existing !== undefined,
            Description: marker,
          }),
          http,
        ),
      primary,
    );
    if (out.Version === undefined) throw new ProviderError(`parameter "${ref.key}": PutParameter returned no version`);
    return { version: String(out.Version) };
  }

  /** One DescribeParameters call: the endpoint answers and the credentials (and their chain) work. */
  async check(opts: CallOptions = {}): Promise<void> {
    await this.send(
      'DescribeParameters',
      undefined,
      (client, http) => client.send(new DescribeParametersCommand({ MaxResults: 1 }), http),
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

  private async read(key: string, version: string | undefined, send: SendOptions): Promise<string> {
    const name = parameterSelector(key, version);
    try {
      const out = await this.send(
        'GetParameter',
        name,
        (client, http) => client.send(new GetParameterCommand({ Name: name, WithDecryption: true }), http),
        send,
      );
      return parameterValue(out.Parameter, describe({ key, version }));
    } catch (err) {
      // The message names `name:version`; the error's key is the ref's key.
      if (err instanceof KeyNotFoundError && err.key !== key) throw new KeyNotFoundError(err.message, key);
      throw err;
    }
  }

  /**
   * One GetParameters call: name → value, or KeyNotFoundError for names AWS
   * reports invalid. Names it neither returns nor reports are left out.
   */
  private async readMany(
    names: string[],
    signal: AbortSignal | undefined,
  ): Promise<Map<string, string | KeyNotFoundError>> {
    const out = new Map<string, string | KeyNotFoundError>();
    const page = await this.send(
      'GetParameters',
      undefined,
      (client, http) => client.send(new GetParametersCommand({ Names: names, WithDecryption: true }), http),
      { signal },
    );
    for (const p of page.Parameters ?? []) {
      for (const name of names) {
        if (out.has(name) || (name !== p.Name && name !== p.ARN)) continue;
        out.set(name, parameterValue(p, describe({ key: name })));
      }
    }
    for (const name of page.InvalidParameters ?? []) {
      if (names.includes(name) && !out.has(name)) {
        out.set(name, new KeyNotFoundError(`${SERVICE}: parameter "${name}" not found (InvalidParameters)`, name));
      }
    }
    return out;
  }

  /**
   * In the primary region, or (reads) the first available failover region.
   * Every attempt in a region draws from the store's budget. The signal ends
   * the wait for the budget and the HTTP request, and no further region is
   * asked once it fired.
   */
  private async send<T>(
    operation: string,
    key: string | undefined,
    call: (client: SSMClient, http: HttpOptions) => Promise<T>,
    { where = 'any', signal, tenant }: SendOptions = {},
  ): Promise<T> {
    const http: HttpOptions = signal ? { abortSignal: signal } : {};
    try {
      return await this.regions.run(
        async (client, target) => {
          await this.budget.take(signal, tenant);
          return this.ctx.observe(operation, () => call(client, http), target.region);
        },
        where === 'primary' ? () => false : undefined,
        signal,
      );
    } catch (err) {
      throw mapAwsError(err, {
        service: SERVICE,
        operation,
        ...(key !== undefined ? { key } : {}),
        noun: 'parameter',
        ...(signal ? { signal } : {}),
      });
    }
  }
}

/** The Description a rotation's version carries: its idempotency token, nothing secret. */
export function rotationMarker(token: string): string {
  return `secretsync rotation ${token}`;
}

function parameterValue(p: Parameter | undefined, where: string): string {
  if (p?.Value === undefined) throw new ProviderError(`${where} came back without a value`);
  return p.Value;
}

function describe(ref: { key: string; version?: string | undefined }): string {
  return `parameter "${ref.key}"${ref.version ? ` version ${ref.version}` : ''}`;
}
