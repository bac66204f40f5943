// The secretsync ciphertext format: a value encrypted with AWS KMS, bound to
// where it may be used, in a text form that is safe to commit to Git.
// The byte layout is documented in docs/ciphertext-format.md; this module is
// pure (no KMS calls), so the format can be tested and reasoned about alone.
import { AuthenticationError, IV_LENGTH, KEY_LENGTH, TAG_LENGTH, open, seal } from './aead.js';
import type { CiphertextScope } from '../api/types.js';
import { DecryptError, type CiphertextBinding } from '../providers/provider.js';

/** Every secretsync ciphertext starts with this. */
export const CIPHERTEXT_PREFIX = 'secretsync:';
export const FORMAT_VERSION = 1;
export const TEXT_PREFIX = `${CIPHERTEXT_PREFIX}v${FORMAT_VERSION}:`;
/** What follows TEXT_PREFIX in a Vault transit ciphertext (src/crypto/transit-ciphertext.ts). */
export const TRANSIT_MODE = 'transit:';

/** "SSYN": the first four bytes of the binary form. */
export const MAGIC = Buffer.from([0x53, 0x53, 0x59, 0x4e]);

/** Values up to this many bytes are encrypted by KMS directly; longer (or empty) ones use an AES-256-GCM data key. */
export const DIRECT_MAX_BYTES = 3072;
/** Longest KMS key identifier kept in the header (KMS key ARNs and alias ARNs are far shorter). */
export const MAX_KEY_ID_LENGTH = 2048;
/** KMS ciphertext blobs are at most 6144 bytes. */
export const MAX_BLOB_LENGTH = 6144;
/** A ciphertext longer than this is refused before decoding (a Kubernetes Secret holds at most 1 MiB). */
export const MAX_TEXT_LENGTH = 2 * 1024 * 1024;

export type CiphertextMode = 'direct' | 'envelope';

export const SCOPES: readonly CiphertextScope[] = ['strict', 'namespace', 'cluster'];

/** The encryption context keys (also part of the envelope AAD). */
export const CONTEXT_SCOPE = 'secretsync.io/scope';
export const CONTEXT_NAMESPACE = 'secretsync.io/namespace';
export const CONTEXT_MANAGED_SECRET = 'secretsync.io/managed-secret';
export const CONTEXT_SECRET_KEY = 'secretsync.io/secret-key';

export type EncryptionContext = Record<string, string>;

interface CiphertextBase {
  scope: CiphertextScope;
  /** The KMS key that produced `blob` (the key ARN KMS reported), for messages, Decrypt's KeyId and reencrypt. */
  keyId: string;
  /** Direct: the KMS ciphertext of the value. Envelope: the KMS ciphertext of the data key. */
  blob: Buffer;
}

export interface DirectCiphertext extends CiphertextBase {
  mode: 'direct';
}

export interface EnvelopeCiphertext extends CiphertextBase {
  mode: 'envelope';
  iv: Buffer;
  tag: Buffer;
  /** The AES-256-GCM ciphertext of the value. */
  payload: Buffer;
}

export type Ciphertext = DirectCiphertext | EnvelopeCiphertext;

const MODE_BYTES: Record<CiphertextMode, number> = { direct: 1, envelope: 2 };
const SCOPE_BYTES: Record<CiphertextScope, number> = { strict: 1, namespace: 2, cluster: 3 };
/** magic(4) version(1) mode(1) scope(1): the fixed header, authenticated as AAD in envelope mode. */
const FIXED_HEADER_LENGTH = MAGIC.length + 3;
const KEY_ID_PATTERN = /^[A-Za-z0-9:/_+=,.@-]+$/;
const TEXT_VERSION = /^secretsync:v([0-9]{1,6}):/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Whether a value looks like a secretsync ciphertext (of any version, KMS or
 * Vault transit: `secretsync:v1:transit:…`), so callers decide to decrypt it.
 */
export function isCiphertext(value: string): boolean {
  return TEXT_VERSION.test(value.trim());
}

/** Which mode a plaintext of this many bytes gets by default. KMS refuses empty plaintexts, so those go in an envelope. */
export function defaultMode(plaintextLength: number): CiphertextMode {
  return plaintextLength >= 1 && plaintextLength <= DIRECT_MAX_BYTES ? 'direct' : 'envelope';
}

export function isScope(value: string): value is CiphertextScope {
  return (SCOPES as readonly string[]).includes(value);
}

