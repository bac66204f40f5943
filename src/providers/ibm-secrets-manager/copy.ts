// Copying the secrets of one IBM Cloud Secrets Manager instance into another:
// the customer's "keep a secondary instance" duty in one step (`secretsync ibm
// copy-to-secondary`), and the IBM part of `secretsync backup --include-store`
// and `restore --to-store`. It is one module so that the copy and the restore
// decide created / updated / unchanged the same way.
//
// It talks to each instance directly, not through the store's failover (a copy
// names its source and its target), with the provider's own IAM login, HTTP
// layer and request budget (one budget per instance: IBM's rate guidance is
// per instance). Secrets are matched by secret group name + type + name,
// because ids differ between instances; missing secret groups are created by
// name. A new version is written only when the value differs, and the metadata
// (labels, custom_metadata, description) patched only when it differs, so a
// second run writes nothing. Values stay in memory (and in the encrypted
// backup payload); every report line and error names secrets, never values.
import { isDeepStrictEqual } from 'node:util';
import type { AnyStore } from '../../api/types.js';
import { RequestBudget } from '../budget.js';
import { validateStorePolicy } from '../policy.js';
import {
  DEFAULT_PROVIDER_TIMEOUTS,
  KeyNotFoundError,
  ProviderConfigError,
  storeLabel,
  type CallOptions,
  type ProviderContext,
} from '../provider.js';
import { hostOf, type Instance } from './failover.js';
import { IbmUnauthorizedError, IbmUnavailableError, ibmRequest } from './http.js';
import { IamTokenSource, iamGrant } from './iam.js';
import { DEFAULT_REQUESTS_PER_SECOND, LIST_PAGE, iamEndpointOf, instanceUrl } from './index.js';

type Json = Record<string, unknown>;

/** Types whose value a client can write: they are copied. */
export const COPYABLE_TYPES = ['arbitrary', 'username_password', 'kv', 'imported_cert'] as const;
export type CopyableType = (typeof COPYABLE_TYPES)[number];

/** Why each other type is not copied as a value (IBM makes those values itself). */
export const NOT_COPYABLE: Readonly<Record<string, string>> = {
  iam_credentials: 'IBM creates its API key for a service ID; create it on the other instance with its own settings',
  public_cert: 'IBM orders it from a certificate authority; order it on the other instance',
  private_cert: "issued by the instance's private CA; set up that CA on the other instance",
  service_credentials: 'IBM creates the credentials at the service instance; create it on the other instance',
};

/** The payload fields of each copyable type, as create and new-version bodies take them. */
const PAYLOAD_FIELDS: Record<CopyableType, readonly string[]> = {
  arbitrary: ['payload'],
  username_password: ['username', 'password'],
  kv: ['data'],
  imported_cert: ['certificate', 'intermediate', 'private_key'],
};

/** Secrets written at once (each instance's budget paces them anyway). */
const CONCURRENCY = 4;
/** The default secret group: it has this id on every instance and need not be listed. */
const DEFAULT_GROUP = 'default';

/** A secret as it goes from one instance to another (and into a backup payload). */
export interface InstanceSecret {
  /** The secret group's name (ids differ between instances). */
  group: string;
  name: string;
  type: CopyableType;
  labels: string[];
  customMetadata: Record<string, unknown>;
  description?: string;
  /** The current version's payload fields of its type (PAYLOAD_FIELDS). */
  payload: Record<string, unknown>;
}

/** A secret left out, and why (never its value). */
export interface SkippedSecret {
  group: string;
  name: string;
  type: string;
  reason: string;
}

export interface InstanceSnapshot {
  secrets: InstanceSecret[];
  skipped: SkippedSecret[];
}

export type TransferOutcome = 'created' | 'updated' | 'unchanged' | 'failed';

