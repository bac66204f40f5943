// Applies an opened backup to a cluster (and a local store directory),
// idempotently: each object is compared with what is there and created,
// changed or left alone, and every outcome is reported. Problems that would
// leave a half-applied restore (missing CRDs, missing namespaces, a local
// store under another master key) are found before anything is written.
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { boundedText } from '../api/errors.js';
import { ANNOTATION_MANAGED_SECRET, API_VERSION } from '../api/types.js';
import { isConflict, isNotFound, type KubeClient, type KubeObject, type OwnerReference } from '../kube/client.js';
import {
  MANIFEST_FILE,
  MANIFEST_JOURNAL_FILE,
  peekEntryFile,
  peekManifestRecords,
  rollbackProblem,
  validateEntryName,
} from '../providers/local/store.js';
import { LABEL_MANAGED, type SecretObject } from '../secrets/desired.js';
import { entryFileName, type ProgressCallback } from './export.js';
import { NOTHING_APPLIED, type BackupPayload, type ExportedObject, type SyncedSecret } from './format.js';
import {
  BACKUP_KINDS,
  collectionPath,
  describeObject,
  kindOf,
  kindOrThrow,
  objectPath,
  referencedSecrets,
} from './kinds.js';

export type Outcome = 'created' | 'changed' | 'unchanged' | 'kept' | 'skipped' | 'failed';

export interface RestoreItem {
  /** "ManagedSecret team-a/db", "Secret team-a/db", "Namespace team-a", "local store entry db/prod". */
  what: string;
  outcome: Outcome;
  /** Why it was kept, skipped or failed (names, never values). */
  note?: string;
}

export interface RestoreOptions {
  /** Report only; the API server still validates creates and updates with dryRun=All. */
  dryRun?: boolean;
  /** Create namespaces the backup needs; without it a missing namespace stops the restore before it starts. */
  createNamespaces?: boolean;
  /** Replace a synced Secret (one secretsync wrote) whose data differs from the backup. */
  overwriteSynced?: boolean;
  /** Where to write the backup's local store entries. */
  localStoreDir?: string;
  /** Replace local store entry files that differ from the backup. */
  overwriteLocalStore?: boolean;
  /** The operator's namespace on the target cluster, where ReplicationTargets' kubeconfig Secrets belong. */
  operatorNamespace?: string;
  /** Told as namespaces are checked and objects applied: step names and counts only. */
  onProgress?: ProgressCallback;
}

export interface RestoreReport {
  items: RestoreItem[];
  /** Things to do by hand (Secrets the restored stores and ReplicationTargets read, which backups do not hold). */
  notes: string[];
}

/** A refusal before anything was written. */
export class RestorePreflightError extends Error {
  constructor(message: string) {
    super(`${message}; ${NOTHING_APPLIED}`);
    this.name = 'RestorePreflightError';
  }
}

const SECRETS = (ns: string) => `/api/v1/namespaces/${ns}/secrets`;
/** Requests in flight at once while applying one kind. */
const CONCURRENCY = 8;