/**
 * The KMS encryption context for a scope and the place a value is used.
 * `strict`: scope, namespace, ManagedSecret and secret key; `namespace`:
 * scope and namespace; `cluster`: the scope only. Fields the scope does not
 * use are ignored; fields it uses must be non-empty.
 */
export function encryptionContext(scope: CiphertextScope, binding: Partial<CiphertextBinding>): EncryptionContext {
  const context: EncryptionContext = { [CONTEXT_SCOPE]: scope };
  if (scope === 'cluster') return context;
  context[CONTEXT_NAMESPACE] = required(binding.namespace, 'namespace', scope);
  if (scope === 'namespace') return context;
  context[CONTEXT_MANAGED_SECRET] = required(binding.managedSecret, 'ManagedSecret name', scope);
  context[CONTEXT_SECRET_KEY] = required(binding.secretKey, 'secret key', scope);
  return context;
}

function required(value: string | undefined, what: string, scope: CiphertextScope): string {
  if (typeof value !== 'string' || value === '') {
    throw new DecryptError(`a ciphertext of scope ${scope} needs a ${what} to bind to`);
  }
  return value;
}

/** A canonical byte form of an encryption context: JSON of its [key, value] pairs sorted by key. */
export function canonicalContext(context: EncryptionContext): Buffer {
  const pairs = Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(pairs), 'utf8');
}

/** The envelope AAD: the fixed header (magic, version, mode, scope) followed by the canonical context. */
export function envelopeAad(scope: CiphertextScope, context: EncryptionContext): Buffer {
  return Buffer.concat([fixedHeader('envelope', scope), canonicalContext(context)]);
}

function fixedHeader(mode: CiphertextMode, scope: CiphertextScope): Buffer {
  return Buffer.concat([MAGIC, Buffer.from([FORMAT_VERSION, MODE_BYTES[mode], SCOPE_BYTES[scope]])]);
}

/** Encrypts a value under a 32-byte data key for an envelope ciphertext. */
export function sealEnvelope(
  dataKey: Buffer,
  plaintext: Buffer,
  scope: CiphertextScope,
  context: EncryptionContext,
): { iv: Buffer; tag: Buffer; payload: Buffer } {
  const sealed = seal(dataKey, plaintext, envelopeAad(scope, context));
  return { iv: sealed.iv, tag: sealed.tag, payload: sealed.ciphertext };
}

/** Decrypts an envelope payload; any mismatch (key, bytes, header, context) is a DecryptError without detail. */
export function openEnvelope(dataKey: Buffer, ciphertext: EnvelopeCiphertext, context: EncryptionContext): Buffer {
  if (dataKey.length !== KEY_LENGTH) {
    throw new DecryptError('the data key unwrapped by KMS is not a 32-byte AES-256 key');
  }
  try {
    return open(
      dataKey,
      { iv: ciphertext.iv, tag: ciphertext.tag, ciphertext: ciphertext.payload },
      envelopeAad(ciphertext.scope, context),
    );
  } catch (err) {
    if (err instanceof AuthenticationError) {
      throw new DecryptError('the ciphertext was modified, or is used somewhere other than where it was made for');
    }
    throw err;
  }
}

/** The binary form. */
export function encodeCiphertext(c: Ciphertext): Buffer {
  const keyId = Buffer.from(c.keyId, 'utf8');
  if (keyId.length < 1 || keyId.length > MAX_KEY_ID_LENGTH || !KEY_ID_PATTERN.test(c.keyId)) {
    throw new Error('the KMS key id is empty, too long or has unexpected characters');
  }
  if (c.blob.length < 1 || c.blob.length > MAX_BLOB_LENGTH) {
    throw new Error(`the KMS ciphertext blob must be 1 to ${MAX_BLOB_LENGTH} bytes`);
  }
  const parts = [fixedHeader(c.mode, c.scope), u16(keyId.length), keyId, u16(c.blob.length), c.blob];
  if (c.mode === 'envelope') {
    if (c.iv.length !== IV_LENGTH || c.tag.length !== TAG_LENGTH) throw new Error('bad envelope IV or tag length');
    parts.push(c.iv, c.tag, c.payload);
  }
  return Buffer.concat(parts);
}

/** The text form: `secretsync:v1:` and the binary form in unpadded base64url. */
export function formatCiphertext(c: Ciphertext): string {
  return TEXT_PREFIX + encodeCiphertext(c).toString('base64url');
}

