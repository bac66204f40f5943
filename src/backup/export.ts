// Collects what a backup holds: the custom resources (specs without what the
// cluster assigned), optionally the local store's entry files and manifest as
// they are on disk, and optionally the Secrets secretsync wrote — except those that are
// credentials (a store's, or a ReplicationTarget's kubeconfig): backups hold none.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { API_VERSION } from '../api/types.js';
import { isNotFound, type KubeClient, type KubeObject } from '../kube/client.js';
import { MANIFEST_FILE, MANIFEST_JOURNAL_FILE } from '../providers/local/store.js';
import { LABEL_MANAGED, type SecretObject } from '../secrets/desired.js';
import { BACKUP_KINDS, collectionPath, describeObject, referencedSecrets } from './kinds.js';
import type { BackupContents, BackupPayload, ExportedObject, LocalStoreEntryFile, SyncedSecret } from './format.js';

const ENTRY_FILE = /^[0-9a-f]{64}\.json$/;

/**
 * Metadata kept: name, namespace, labels, annotations. Everything the cluster
 * assigns (uid, resourceVersion, generation, creationTimestamp, managedFields),
 * status, owner references (they name uids of the source cluster; the garbage
 * collector would delete a restored object whose owner uid does not exist) and
 * finalizers (they belong to controllers of the source cluster, and would block
 * deletion on the target if nobody there removes them) are dropped.
 */
export function exportObject(obj: KubeObject): ExportedObject {
  const { name, namespace, labels, annotations } = obj.metadata;
  return {
    apiVersion: obj.apiVersion ?? API_VERSION,
    kind: obj.kind ?? '',
    metadata: {
      name,
      ...(namespace ? { namespace } : {}),
      ...(labels && Object.keys(labels).length > 0 ? { labels } : {}),
      ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}),
    },
    spec: obj.spec ?? {},
  };
}

/** A Secret secretsync wrote, as restore needs it: data, type, and our labels and annotations. */
export function exportSecret(secret: SecretObject): SyncedSecret {
  const owner = (secret.metadata.ownerReferences ?? []).find(
    (r) => r.kind === 'ManagedSecret' && r.apiVersion === API_VERSION && r.controller === true,
  );
  return {
    namespace: secret.metadata.namespace ?? 'default',
    name: secret.metadata.name,
    type: secret.type ?? 'Opaque',
    data: secret.data ?? {},
    labels: secret.metadata.labels ?? {},
    annotations: secret.metadata.annotations ?? {},
    immutable: secret.immutable === true,
    ...(owner ? { ownerManagedSecret: owner.name } : {}),
  };
}

export interface ExportOptions {
  /** Directory of the local store whose entry files go in the backup. */
  localStoreDir?: string;
  includeSynced?: boolean;
  /** The operator's namespace, where ReplicationTargets' kubeconfig Secrets live (they are left out too). */
  operatorNamespace?: string;
  /** Told after each unit of work (a kind listed, a local store file read): step names and counts only. */
  onProgress?: ProgressCallback;
}

/** `done` of `total` units of `step`; steps are fixed phrases, never names or values. */
export type ProgressCallback = (step: string, done: number, total: number) => void;

export interface ExportResult {
  payload: BackupPayload;
  contents: BackupContents;
  /** What was left out: kinds whose CRD is not installed, synced Secrets that are credentials. */
  skipped: string[];
}

const byKey = (a: { metadata: { namespace?: string; name: string } }, b: typeof a) =>
  `${a.metadata.namespace ?? ''}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace ?? ''}/${b.metadata.name}`);