/** `fn` over `items`, at most `limit` at a time, results in the order of `items`. */
async function mapConcurrently<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export async function restoreBackup(
  client: KubeClient,
  payload: BackupPayload,
  options: RestoreOptions = {},
): Promise<RestoreReport> {
  const items: RestoreItem[] = [];
  const dry = options.dryRun === true;
  const dryQuery: Record<string, string> = dry ? { dryRun: 'All' } : {};

  // --- preflight: nothing is written until all of it passes --------------------------------
  const served = new Map<string, boolean>();
  for (const k of BACKUP_KINDS) {
    try {
      await client.get(collectionPath(k), { limit: 1 });
      served.set(k.kind, true);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      if (!k.optional) {
        throw new RestorePreflightError(
          `the target cluster does not serve ${k.kind} (are the secretsync CRDs installed? see crds/ or the Helm chart)`,
        );
      }
      served.set(k.kind, false);
    }
  }
  for (const o of payload.objects) {
    if (!kindOf(o.kind)) throw new RestorePreflightError(`the backup holds an unknown kind ${boundedText(o.kind, 60)}`);
  }
  const namespaces = new Set<string>();
  for (const o of payload.objects)
    if (kindOf(o.kind)?.namespaced && o.metadata.namespace) namespaces.add(o.metadata.namespace);
  for (const s of payload.syncedSecrets ?? []) namespaces.add(s.namespace);
  const missingNamespaces: string[] = [];
  let checked = 0;
  for (const ns of [...namespaces].sort()) {
    options.onProgress?.('namespaces checked', checked++, namespaces.size);
    try {
      await client.get(`/api/v1/namespaces/${ns}`);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      missingNamespaces.push(ns);
    }
  }
  if (namespaces.size > 0) options.onProgress?.('namespaces checked', checked, namespaces.size);
  if (missingNamespaces.length > 0 && !options.createNamespaces) {
    throw new RestorePreflightError(
      `namespaces missing on the target cluster: ${missingNamespaces.join(', ')} (create them, or pass --create-namespaces)`,
    );
  }
  const localPlan = payload.localStore ? await planLocalStore(payload, options) : undefined;

  // --- apply ---------------------------------------------------------------------------
  // One unit per report item: namespaces created, local store entries (and manifest), objects, synced Secrets.
  const synced = payload.syncedSecrets ?? [];
  const total =
    missingNamespaces.length +
    (localPlan ? localPlan.entries.length + (localPlan.manifest !== undefined ? 1 : 0) : payload.localStore ? 1 : 0) +
    payload.objects.length +
    synced.length;
  let applied = 0;
  const step = dry ? 'objects compared (dry run)' : 'objects applied';
  const tick = (n = 1) => options.onProgress?.(step, (applied += n), total);
  options.onProgress?.(step, 0, total);
  const missing = new Set(missingNamespaces);
  for (const ns of missingNamespaces) {
    const what = `Namespace ${ns}`;
    if (dry) {
      items.push({ what, outcome: 'created', note: 'the objects in it are not validated by the server in a dry run' });
      tick();
      continue;
    }
    try {
      await client.request('POST', '/api/v1/namespaces', {
        body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
      });
      items.push({ what, outcome: 'created' });
      missing.delete(ns);
    } catch (err) {
      items.push({ what, outcome: 'failed', note: messageOf(err) });
    }
    tick();
  }

  if (localPlan) {
    const local = await applyLocalStore(localPlan, dry);
    items.push(...local);
    tick(local.length);
  } else if (payload.localStore) {
    items.push({
      what: `${payload.localStore.length} local store entries`,
      outcome: 'skipped',
      note: 'give --local-store-dir to restore them',
    });
    tick();
  }

  for (const k of BACKUP_KINDS) {
    const objects = payload.objects.filter((o) => o.kind === k.kind);
    if (served.get(k.kind) === false) {
      for (const o of objects) {
        items.push({
          what: describeObject(o.kind, o.metadata.name, o.metadata.namespace),
          outcome: 'skipped',
          note: `the target cluster does not serve ${k.kind} (CRD not installed)`,
        });
      }
      tick(objects.length);
      continue;
    }
    if (objects.length === 0) continue;
    // One list per kind instead of a GET per object; objects of one kind are independent, so several
    // are applied at once and reported in the backup's order.
    const listed = await listIndex(client, collectionPath(k));
    items.push(
      ...(await mapConcurrently(objects, CONCURRENCY, async (o) => {
        const item = await applyObject(
          client,
          o,
          dryQuery,
          dry && o.metadata.namespace !== undefined && missing.has(o.metadata.namespace),
          listed,
        );
        tick();
        return item;
      })),
    );
  }

  // After the ManagedSecrets, so that each Secret gets an owner reference to the restored one (by its uid here).
  if (synced.length > 0) {
    const uids = new Map<string, string>();
    if (!dry) {
      for (const [key, ms] of await listIndex(client, collectionPath(kindOrThrow('ManagedSecret')))) {
        if (ms.metadata.uid) uids.set(key, ms.metadata.uid);
      }
    }
    const listed = await listIndex<SecretObject>(client, '/api/v1/secrets', { labelSelector: `${LABEL_MANAGED}=true` });
    items.push(
      ...(await mapConcurrently(synced, CONCURRENCY, async (s) => {
        const item = await applySecret(client, s, options, dryQuery, dry && missing.has(s.namespace), listed, uids);
        tick();
        return item;
      })),
    );
  }
  return { items, notes: await missingCredentialSecrets(client, payload, options.operatorNamespace, served) };
}