export interface TransferItem {
  /** `<group>/<type>/<name>`: what a remoteRef.key names. */
  what: string;
  type: CopyableType;
  outcome: TransferOutcome;
  /** What changed (`value`, `metadata`) or why it failed; names and HTTP statuses only. */
  note?: string;
}

export interface TransferReport {
  dryRun: boolean;
  items: TransferItem[];
  skipped: SkippedSecret[];
  /** Secret groups created on the target (or that would be, in a dry run). */
  groupsCreated: string[];
}

/** One instance, reached directly (no failover), with its own request budget. */
export class IbmInstanceApi {
  constructor(
    readonly instance: Instance,
    private readonly iam: IamTokenSource,
    private readonly budget: RequestBudget,
    private readonly label: string,
    private readonly timeoutMs: number,
    private readonly observe: ProviderContext['observe'],
  ) {}

  /** `region (host)`: how output names the instance. */
  get name(): string {
    const host = hostOf(this.instance.url);
    return this.instance.region === host ? host : `${this.instance.region} (${host})`;
  }

  async request(
    method: 'GET' | 'POST' | 'PATCH',
    path: string,
    what: string,
    opts: CallOptions & { body?: unknown; contentType?: string; key?: string } = {},
  ): Promise<Json> {
    const token = await this.iam.token(opts.signal ? { signal: opts.signal } : {});
    try {
      const answer = await this.observe(
        operationOf(method, path),
        () =>
          ibmRequest({
            method,
            url: `${this.instance.url}${path}`,
            headers: {
              authorization: `Bearer ${token}`,
              ...(opts.contentType ? { 'content-type': opts.contentType } : {}),
            },
            ...(opts.body !== undefined ? { body: opts.body } : {}),
            what: `${this.label}: ${what} at ${hostOf(this.instance.url)}`,
            ...(opts.key !== undefined ? { key: opts.key } : {}),
            signal: opts.signal,
            timeoutMs: this.timeoutMs,
            beforeAttempt: () => this.budget.take(opts.signal),
          }),
        this.instance.region,
      );
      return (answer.body ?? {}) as Json;
    } catch (err) {
      if (err instanceof IbmUnauthorizedError) this.iam.invalidate();
      throw err;
    }
  }
}

/** A store's instances: the primary and its `failover` list, in order. */
export interface IbmStoreInstances {
  label: string;
  primary: IbmInstanceApi;
  failover: IbmInstanceApi[];
}

/**
 * Logs in as the operator would for this store (its API key Secret, trusted
 * profile, or IBMCLOUD_API_KEY for a ClusterSecretStore without auth) and
 * returns its instances. The store's policy is checked as at connect.
 */
export async function connectIbmStore(
  store: AnyStore,
  ctx: ProviderContext,
  opts: CallOptions = {},
): Promise<IbmStoreInstances> {
  const spec = store.spec.provider.ibmSecretsManager;
  const label = storeLabel(store);
  if (!spec) throw new ProviderConfigError(`${label} is not an ibmSecretsManager store`);
  await validateStorePolicy(store, ctx.policy, opts);
  const timeouts = ctx.timeouts ?? DEFAULT_PROVIDER_TIMEOUTS;
  const timeoutMs = timeouts.connectMs + timeouts.requestMs;
  const iam = new IamTokenSource(
    iamEndpointOf(spec),
    await iamGrant(spec, store, ctx, opts),
    label,
    timeoutMs,
    (op, call) => ctx.observe(op, call),
  );
  const rate = spec.requestsPerSecond ?? DEFAULT_REQUESTS_PER_SECOND;
  const api = (instance: Instance) =>
    new IbmInstanceApi(instance, iam, new RequestBudget(rate, { store: label }), label, timeoutMs, (op, call, region) =>
      ctx.observe(op, call, region),
    );
  return {
    label,
    primary: api(instanceUrl(spec, 'spec.provider.ibmSecretsManager')),
    failover: (spec.failover ?? []).map((f, i) =>
      api(instanceUrl(f, `spec.provider.ibmSecretsManager.failover[${i}]`)),
    ),
  };
}

