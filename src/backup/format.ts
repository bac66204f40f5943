// The secretsync backup file: a plaintext header that says what and when, and
// an AES-256-GCM payload whose associated data is the header's exact bytes, so
// a change to any byte of the file is refused before anything is applied.
//
//   SECRETSYNC-BACKUP/1\n
//   {"format":"secretsync-backup",…one line of JSON…}\n
//   base64(iv ‖ tag ‖ ciphertext)\n
//
// The payload is the gzipped JSON of `BackupPayload`. Its 32-byte data key is
// either random and wrapped by KMS Encrypt (an encryption context names the
// backup), or derived with HKDF-SHA256 from a key file and a random salt.
import { createHmac, hkdfSync, randomBytes, randomUUID } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { AuthenticationError, IV_LENGTH, KEY_LENGTH, TAG_LENGTH, open, seal } from '../crypto/aead.js';
import type { KmsApi } from '../providers/aws-kms/kms-api.js';
import type { KubeObject } from '../kube/client.js';
import { boundedText } from '../api/errors.js';

export const MAGIC_LINE = 'SECRETSYNC-BACKUP/1';
export const FORMAT_NAME = 'secretsync-backup';
export const FORMAT_VERSION = 1;
/** Key files shorter than this are refused; longer ones are used whole as HKDF input. */
export const MIN_KEY_FILE_BYTES = 32;
export const MAX_KEY_FILE_BYTES = 64 * 1024;
/** Largest backup file read (and largest payload inflated): far beyond what a cluster's objects need. */
export const MAX_FILE_BYTES = 512 * 1024 * 1024;
const HKDF_INFO = 'secretsync-backup/v1 payload key';
const FINGERPRINT_LABEL = 'secretsync-backup-key-id';
export const CONTEXT_PURPOSE = 'secretsync.io/purpose';
export const CONTEXT_BACKUP_ID = 'secretsync.io/backup-id';

export const TAMPERED = 'backup file is corrupted or was tampered with';
export const NOTHING_APPLIED = 'nothing was applied';

/** Any reason a backup file cannot be opened. The message never quotes file contents beyond header fields. */
export class BackupFileError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BackupFileError';
  }
}

const tampered = (why: string) => new BackupFileError(`${TAMPERED} (${why}); ${NOTHING_APPLIED}`);

export interface KmsEncryption {
  mode: 'kms';
  /** The key ARN KMS reported for the Encrypt. */
  keyId: string;
  /** The data key, wrapped by KMS under `keyId` and the backup's encryption context (base64). */
  wrappedKey: string;
}

export interface KeyFileEncryption {
  mode: 'key-file';
  /** Public fingerprint of the key file: HMAC-SHA256(key file, label), first 16 hex characters. */
  keyFingerprint: string;
  kdf: 'HKDF-SHA256';
  /** The HKDF salt (base64, 32 random bytes). */
  salt: string;
}

export type BackupEncryption = KmsEncryption | KeyFileEncryption;

export interface BackupContents {
  secretStores: number;
  clusterSecretStores: number;
  /** null: the ReplicationTarget CRD was not installed on the source cluster. */
  replicationTargets: number | null;
  managedSecrets: number;
  /** Present with --include-local-store. */
  localStoreEntries?: number;
  /** Present with --include-synced. */
  syncedSecrets?: number;
  /** Present with --include-store: the secrets (values) of the IBM Cloud Secrets Manager instances included. */
  ibmInstanceSecrets?: number;
}

export interface BackupHeader {
  format: typeof FORMAT_NAME;
  version: typeof FORMAT_VERSION;
  backupId: string;
  createdAt: string;
  secretsyncVersion: string;
  source: { server: string; context?: string };
  contents: BackupContents;
  cipher: 'AES-256-GCM';
  compression: 'gzip';
  encryption: BackupEncryption;
}

/** One exported custom resource: kind, name, namespace, labels, annotations and spec only. */
export interface ExportedObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: unknown;
}