/** Parses the text form; every problem is a DecryptError that quotes nothing of the input. */
export function parseCiphertext(text: string): Ciphertext {
  const trimmed = text.trim();
  const version = TEXT_VERSION.exec(trimmed);
  if (!trimmed.startsWith(CIPHERTEXT_PREFIX) || !version) {
    throw new DecryptError(`not a secretsync ciphertext (expected text starting with "${TEXT_PREFIX}")`);
  }
  if (Number(version[1]) !== FORMAT_VERSION) {
    throw new DecryptError(
      `unsupported version v${Number(version[1])} of the secretsync ciphertext format (this secretsync reads v${FORMAT_VERSION})`,
    );
  }
  // One text per ciphertext: `v01` is not another spelling of `v1`.
  if (version[1] !== String(FORMAT_VERSION)) {
    throw new DecryptError(`malformed secretsync ciphertext: the version is not written ${TEXT_PREFIX}`);
  }
  if (trimmed.length > MAX_TEXT_LENGTH) throw new DecryptError('malformed secretsync ciphertext: too long');
  const body = trimmed.slice(version[0].length);
  // The transit form (transit-ciphertext.ts) shares the prefix; name it rather than call it malformed.
  if (body.startsWith(TRANSIT_MODE)) {
    throw new DecryptError(
      'a Vault transit ciphertext: only a Vault store with decrypt.transit can decrypt it, not KMS',
    );
  }
  // Node's decoder skips characters it does not know; a strict check keeps one text ↔ one byte string.
  if (!BASE64URL.test(body) || body.length % 4 === 1) {
    throw new DecryptError('malformed secretsync ciphertext: not unpadded base64url after the prefix');
  }
  const bytes = Buffer.from(body, 'base64url');
  if (bytes.toString('base64url') !== body) {
    throw new DecryptError('malformed secretsync ciphertext: not canonical base64url');
  }
  return decodeCiphertext(bytes);
}

/** Parses the binary form. */
export function decodeCiphertext(bytes: Buffer): Ciphertext {
  const malformed = (what: string) => new DecryptError(`malformed secretsync ciphertext: ${what}`);
  if (bytes.length < FIXED_HEADER_LENGTH || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new DecryptError('not a secretsync ciphertext (bad magic bytes)');
  }
  let at = MAGIC.length;
  const version = bytes[at++];
  if (version !== FORMAT_VERSION) {
    throw new DecryptError(`unsupported version ${version} of the secretsync ciphertext format`);
  }
  const mode = byteToName(MODE_BYTES, bytes[at++]);
  if (!mode) throw malformed('unknown mode');
  const scope = byteToName(SCOPE_BYTES, bytes[at++]);
  if (!scope) throw malformed('unknown scope');

  const readField = (what: string, max: number): Buffer => {
    if (at + 2 > bytes.length) throw malformed(`truncated ${what}`);
    const length = bytes.readUInt16BE(at);
    at += 2;
    if (length < 1 || length > max) throw malformed(`bad ${what} length`);
    if (at + length > bytes.length) throw malformed(`truncated ${what}`);
    const field = bytes.subarray(at, at + length);
    at += length;
    return field;
  };
  const keyIdBytes = readField('key id', MAX_KEY_ID_LENGTH);
  const keyId = keyIdBytes.toString('utf8');
  if (!KEY_ID_PATTERN.test(keyId) || !Buffer.from(keyId, 'utf8').equals(keyIdBytes)) throw malformed('bad key id');
  const blob = Buffer.from(readField('KMS blob', MAX_BLOB_LENGTH));

  if (mode === 'direct') {
    if (at !== bytes.length) throw malformed('unexpected bytes after the KMS blob');
    return { mode, scope, keyId, blob };
  }
  if (at + IV_LENGTH + TAG_LENGTH > bytes.length) throw malformed('truncated envelope');
  const iv = Buffer.from(bytes.subarray(at, at + IV_LENGTH));
  at += IV_LENGTH;
  const tag = Buffer.from(bytes.subarray(at, at + TAG_LENGTH));
  at += TAG_LENGTH;
  return { mode, scope, keyId, blob, iv, tag, payload: Buffer.from(bytes.subarray(at)) };
}

function byteToName<T extends string>(table: Record<T, number>, byte: number | undefined): T | undefined {
  return (Object.keys(table) as T[]).find((name) => table[name] === byte);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