/** The failover instance `--to` names (its region, service URL or host; default the first). */
export function pickFailover(instances: IbmStoreInstances, to: string | undefined): IbmInstanceApi {
  if (instances.failover.length === 0)
    throw new ProviderConfigError(`${instances.label} has no failover instance to copy to`);
  if (to === undefined) return instances.failover[0] as IbmInstanceApi;
  const want = to.replace(/\/+$/, '');
  const found = instances.failover.find(
    (f) => f.instance.region === want || f.instance.url === want || hostOf(f.instance.url) === want,
  );
  if (!found)
    throw new ProviderConfigError(
      `${instances.label} has no failover instance "${want}" (it has ${instances.failover.map((f) => f.name).join(', ')})`,
    );
  return found;
}

/** Secret group id → name, and name → id, of one instance. */
async function groupsOf(api: IbmInstanceApi, opts: CallOptions): Promise<Map<string, string>> {
  const list = await api.request('GET', '/api/v2/secret_groups', 'list secret groups', opts);
  const byId = new Map<string, string>([[DEFAULT_GROUP, DEFAULT_GROUP]]);
  for (const g of Array.isArray(list.secret_groups) ? (list.secret_groups as Json[]) : [])
    if (typeof g.id === 'string' && typeof g.name === 'string') byId.set(g.id, g.name);
  return byId;
}

/** Every secret's metadata (paged), optionally only of some groups (ids). */
async function listSecrets(api: IbmInstanceApi, groupIds: string[] | undefined, opts: CallOptions): Promise<Json[]> {
  const out: Json[] = [];
  for (let offset = 0; ; offset += LIST_PAGE) {
    const params = new URLSearchParams({ offset: String(offset), limit: String(LIST_PAGE), sort: 'name' });
    if (groupIds) params.set('groups', groupIds.join(','));
    const page = await api.request('GET', `/api/v2/secrets?${params.toString()}`, 'list secrets', opts);
    const secrets = Array.isArray(page.secrets) ? (page.secrets as Json[]) : [];
    out.push(...secrets);
    const total = typeof page.total_count === 'number' ? page.total_count : 0;
    if (secrets.length === 0 || offset + secrets.length >= total) return out;
  }
}

const isCopyable = (type: unknown): type is CopyableType =>
  typeof type === 'string' && (COPYABLE_TYPES as readonly string[]).includes(type);

/**
 * The copyable secrets of an instance (optionally only of the named secret
 * groups), listed page by page, and those of other types, left out.
 */
async function listSource(api: IbmInstanceApi, opts: CallOptions & { groups?: readonly string[] }): Promise<Listed> {
  const groups = await groupsOf(api, opts);
  let groupIds: string[] | undefined;
  if (opts.groups && opts.groups.length > 0) {
    const byName = new Map([...groups].map(([id, name]) => [name, id]));
    groupIds = opts.groups.map((name) => {
      const id = byName.get(name);
      if (id === undefined) throw new ProviderConfigError(`there is no secret group "${name}" at ${api.name}`);
      return id;
    });
  }
  const skipped: SkippedSecret[] = [];
  const wanted: ListedSecret[] = [];
  for (const s of await listSecrets(api, groupIds, opts)) {
    const group = groups.get(String(s.secret_group_id)) ?? String(s.secret_group_id);
    const name = String(s.name);
    const type = String(s.secret_type);
    if (!isCopyable(type)) {
      skipped.push({ group, name, type, reason: NOT_COPYABLE[type] ?? 'a type this secretsync cannot copy' });
      continue;
    }
    wanted.push({ id: String(s.id), group, name, type, meta: s });
  }
  return { wanted, skipped };
}

interface ListedSecret {
  id: string;
  group: string;
  name: string;
  type: CopyableType;
  meta: Json;
}

interface Listed {
  wanted: ListedSecret[];
  skipped: SkippedSecret[];
}