/** One local store entry file, as its text on disk (values stay encrypted by the store's master key). */
export interface LocalStoreEntryFile {
  name: string;
  file: string;
}

/** A last-known-good copy of a Secret secretsync wrote. */
export interface SyncedSecret {
  namespace: string;
  name: string;
  type: string;
  /** Base64 values, as the API has them. */
  data: Record<string, string>;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  immutable: boolean;
  /** The ManagedSecret that owned it (controller owner reference), re-pointed at the restored one. */
  ownerManagedSecret?: string;
}

/**
 * One secret of an IBM Cloud Secrets Manager instance: what recreates it on
 * another instance (ids differ between instances, so it is named by secret
 * group name, type and name). Its value is in `payload`, which is why the
 * whole payload of the backup file is encrypted.
 */
export interface IbmBackupSecret {
  group: string;
  name: string;
  type: 'arbitrary' | 'username_password' | 'kv' | 'imported_cert';
  labels: string[];
  customMetadata: Record<string, unknown>;
  description?: string;
  /** The current version's fields of its type (payload; username, password; data; certificate, intermediate, private_key). */
  payload: Record<string, unknown>;
}

/** The secrets of one store's primary instance (`--include-store`). */
export interface IbmInstanceBackup {
  /** The store, as --include-store named it: `SecretStore/NAMESPACE/NAME` or `ClusterSecretStore/NAME`. */
  store: string;
  /** The instance read (region and host). */
  instance: string;
  secrets: IbmBackupSecret[];
  /** Secrets of types IBM makes the values of, left out: names and reasons only. */
  skipped: { group: string; name: string; type: string; reason: string }[];
}

export interface BackupPayload {
  objects: ExportedObject[];
  localStore?: LocalStoreEntryFile[];
  /**
   * The store's manifest.json as its text on disk (read before the entry
   * files, so none of them is behind it); absent for a store that has none.
   */
  localStoreManifest?: string;
  /**
   * The store's manifest.journal as its text (a large store's writes since
   * manifest.json was last folded; see src/providers/local/store.ts), read
   * with the manifest; absent when there is none.
   */
  localStoreManifestJournal?: string;
  syncedSecrets?: SyncedSecret[];
  /** With --include-store: IBM Cloud Secrets Manager instances' secrets. */
  ibmInstances?: IbmInstanceBackup[];
}

/** How a file is encrypted (backup) or decrypted (restore). */
export type BackupKey = { mode: 'key-file'; keyFile: Buffer } | { mode: 'kms'; kms: KmsApi; keyId?: string };

/** Checks a key file and returns its fingerprint. */
export function keyFileFingerprint(keyFile: Buffer): string {
  checkKeyFile(keyFile);
  return createHmac('sha256', keyFile).update(FINGERPRINT_LABEL).digest('hex').slice(0, 16);
}

export function checkKeyFile(keyFile: Buffer): void {
  if (keyFile.length < MIN_KEY_FILE_BYTES) {
    throw new BackupFileError(
      `the key file must hold at least ${MIN_KEY_FILE_BYTES} bytes (e.g. from: openssl rand -out backup.key 32)`,
    );
  }
  if (keyFile.length > MAX_KEY_FILE_BYTES) {
    throw new BackupFileError(`the key file is larger than ${MAX_KEY_FILE_BYTES} bytes; is it the right file?`);
  }
}

function deriveKey(keyFile: Buffer, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', keyFile, salt, HKDF_INFO, KEY_LENGTH));
}

/** The KMS encryption context of a backup's data key. */
export function kmsContext(backupId: string): Record<string, string> {
  return { [CONTEXT_PURPOSE]: 'backup', [CONTEXT_BACKUP_ID]: backupId };
}

export interface SealOptions {
  createdAt?: Date;
  secretsyncVersion: string;
  source: BackupHeader['source'];
  contents: BackupContents;
}