export async function exportCluster(
  client: Pick<KubeClient, 'list'>,
  options: ExportOptions = {},
): Promise<ExportResult> {
  const objects: ExportedObject[] = [];
  const skipped: string[] = [];
  const counts: Record<string, number | null> = {};
  let listed = 0;
  for (const k of BACKUP_KINDS) {
    options.onProgress?.('kinds listed', listed++, BACKUP_KINDS.length);
    let items: KubeObject[];
    try {
      items = (await client.list<KubeObject>(collectionPath(k))).items;
    } catch (err) {
      if (k.optional && isNotFound(err)) {
        skipped.push(`${k.kind} (CRD not installed)`);
        counts[k.kind] = null;
        continue;
      }
      throw new Error(`cannot list ${k.plural}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    // The list answer omits kind and apiVersion on items in some servers' versions; set them.
    const exported = items.map((o) => exportObject({ ...o, apiVersion: API_VERSION, kind: k.kind })).sort(byKey);
    objects.push(...exported);
    counts[k.kind] = exported.length;
  }
  options.onProgress?.('kinds listed', listed, BACKUP_KINDS.length);
  const payload: BackupPayload = { objects };
  const contents: BackupContents = {
    secretStores: counts.SecretStore ?? 0,
    clusterSecretStores: counts.ClusterSecretStore ?? 0,
    replicationTargets: counts.ReplicationTarget ?? null,
    managedSecrets: counts.ManagedSecret ?? 0,
  };
  if (options.localStoreDir !== undefined) {
    // The manifest before the entries: a writer goes entry first, manifest second, so entries read after
    // it are never behind it and the restored store reads (see docs/local-store.md).
    const { manifest, journal } = await exportLocalStoreManifest(options.localStoreDir);
    payload.localStore = await exportLocalStore(options.localStoreDir, options.onProgress);
    if (manifest !== undefined) payload.localStoreManifest = manifest;
    if (manifest !== undefined && journal !== undefined) payload.localStoreManifestJournal = journal;
    contents.localStoreEntries = payload.localStore.length;
  }
  if (options.includeSynced) {
    const secrets = await client.list<SecretObject>('/api/v1/secrets', { labelSelector: `${LABEL_MANAGED}=true` });
    // A Secret secretsync wrote may itself be a credential (say, a DR kubeconfig or AWS keys synced from a
    // backend): like every other credential Secret, it stays out of the backup.
    const credentials = new Map<string, string>();
    for (const o of objects) {
      for (const ref of referencedSecrets(o, options.operatorNamespace)) {
        const key = `${ref.namespace}/${ref.name}`;
        if (!credentials.has(key)) {
          const who = describeObject(o.kind, o.metadata.name, o.metadata.namespace);
          credentials.set(key, o.kind === 'ReplicationTarget' ? `the kubeconfig of ${who}` : `credentials of ${who}`);
        }
      }
    }
    const kept: SecretObject[] = [];
    for (const s of secrets.items) {
      const key = `${s.metadata.namespace ?? 'default'}/${s.metadata.name}`;
      const why = credentials.get(key);
      if (why === undefined) kept.push(s);
      else skipped.push(`Secret ${key} (${why}; backups hold no credentials)`);
    }
    payload.syncedSecrets = kept
      .map(exportSecret)
      .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
    contents.syncedSecrets = payload.syncedSecrets.length;
  }
  return { payload, contents, skipped };
}

/** The entry files of a local store directory, byte for byte (their values stay encrypted by the master key). */
export async function exportLocalStore(dir: string, onProgress?: ProgressCallback): Promise<LocalStoreEntryFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new Error(`cannot read local store directory ${dir}: ${errorCode(err)}`, { cause: err });
  }
  const out: LocalStoreEntryFile[] = [];
  const files = names.filter((n) => ENTRY_FILE.test(n)).sort();
  onProgress?.('local store files read', 0, files.length);
  for (const file of files) {
    const path = join(dir, file);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new Error(`cannot read local store file ${path}: ${errorCode(err)}`, { cause: err });
    }
    out.push({ name: entryNameOf(path, file, text), file: text });
    onProgress?.('local store files read', out.length, files.length);
  }
  return out;
}

/**
 * The local store's manifest and its journal as their texts (each undefined
 * when absent: a store written before format 2, an empty one, or one whose
 * journal was just folded). The pair is read until manifest.json reads the
 * same before and after the journal: a fold in between would pair a journal
 * with a manifest.json it does not continue.
 */
export async function exportLocalStoreManifest(
  dir: string,
): Promise<{ manifest: string | undefined; journal: string | undefined }> {
  for (let attempt = 0; ; attempt++) {
    const manifest = await readStoreFile(dir, MANIFEST_FILE);
    const journal = await readStoreFile(dir, MANIFEST_JOURNAL_FILE);
    if ((await readStoreFile(dir, MANIFEST_FILE)) === manifest || attempt >= 10) return { manifest, journal };
  }
}

async function readStoreFile(dir: string, file: string): Promise<string | undefined> {
  const path = join(dir, file);
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw new Error(`cannot read local store file ${path}: ${errorCode(err)}`, { cause: err });
  }
}

/** The entry name inside a store file, checked against the file name (sha256 of the name). */
export function entryNameOf(path: string, file: string, text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`local store file ${path} is not JSON; refusing to back up a damaged store`);
  }
  const name = typeof parsed === 'object' && parsed !== null ? (parsed as { name?: unknown }).name : undefined;
  if (typeof name !== 'string' || entryFileName(name) !== file) {
    throw new Error(
      `local store file ${path} does not hold the entry its name says; refusing to back up a damaged store`,
    );
  }
  return name;
}

export function entryFileName(name: string): string {
  return `${createHash('sha256').update(name, 'utf8').digest('hex')}.json`;
}

function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.message : String(err);
}