/**
 * Notes for the Secrets the restored objects read that the target cluster lacks: store credentials and
 * master keys, and ReplicationTarget kubeconfigs (in the operator namespace). Backups hold none of them.
 */
async function missingCredentialSecrets(
  client: KubeClient,
  payload: BackupPayload,
  operatorNamespace: string | undefined,
  served: Map<string, boolean>,
): Promise<string[]> {
  const notes: string[] = [];
  for (const o of payload.objects) {
    // A ReplicationTarget the target cluster does not serve was skipped: its kubeconfig is not needed there.
    if (served.get(o.kind) === false) continue;
    for (const ref of referencedSecrets(o, operatorNamespace)) {
      try {
        await client.get(`${SECRETS(ref.namespace)}/${encodeURIComponent(ref.name)}`);
      } catch (err) {
        if (!isNotFound(err)) continue;
        const who = describeObject(o.kind, o.metadata.name, o.metadata.namespace);
        notes.push(
          o.kind === 'ReplicationTarget'
            ? `${who} reads its kubeconfig from Secret ${ref.namespace}/${ref.name}, which is not on the target cluster (backups do not hold credentials; create it there, or the target replicates nothing)`
            : `${who} reads Secret ${ref.namespace}/${ref.name}, which is not on the target cluster (backups do not hold store credentials or master keys; create it)`,
        );
      }
    }
  }
  return notes;
}

/** Whether an existing object already is what the backup holds: same spec, and the backup's labels and annotations present. */
export function objectMatches(want: ExportedObject, have: KubeObject): boolean {
  return (
    isDeepStrictEqual(want.spec, have.spec ?? {}) &&
    subset(want.metadata.labels, have.metadata.labels) &&
    subset(want.metadata.annotations, have.metadata.annotations)
  );
}

const subset = (want: Record<string, string> | undefined, have: Record<string, string> | undefined) =>
  Object.entries(want ?? {}).every(([k, v]) => have?.[k] === v);

async function applyObject(
  client: KubeClient,
  o: ExportedObject,
  dryQuery: Record<string, string>,
  skipValidation: boolean,
  listed: Map<string, KubeObject>,
): Promise<RestoreItem> {
  const k = kindOf(o.kind);
  const ns = o.metadata.namespace;
  const what = describeObject(o.kind, o.metadata.name, ns);
  if (!k) return { what, outcome: 'failed', note: 'unknown kind' };
  return withConflictRetry(what, async (attempt) => {
    let existing: KubeObject | undefined;
    if (!skipValidation) {
      // The first attempt trusts the list made before applying; a retry after a conflict reads afresh.
      existing =
        attempt === 1
          ? listed.get(keyOf(ns, o.metadata.name))
          : await getIfExists<KubeObject>(client, objectPath(k, o.metadata.name, ns));
    }
    if (!existing) {
      if (!skipValidation) {
        await client.request('POST', collectionPath(k, ns), {
          query: dryQuery,
          body: { apiVersion: API_VERSION, kind: o.kind, metadata: o.metadata, spec: o.spec },
        });
      }
      return { what, outcome: 'created' };
    }
    if (objectMatches(o, existing)) return { what, outcome: 'unchanged' };
    // The spec is the backup's; labels and annotations are merged (others' additions stay).
    await client.request('PUT', objectPath(k, o.metadata.name, ns), {
      query: dryQuery,
      body: {
        ...existing,
        metadata: {
          ...existing.metadata,
          labels: { ...existing.metadata.labels, ...o.metadata.labels },
          annotations: { ...existing.metadata.annotations, ...o.metadata.annotations },
        },
        spec: o.spec,
      },
    });
    return { what, outcome: 'changed' };
  });
}