/** Encrypts a payload into the bytes of a backup file. */
export async function sealBackup(payload: BackupPayload, key: BackupKey, options: SealOptions): Promise<Buffer> {
  const backupId = randomUUID();
  let dataKey: Buffer;
  let encryption: BackupEncryption;
  if (key.mode === 'key-file') {
    const salt = randomBytes(32);
    encryption = {
      mode: 'key-file',
      keyFingerprint: keyFileFingerprint(key.keyFile),
      kdf: 'HKDF-SHA256',
      salt: salt.toString('base64'),
    };
    dataKey = deriveKey(key.keyFile, salt);
  } else {
    if (!key.keyId) throw new Error('a KMS key is needed to make a backup');
    dataKey = randomBytes(KEY_LENGTH);
    const wrapped = await key.kms.encrypt({ keyId: key.keyId, plaintext: dataKey, context: kmsContext(backupId) });
    encryption = { mode: 'kms', keyId: wrapped.keyId, wrappedKey: wrapped.blob.toString('base64') };
  }
  const header: BackupHeader = {
    format: FORMAT_NAME,
    version: FORMAT_VERSION,
    backupId,
    createdAt: (options.createdAt ?? new Date()).toISOString(),
    secretsyncVersion: options.secretsyncVersion,
    source: options.source,
    contents: options.contents,
    cipher: 'AES-256-GCM',
    compression: 'gzip',
    encryption,
  };
  const head = Buffer.from(`${MAGIC_LINE}\n${JSON.stringify(header)}\n`, 'utf8');
  const plaintext = gzipSync(Buffer.from(JSON.stringify(payload), 'utf8'));
  try {
    const sealed = seal(dataKey, plaintext, head);
    const body = Buffer.concat([sealed.iv, sealed.tag, sealed.ciphertext]).toString('base64');
    return Buffer.concat([head, Buffer.from(`${body}\n`, 'utf8')]);
  } finally {
    dataKey.fill(0);
    plaintext.fill(0);
  }
}