/** One listed secret with its current value, or why it has none to copy. */
async function readOne(
  api: IbmInstanceApi,
  w: ListedSecret,
  opts: CallOptions,
): Promise<{ secret: InstanceSecret } | { skipped: SkippedSecret }> {
  let body: Json;
  try {
    body = await api.request('GET', `/api/v2/secrets/${enc(w.id)}`, `secret "${keyOf(w)}"`, { ...opts, key: w.id });
  } catch (err) {
    if (!(err instanceof KeyNotFoundError)) throw err;
    return { skipped: { group: w.group, name: w.name, type: w.type, reason: 'deleted while the copy read it' } };
  }
  const payload = payloadOf(w.type, body);
  if (Object.keys(payload).length === 0) {
    // A destroyed or deactivated secret answers without its value: there is nothing to copy.
    const state = typeof body.state_description === 'string' ? ` (${body.state_description})` : '';
    return { skipped: { group: w.group, name: w.name, type: w.type, reason: `it holds no value${state}` } };
  }
  return {
    secret: {
      group: w.group,
      name: w.name,
      type: w.type,
      labels: stringList(w.meta.labels),
      customMetadata: objectOf(w.meta.custom_metadata),
      ...(typeof w.meta.description === 'string' ? { description: w.meta.description } : {}),
      payload,
    },
  };
}

/**
 * The current value and metadata of every copyable secret of an instance
 * (optionally only of the named secret groups), and what was left out.
 */
export async function readInstanceSecrets(
  api: IbmInstanceApi,
  opts: CallOptions & { groups?: readonly string[] } = {},
): Promise<InstanceSnapshot> {
  const listed = await listSource(api, opts);
  const read = new Array<Awaited<ReturnType<typeof readOne>> | undefined>(listed.wanted.length);
  await eachLimit(listed.wanted, CONCURRENCY, async (w, i) => {
    read[i] = await readOne(api, w, opts);
  });
  const secrets: InstanceSecret[] = [];
  const skipped = [...listed.skipped];
  for (const r of read) {
    if (r && 'secret' in r) secrets.push(r.secret);
    else if (r) skipped.push(r.skipped);
  }
  return { secrets, skipped };
}

/** What a target instance has: its secret groups (created as needed) and its secrets, by group name/type/name. */
interface TargetPlan {
  api: IbmInstanceApi;
  dry: boolean;
  groupIdsByName: Map<string, string>;
  /** Groups that could not be created, and why: their secrets fail. */
  groupFailures: Map<string, string>;
  groupsCreated: string[];
  existing: Map<string, Json>;
}

async function planTarget(
  api: IbmInstanceApi,
  groupNames: ReadonlySet<string>,
  dry: boolean,
  opts: CallOptions,
): Promise<TargetPlan> {
  const groupIdsByName = new Map([...(await groupsOf(api, opts))].map(([id, name]) => [name, id]));
  const groupsCreated: string[] = [];
  const groupFailures = new Map<string, string>();
  for (const group of groupNames) {
    if (groupIdsByName.has(group)) continue;
    if (dry) {
      groupsCreated.push(group);
      continue;
    }
    try {
      const made = await api.request('POST', '/api/v2/secret_groups', `create secret group "${group}"`, {
        ...opts,
        body: { name: group },
      });
      groupIdsByName.set(group, String(made.id));
      groupsCreated.push(group);
    } catch (err) {
      groupFailures.set(group, `secret group: ${messageOf(err)}`);
    }
  }
  const groupNamesById = new Map([...groupIdsByName].map(([name, id]) => [id, name]));
  const existing = new Map<string, Json>();
  for (const s of await listSecrets(api, undefined, opts)) {
    const group = groupNamesById.get(String(s.secret_group_id)) ?? String(s.secret_group_id);
    existing.set(keyOf({ group, type: String(s.secret_type), name: String(s.name) }), s);
  }
  return { api, dry, groupIdsByName, groupFailures, groupsCreated, existing };
}