/**
 * Runs a read-compare-write; when someone else wrote in between (409: the
 * operator adopting, a GitOps tool), it compares afresh, up to 3 times.
 */
async function withConflictRetry(what: string, fn: (attempt: number) => Promise<RestoreItem>): Promise<RestoreItem> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (isConflict(err) && attempt < 3) continue;
      return { what, outcome: 'failed', note: messageOf(err) };
    }
  }
}

/** Whether an existing Secret holds the backup's data already. */
export function secretMatches(want: SyncedSecret, have: SecretObject): boolean {
  return (have.type ?? 'Opaque') === want.type && isDeepStrictEqual(have.data ?? {}, want.data);
}

async function applySecret(
  client: KubeClient,
  s: SyncedSecret,
  options: RestoreOptions,
  dryQuery: Record<string, string>,
  skipValidation: boolean,
  listed: Map<string, SecretObject>,
  managedSecretUids: Map<string, string>,
): Promise<RestoreItem> {
  const what = `Secret ${s.namespace}/${s.name}`;
  if (skipValidation) return { what, outcome: 'created' };
  return withConflictRetry(what, async (attempt) => {
    // Only our labelled Secrets were listed: another one by that name shows up as a 409 on create, then here.
    const existing =
      attempt === 1
        ? listed.get(keyOf(s.namespace, s.name))
        : await getIfExists<SecretObject>(client, `${SECRETS(s.namespace)}/${encodeURIComponent(s.name)}`);
    const owner = ownerFor(s, managedSecretUids);
    if (!existing) {
      await client.request('POST', SECRETS(s.namespace), {
        query: dryQuery,
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: {
            name: s.name,
            labels: s.labels,
            annotations: s.annotations,
            ...(owner ? { ownerReferences: [owner] } : {}),
          },
          type: s.type,
          data: s.data,
          ...(s.immutable ? { immutable: true } : {}),
        },
      });
      return { what, outcome: 'created' };
    }
    if (secretMatches(s, existing)) return { what, outcome: 'unchanged' };
    const writer = existing.metadata.annotations?.[ANNOTATION_MANAGED_SECRET];
    const ours = s.annotations[ANNOTATION_MANAGED_SECRET];
    if (writer === undefined || writer !== ours) {
      return {
        what,
        outcome: 'kept',
        note: `its data differs and it is not managed by ManagedSecret ${ours ?? '?'}; never overwritten`,
      };
    }
    if (!options.overwriteSynced) {
      return { what, outcome: 'kept', note: 'its data differs from the backup; --overwrite-synced replaces it' };
    }
    if (existing.immutable) return { what, outcome: 'kept', note: 'its data differs but it is immutable' };
    await client.request('PUT', `${SECRETS(s.namespace)}/${encodeURIComponent(s.name)}`, {
      query: dryQuery,
      body: {
        ...existing,
        metadata: {
          ...existing.metadata,
          labels: { ...existing.metadata.labels, ...s.labels },
          annotations: { ...existing.metadata.annotations, ...s.annotations },
        },
        type: s.type,
        data: s.data,
      },
    });
    return { what, outcome: 'changed' };
  });
}

/** The owner reference to the restored ManagedSecret (its uid on this cluster), if it owned the Secret before. */
function ownerFor(s: SyncedSecret, managedSecretUids: Map<string, string>): OwnerReference | undefined {
  const uid = s.ownerManagedSecret ? managedSecretUids.get(keyOf(s.namespace, s.ownerManagedSecret)) : undefined;
  if (!s.ownerManagedSecret || !uid) return undefined;
  return {
    apiVersion: API_VERSION,
    kind: 'ManagedSecret',
    name: s.ownerManagedSecret,
    uid,
    controller: true,
    blockOwnerDeletion: false,
  };
}

const keyOf = (namespace: string | undefined, name: string) => `${namespace ?? ''}/${name}`;