interface ParsedFile {
  header: BackupHeader;
  /** The bytes authenticated as associated data: the magic line and the header line. */
  aad: Buffer;
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** keyFileFingerprint's form. */
const FINGERPRINT = /^[0-9a-f]{16}$/;

/** Reads the header without decrypting (its fields are not yet authenticated). */
export function parseBackupFile(bytes: Buffer): ParsedFile {
  const magic = Buffer.from(`${MAGIC_LINE}\n`, 'utf8');
  if (bytes.length < magic.length || !bytes.subarray(0, magic.length).equals(magic)) {
    // A file from a later format version is not "tampered": say so.
    if (bytes.subarray(0, 18).toString('latin1') === 'SECRETSYNC-BACKUP/') {
      throw new BackupFileError(
        `unsupported backup format version (this secretsync reads ${MAGIC_LINE}); ${NOTHING_APPLIED}`,
      );
    }
    throw tampered(`it does not start with ${MAGIC_LINE}; is it a secretsync backup?`);
  }
  const headerEnd = bytes.indexOf(0x0a, magic.length);
  if (headerEnd < 0) throw tampered('no header line');
  const headerText = bytes.subarray(magic.length, headerEnd).toString('utf8');
  if (!Buffer.from(headerText, 'utf8').equals(bytes.subarray(magic.length, headerEnd))) {
    throw tampered('the header is not UTF-8');
  }
  const header = checkHeader(headerText);
  const bodyEnd = bytes.length - 1;
  if (bodyEnd <= headerEnd || bytes[bodyEnd] !== 0x0a) throw tampered('the payload is missing or truncated');
  const body = bytes.subarray(headerEnd + 1, bodyEnd).toString('latin1');
  if (!BASE64.test(body) || body.length % 4 !== 0) throw tampered('the payload is not base64');
  const raw = Buffer.from(body, 'base64');
  if (raw.toString('base64') !== body) throw tampered('the payload is not canonical base64');
  if (raw.length < IV_LENGTH + TAG_LENGTH) throw tampered('the payload is truncated');
  return {
    header,
    aad: bytes.subarray(0, headerEnd + 1),
    iv: raw.subarray(0, IV_LENGTH),
    tag: raw.subarray(IV_LENGTH, IV_LENGTH + TAG_LENGTH),
    ciphertext: raw.subarray(IV_LENGTH + TAG_LENGTH),
  };
}

function checkHeader(text: string): BackupHeader {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw tampered('the header is not valid JSON');
  }
  const bad = (what: string) => tampered(`the header's ${what} is missing or malformed`);
  if (!isObject(raw) || raw.format !== FORMAT_NAME) throw bad('format');
  if (raw.version !== FORMAT_VERSION) throw bad('version');
  if (typeof raw.backupId !== 'string' || raw.backupId === '') throw bad('backupId');
  if (typeof raw.createdAt !== 'string') throw bad('createdAt');
  if (typeof raw.secretsyncVersion !== 'string') throw bad('secretsyncVersion');
  if (
    !isObject(raw.source) ||
    typeof raw.source.server !== 'string' ||
    !(raw.source.context === undefined || typeof raw.source.context === 'string')
  )
    throw bad('source');
  if (raw.cipher !== 'AES-256-GCM' || raw.compression !== 'gzip') throw bad('cipher');
  const c = raw.contents;
  const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (
    !isObject(c) ||
    !count(c.secretStores) ||
    !count(c.clusterSecretStores) ||
    !count(c.managedSecrets) ||
    !(c.replicationTargets === null || count(c.replicationTargets)) ||
    !(c.localStoreEntries === undefined || count(c.localStoreEntries)) ||
    !(c.syncedSecrets === undefined || count(c.syncedSecrets)) ||
    !(c.ibmInstanceSecrets === undefined || count(c.ibmInstanceSecrets))
  ) {
    throw bad('contents');
  }
  const e = raw.encryption;
  if (!isObject(e)) throw bad('encryption');
  if (e.mode === 'kms') {
    if (typeof e.keyId !== 'string' || e.keyId === '' || typeof e.wrappedKey !== 'string') throw bad('encryption');
  } else if (e.mode === 'key-file') {
    if (
      typeof e.keyFingerprint !== 'string' ||
      !FINGERPRINT.test(e.keyFingerprint) ||
      e.kdf !== 'HKDF-SHA256' ||
      typeof e.salt !== 'string'
    ) {
      throw bad('encryption');
    }
  } else {
    throw bad('encryption mode');
  }
  return raw as unknown as BackupHeader;
}

/** Reads only the header of a file (unauthenticated until `openBackup` succeeds). */
export function readHeader(bytes: Buffer): BackupHeader {
  return parseBackupFile(bytes).header;
}

export interface OpenedBackup {
  header: BackupHeader;
  payload: BackupPayload;
}

/**
 * Authenticates and decrypts a backup file. Every failure is a
 * BackupFileError that ends in "nothing was applied".
 */