/** One secret into the target: created, a new version and/or a metadata patch where they differ, or unchanged. */
async function writeOne(plan: TargetPlan, s: InstanceSecret, opts: CallOptions): Promise<TransferItem> {
  const { api, dry } = plan;
  const what = keyOf(s);
  const groupFailure = plan.groupFailures.get(s.group);
  if (groupFailure !== undefined) return { what, type: s.type, outcome: 'failed', note: groupFailure };
  try {
    const have = plan.existing.get(what);
    if (!have) {
      if (!dry)
        await api.request('POST', '/api/v2/secrets', `create secret "${what}"`, {
          ...opts,
          body: {
            name: s.name,
            secret_type: s.type,
            secret_group_id: plan.groupIdsByName.get(s.group),
            labels: s.labels,
            custom_metadata: s.customMetadata,
            ...(s.description !== undefined ? { description: s.description } : {}),
            ...s.payload,
          },
        });
      return { what, type: s.type, outcome: 'created' };
    }
    const id = String(have.id);
    const current = payloadOf(s.type, await api.request('GET', `/api/v2/secrets/${enc(id)}`, `secret "${what}"`, opts));
    const valueDiffers = !samePayload(s.payload, current);
    const metadataDiffers =
      !isDeepStrictEqual([...s.labels].sort(), stringList(have.labels).sort()) ||
      !isDeepStrictEqual(s.customMetadata, objectOf(have.custom_metadata)) ||
      (s.description ?? '') !== (typeof have.description === 'string' ? have.description : '');
    if (valueDiffers && s.type === 'username_password' && s.payload.username !== current.username)
      return {
        what,
        type: s.type,
        outcome: 'failed',
        note: 'its username differs, and IBM keeps a username_password secret’s username: delete it there, then copy again',
      };
    if (!dry && valueDiffers)
      await api.request('POST', `/api/v2/secrets/${enc(id)}/versions`, `new version of secret "${what}"`, {
        ...opts,
        body: versionBody(s),
      });
    if (!dry && metadataDiffers)
      await api.request('PATCH', `/api/v2/secrets/${enc(id)}/metadata`, `metadata of secret "${what}"`, {
        ...opts,
        contentType: 'application/merge-patch+json',
        body: metadataPatch(s, objectOf(have.custom_metadata)),
      });
    const changed = [valueDiffers ? 'value' : '', metadataDiffers ? 'metadata' : ''].filter(Boolean);
    return changed.length > 0
      ? { what, type: s.type, outcome: 'updated', note: changed.join(' and ') }
      : { what, type: s.type, outcome: 'unchanged' };
  } catch (err) {
    // An instance that does not answer fails every secret alike, each after its retries: stop at the first.
    if (err instanceof IbmUnavailableError) throw err;
    return { what, type: s.type, outcome: 'failed', note: messageOf(err) };
  }
}

/**
 * Writes secrets into an instance: creates the missing ones (and their secret
 * groups), writes a new version where the value differs and patches the
 * metadata where it differs; with `dryRun` it only compares. A secret that
 * cannot be written is a `failed` item; the others go on.
 */
export async function writeInstanceSecrets(
  api: IbmInstanceApi,
  secrets: readonly InstanceSecret[],
  opts: CallOptions & { dryRun?: boolean } = {},
): Promise<Omit<TransferReport, 'skipped'>> {
  const dry = opts.dryRun === true;
  const plan = await planTarget(api, new Set(secrets.map((s) => s.group)), dry, opts);
  const items = new Array<TransferItem>(secrets.length);
  await eachLimit(secrets, CONCURRENCY, async (s, i) => {
    items[i] = await writeOne(plan, s, opts);
  });
  return { dryRun: dry, items, groupsCreated: plan.groupsCreated };
}