async function getIfExists<T>(client: KubeClient, path: string): Promise<T | undefined> {
  try {
    return await client.get<T>(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Every object of a collection (all namespaces), by namespace/name. */
async function listIndex<T extends KubeObject>(
  client: KubeClient,
  path: string,
  query: Record<string, string> = {},
): Promise<Map<string, T>> {
  const list = await client.list<T>(path, query);
  return new Map(list.items.map((o) => [keyOf(o.metadata.namespace, o.metadata.name), o]));
}

// --- the local store ------------------------------------------------------------------

/** The local store part of a restore on its own: the same checks, then the same writes. */
export async function restoreLocalStore(payload: BackupPayload, options: RestoreOptions): Promise<RestoreItem[]> {
  const plan = await planLocalStore(payload, options);
  return plan ? applyLocalStore(plan, options.dryRun === true) : [];
}

interface LocalPlan {
  dir: string;
  overwrite: boolean;
  entries: { name: string; file: string; path: string; existing: string | undefined }[];
  /** The backup's manifest.json and the directory's, as text. */
  manifest: string | undefined;
  existingManifest: string | undefined;
  /** The same for manifest.journal: it goes with its manifest.json. */
  journal: string | undefined;
  existingJournal: string | undefined;
}

async function planLocalStore(payload: BackupPayload, options: RestoreOptions): Promise<LocalPlan | undefined> {
  const dir = options.localStoreDir;
  if (dir === undefined) return undefined;
  const backupKeys = new Set<string>();
  const entries: LocalPlan['entries'] = [];
  for (const e of payload.localStore ?? []) {
    try {
      validateEntryName(e.name);
    } catch {
      throw new RestorePreflightError(`the backup holds a local store entry with an invalid name`);
    }
    for (const k of keyIdsOf(e.file)) backupKeys.add(k);
    const path = join(dir, entryFileName(e.name));
    entries.push({ name: e.name, file: e.file, path, existing: await readIfExists(path) });
  }
  const manifest = payload.localStoreManifest;
  if (manifest !== undefined) backupKeys.add(manifestKeyIdOf(manifest));
  // Entries under another master key than the directory's would split the store.
  const present = new Set<string>();
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') {
      throw new RestorePreflightError(`cannot read --local-store-dir ${dir}: ${messageOf(err)}`);
    }
  }
  for (const n of names.filter((x) => /^[0-9a-f]{64}\.json$/.test(x))) {
    const text = await readIfExists(join(dir, n));
    if (text !== undefined) for (const k of keyIdsOf(text)) present.add(k);
  }
  const existingManifest = await readIfExists(join(dir, MANIFEST_FILE));
  if (existingManifest !== undefined) present.add(manifestKeyIdOf(existingManifest));
  const foreign = [...backupKeys].filter((k) => present.size > 0 && !present.has(k));
  if (foreign.length > 0) {
    throw new RestorePreflightError(
      `--local-store-dir ${dir} holds entries under master key id ${keyIdList(present)}, the backup's entries use ${keyIdList(backupKeys)}; restore into an empty directory or one of the same store`,
    );
  }
  const journal = manifest === undefined ? undefined : payload.localStoreManifestJournal;
  const existingJournal = await readIfExists(join(dir, MANIFEST_JOURNAL_FILE));
  return {
    dir,
    overwrite: options.overwriteLocalStore === true,
    entries,
    manifest,
    existingManifest,
    journal,
    existingJournal,
  };
}

/**
 * Entry files first, then the manifest (the store's own write order). The
 * backup's manifest is written where the directory has none, or over it with
 * --overwrite-local-store (the store then goes back to the backup as a whole).
 * An entry file the resulting manifest says is older than the store's is
 * refused when read (the store detects rollback); the restore notes which, so
 * a person can accept them with `secretsync store reseal NAME --accept`.
 */
async function applyLocalStore(plan: LocalPlan, dry: boolean): Promise<RestoreItem[]> {
  const items: RestoreItem[] = [];
  if (!dry) await mkdir(plan.dir, { recursive: true, mode: 0o700 });
  const onDisk = new Map<string, string | undefined>();
  for (const e of plan.entries) {
    const what = `local store entry ${e.name}`;
    if (e.existing === e.file) {
      items.push({ what, outcome: 'unchanged' });
      onDisk.set(e.name, e.existing);
      continue;
    }
    if (e.existing !== undefined && !plan.overwrite) {
      items.push({
        what,
        outcome: 'kept',
        note: 'its file differs from the backup; --overwrite-local-store replaces it',
      });
      onDisk.set(e.name, e.existing);
      continue;
    }
    try {
      if (!dry) await writeAtomically(e.path, e.file);
      items.push({ what, outcome: e.existing === undefined ? 'created' : 'changed' });
      onDisk.set(e.name, e.file);
    } catch (err) {
      items.push({ what, outcome: 'failed', note: messageOf(err) });
      onDisk.set(e.name, e.existing);
    }
  }
  let finalManifest = plan.existingManifest;
  let finalJournal = plan.existingJournal;
  if (plan.manifest !== undefined) {
    const what = 'local store manifest';
    if (plan.existingManifest === plan.manifest && plan.existingJournal === plan.journal) {
      items.push({ what, outcome: 'unchanged' });
    } else if (plan.existingManifest !== undefined && !plan.overwrite) {
      items.push({
        what,
        outcome: 'kept',
        note: "the directory's manifest differs from the backup's; --overwrite-local-store replaces it, taking the whole store back to the backup",
      });
    } else {
      try {
        if (!dry) {
          await writeAtomically(join(plan.dir, MANIFEST_FILE), plan.manifest);
          // The directory's journal continues the directory's manifest.json, not the backup's: replaced or removed.
          if (plan.journal !== undefined) await writeAtomically(join(plan.dir, MANIFEST_JOURNAL_FILE), plan.journal);
          else await rm(join(plan.dir, MANIFEST_JOURNAL_FILE), { force: true });
        }
        items.push({ what, outcome: plan.existingManifest === undefined ? 'created' : 'changed' });
        finalManifest = plan.manifest;
        finalJournal = plan.journal;
      } catch (err) {
        items.push({ what, outcome: 'failed', note: messageOf(err) });
      }
    }
  }
  // Without the master key nothing is authenticated here; the plaintext generations and digests say enough.
  const records = finalManifest === undefined ? undefined : peekManifestRecords(finalManifest, finalJournal);
  for (const item of items) {
    const name = item.what.startsWith('local store entry ') ? item.what.slice('local store entry '.length) : undefined;
    const text = name === undefined ? undefined : onDisk.get(name);
    const file = text === undefined ? undefined : peekEntryFile(text);
    if (name === undefined || !file || (finalManifest !== undefined && !records)) continue;
    const problem = rollbackProblem(name, file, records);
    if (problem) {
      const warning = `the store will refuse it as tampered: ${problem}`;
      item.note = item.note ? `${item.note}; ${warning}` : warning;
    }
  }
  return items;
}

/** Temp file, rename over the target: the store never sees a torn file (same as the store's own writes). */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, text, { mode: 0o600, flush: true });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