export async function openBackup(
  bytes: Buffer,
  key: BackupKey | ((header: BackupHeader) => BackupKey),
): Promise<OpenedBackup> {
  if (bytes.length > MAX_FILE_BYTES)
    throw new BackupFileError(`the file is larger than ${MAX_FILE_BYTES} bytes; ${NOTHING_APPLIED}`);
  const parsed = parseBackupFile(bytes);
  const { header } = parsed;
  const k = typeof key === 'function' ? key(header) : key;
  const enc = header.encryption;
  let dataKey: Buffer;
  if (enc.mode === 'key-file') {
    if (k.mode !== 'key-file') {
      throw new BackupFileError(`the backup was encrypted with a key file: give --key-file; ${NOTHING_APPLIED}`);
    }
    const fingerprint = keyFileFingerprint(k.keyFile);
    if (fingerprint !== enc.keyFingerprint) {
      throw new BackupFileError(
        `wrong key file: the backup was made with a key file of fingerprint ${enc.keyFingerprint}, the one given has ${fingerprint}; ${NOTHING_APPLIED}`,
      );
    }
    const salt = Buffer.from(enc.salt, 'base64');
    if (salt.length !== 32) throw tampered('the key-file salt has the wrong length');
    dataKey = deriveKey(k.keyFile, salt);
  } else {
    if (k.mode !== 'kms') {
      throw new BackupFileError(
        `the backup was encrypted with KMS key ${boundedText(enc.keyId)}, not a key file; give no --key-file; ${NOTHING_APPLIED}`,
      );
    }
    try {
      dataKey = await k.kms.decrypt({
        blob: Buffer.from(enc.wrappedKey, 'base64'),
        context: kmsContext(header.backupId),
        keyId: enc.keyId,
      });
    } catch (err) {
      const name = err instanceof Error ? err.name : 'Error';
      throw new BackupFileError(
        `KMS could not unwrap the backup's data key with key ${boundedText(enc.keyId)} (${boundedText(name, 80)}): the file was tampered with, or this identity may not use that key; ${NOTHING_APPLIED}`,
        { cause: err },
      );
    }
    if (dataKey.length !== KEY_LENGTH) throw tampered('the unwrapped data key is not 32 bytes');
  }
  let compressed: Buffer;
  try {
    compressed = open(dataKey, { iv: parsed.iv, tag: parsed.tag, ciphertext: parsed.ciphertext }, parsed.aad);
  } catch (err) {
    if (err instanceof AuthenticationError) throw tampered('authentication failed');
    throw err;
  } finally {
    dataKey.fill(0);
  }
  let payload: BackupPayload;
  try {
    payload = checkPayload(JSON.parse(gunzipSync(compressed, { maxOutputLength: MAX_FILE_BYTES }).toString('utf8')));
  } catch (err) {
    // Authenticated yet malformed: written by something that had the key but is not secretsync.
    throw new BackupFileError(
      `the backup authenticated but its contents are malformed (${err instanceof BackupFileError ? err.message : 'not gzipped JSON'}); ${NOTHING_APPLIED}`,
    );
  } finally {
    compressed.fill(0);
  }
  checkCounts(header, payload);
  return { header, payload };
}

function checkPayload(raw: unknown): BackupPayload {
  const bad = (what: string) => new BackupFileError(what);
  if (!isObject(raw) || !Array.isArray(raw.objects)) throw bad('no objects');
  for (const o of raw.objects as unknown[]) {
    if (
      !isObject(o) ||
      typeof o.apiVersion !== 'string' ||
      typeof o.kind !== 'string' ||
      !isObject(o.metadata) ||
      typeof o.metadata.name !== 'string'
    ) {
      throw bad('an object is malformed');
    }
  }
  if (raw.localStore !== undefined) {
    if (!Array.isArray(raw.localStore)) throw bad('localStore is not a list');
    for (const e of raw.localStore as unknown[]) {
      if (!isObject(e) || typeof e.name !== 'string' || typeof e.file !== 'string')
        throw bad('a local entry is malformed');
    }
  }
  if (raw.localStoreManifest !== undefined && typeof raw.localStoreManifest !== 'string') {
    throw bad('localStoreManifest is not a text');
  }
  if (raw.localStoreManifestJournal !== undefined && typeof raw.localStoreManifestJournal !== 'string') {
    throw bad('localStoreManifestJournal is not a text');
  }
  if (raw.syncedSecrets !== undefined) {
    if (!Array.isArray(raw.syncedSecrets)) throw bad('syncedSecrets is not a list');
    for (const s of raw.syncedSecrets as unknown[]) {
      if (
        !isObject(s) ||
        typeof s.namespace !== 'string' ||
        typeof s.name !== 'string' ||
        typeof s.type !== 'string' ||
        !isObject(s.data) ||
        !isObject(s.labels) ||
        !isObject(s.annotations)
      ) {
        throw bad('a synced Secret is malformed');
      }
    }
  }
  if (raw.ibmInstances !== undefined) {
    if (!Array.isArray(raw.ibmInstances)) throw bad('ibmInstances is not a list');
    for (const i of raw.ibmInstances as unknown[]) {
      if (
        !isObject(i) ||
        typeof i.store !== 'string' ||
        typeof i.instance !== 'string' ||
        !Array.isArray(i.secrets) ||
        !Array.isArray(i.skipped)
      )
        throw bad('an IBM instance is malformed');
      for (const s of i.secrets as unknown[]) {
        if (
          !isObject(s) ||
          typeof s.group !== 'string' ||
          typeof s.name !== 'string' ||
          !['arbitrary', 'username_password', 'kv', 'imported_cert'].includes(String(s.type)) ||
          !Array.isArray(s.labels) ||
          !isObject(s.customMetadata) ||
          !isObject(s.payload)
        )
          throw bad('an IBM instance secret is malformed');
      }
    }
  }
  return raw as unknown as BackupPayload;
}