/**
 * `secretsync ibm copy-to-secondary`: the primary's secrets into a failover
 * instance. Each secret is written as soon as it is read, so both instances'
 * budgets are used at once (a copy takes about as long as reading the primary).
 */
export async function copyToSecondary(
  store: AnyStore,
  ctx: ProviderContext,
  opts: CallOptions & { to?: string; groups?: readonly string[]; dryRun?: boolean } = {},
): Promise<TransferReport & { from: string; to: string }> {
  const instances = await connectIbmStore(store, ctx, opts);
  const target = pickFailover(instances, opts.to);
  const dry = opts.dryRun === true;
  const listed = await listSource(instances.primary, opts);
  const plan = await planTarget(target, new Set(listed.wanted.map((w) => w.group)), dry, opts);
  const items = new Array<TransferItem | undefined>(listed.wanted.length);
  const skipped = new Array<SkippedSecret | undefined>(listed.wanted.length);
  // Twice the workers: each spends about half its time on either instance.
  await eachLimit(listed.wanted, 2 * CONCURRENCY, async (w, i) => {
    const read = await readOne(instances.primary, w, opts);
    if ('skipped' in read) skipped[i] = read.skipped;
    else items[i] = await writeOne(plan, read.secret, opts);
  });
  return {
    dryRun: dry,
    items: items.filter((i): i is TransferItem => i !== undefined),
    skipped: [...listed.skipped, ...skipped.filter((s): s is SkippedSecret => s !== undefined)],
    groupsCreated: plan.groupsCreated,
    from: instances.primary.name,
    to: target.name,
  };
}

/** Counts per outcome, and skipped secrets per type, for a summary line. */
export function summarizeTransfer(report: Pick<TransferReport, 'items' | 'skipped'>): {
  outcomes: Record<TransferOutcome, number>;
  skippedByType: Record<string, number>;
} {
  const outcomes: Record<TransferOutcome, number> = { created: 0, updated: 0, unchanged: 0, failed: 0 };
  for (const i of report.items) outcomes[i.outcome]++;
  const skippedByType: Record<string, number> = {};
  for (const s of report.skipped) skippedByType[s.type] = (skippedByType[s.type] ?? 0) + 1;
  return { outcomes, skippedByType };
}

function versionBody(s: InstanceSecret): Json {
  // A username_password version takes a new password; the username stays the secret's.
  if (s.type === 'username_password') return { password: s.payload.password };
  return { ...s.payload };
}

/** A JSON merge patch that makes the target's metadata the source's (keys only the target has are removed). */
function metadataPatch(s: InstanceSecret, targetCustom: Record<string, unknown>): Json {
  const custom: Record<string, unknown> = { ...s.customMetadata };
  for (const k of Object.keys(targetCustom)) if (!(k in custom)) custom[k] = null;
  return { labels: s.labels, custom_metadata: custom, description: s.description ?? null };
}

function payloadOf(type: CopyableType, body: Json): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of PAYLOAD_FIELDS[type])
    if (body[field] !== undefined && body[field] !== null) out[field] = body[field];
  return out;
}

function samePayload(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return isDeepStrictEqual(a, b);
}

function keyOf(s: { group: string; type: string; name: string }): string {
  return `${s.group}/${s.type}/${s.name}`;
}

function stringList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function objectOf(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? { ...(v as Json) } : {};
}

function enc(part: string): string {
  return encodeURIComponent(part);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The provider's operation name of a call, for metrics (no ids or names). */
function operationOf(method: string, path: string): string {
  const p = path.split('?')[0] ?? path;
  if (p === '/api/v2/secret_groups') return method === 'POST' ? 'CreateSecretGroup' : 'ListSecretGroups';
  if (p === '/api/v2/secrets') return method === 'POST' ? 'CreateSecret' : 'ListSecrets';
  if (p.endsWith('/metadata')) return 'UpdateSecretMetadata';
  if (p.endsWith('/versions')) return 'CreateSecretVersion';
  return 'GetSecret';
}

async function eachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