function manifestKeyIdOf(text: string): string {
  try {
    const parsed = JSON.parse(text) as { keyId?: unknown };
    if (typeof parsed.keyId === 'string') return parsed.keyId;
  } catch {
    // Reported below.
  }
  throw new RestorePreflightError('a local store manifest in the backup or the directory is not a manifest');
}

/** Key ids as read from files (not yet checked): a few, each one bounded line, for a message. */
function keyIdList(ids: ReadonlySet<string>): string {
  const shown = [...ids].slice(0, 4).map((k) => boundedText(k, 40));
  return ids.size > shown.length ? `${shown.join(', ')} and ${ids.size - shown.length} more` : shown.join(', ');
}

function keyIdsOf(text: string): string[] {
  try {
    const parsed = JSON.parse(text) as { versions?: { keyId?: unknown }[] };
    return (parsed.versions ?? []).map((v) => v.keyId).filter((k): k is string => typeof k === 'string');
  } catch {
    throw new RestorePreflightError('a local store entry file in the backup or the directory is not JSON');
  }
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return undefined;
    throw err;
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Counts per outcome, for the summary line. */
export function summarize(report: RestoreReport): Record<Outcome, number> {
  const counts: Record<Outcome, number> = { created: 0, changed: 0, unchanged: 0, kept: 0, skipped: 0, failed: 0 };
  for (const i of report.items) counts[i.outcome]++;
  return counts;
}