/** The header's counts must describe the payload (both are authenticated; a mismatch means a broken writer). */
function checkCounts(header: BackupHeader, payload: BackupPayload): void {
  const kinds = countKinds(payload.objects);
  const c = header.contents;
  const ok =
    kinds.SecretStore === c.secretStores &&
    kinds.ClusterSecretStore === c.clusterSecretStores &&
    kinds.ManagedSecret === c.managedSecrets &&
    kinds.ReplicationTarget === (c.replicationTargets ?? 0) &&
    (payload.localStore?.length ?? undefined) === c.localStoreEntries &&
    (payload.syncedSecrets?.length ?? undefined) === c.syncedSecrets &&
    (payload.ibmInstances === undefined
      ? undefined
      : payload.ibmInstances.reduce((n, i) => n + i.secrets.length, 0)) === c.ibmInstanceSecrets;
  if (!ok) {
    throw new BackupFileError(`the backup's header counts do not match its contents; ${NOTHING_APPLIED}`);
  }
}

export function countKinds(objects: readonly Pick<KubeObject, 'kind'>[]): Record<string, number> {
  const counts: Record<string, number> = {
    SecretStore: 0,
    ClusterSecretStore: 0,
    ManagedSecret: 0,
    ReplicationTarget: 0,
  };
  for (const o of objects) if (o.kind) counts[o.kind] = (counts[o.kind] ?? 0) + 1;
  return counts;
}

/**
 * The header as lines for people (what, when, from where, how encrypted; never key material).
 * The header is not authenticated until the file is opened: each text field is shown as one bounded
 * line of printable characters, so a forged file cannot add lines or terminal escapes to the output.
 */
export function describeHeader(header: BackupHeader): string[] {
  const c = header.contents;
  const enc = header.encryption;
  const t = (text: string) => boundedText(text);
  const lines = [
    `backup ${t(header.backupId)}`,
    `  created:    ${t(header.createdAt)} by secretsync ${t(header.secretsyncVersion)}`,
    `  source:     ${t(header.source.server)}${header.source.context ? ` (context ${t(header.source.context)})` : ''}`,
    `  contents:   ${c.secretStores} SecretStore, ${c.clusterSecretStores} ClusterSecretStore, ${
      c.replicationTargets === null
        ? 'no ReplicationTarget (CRD not installed)'
        : `${c.replicationTargets} ReplicationTarget`
    }, ${c.managedSecrets} ManagedSecret`,
  ];
  if (c.localStoreEntries !== undefined)
    lines.push(`              ${c.localStoreEntries} local store entries (still encrypted by the store's master key)`);
  if (c.syncedSecrets !== undefined)
    lines.push(`              ${c.syncedSecrets} synced Secrets (last-known-good data)`);
  if (c.ibmInstanceSecrets !== undefined)
    lines.push(
      `              ${c.ibmInstanceSecrets} IBM Cloud Secrets Manager secrets (values, encrypted with the rest)`,
    );
  lines.push(
    enc.mode === 'kms'
      ? `  encryption: ${header.cipher}, data key wrapped by KMS key ${t(enc.keyId)}`
      : `  encryption: ${header.cipher}, key derived (${enc.kdf}) from a key file with fingerprint ${enc.keyFingerprint}`,
  );
  return lines;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
