// AES-256-GCM with the parameters fixed, so callers cannot pick a weak IV or a
// truncated tag by accident.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

export const KEY_LENGTH = 32;
export const IV_LENGTH = 12;
export const TAG_LENGTH = 16;

const ALGORITHM = 'aes-256-gcm';

export interface Sealed {
  iv: Buffer;
  tag: Buffer;
  ciphertext: Buffer;
}

/**
 * Decryption did not authenticate. Deliberately carries no detail: the cause is
 * always "wrong key, or the bytes or associated data changed", and anything more
 * specific could only come from the inputs, which may be secret.
 */
export class AuthenticationError extends Error {
  constructor(message = 'decryption failed: wrong key, or the ciphertext or its associated data were modified') {
    super(message);
    this.name = 'AuthenticationError';
  }
}

function assertKey(key: Buffer): void {
  if (key.length !== KEY_LENGTH) throw new Error(`AES-256-GCM key must be ${KEY_LENGTH} bytes`);
}

/** Encrypts with a fresh random IV; `aad` is authenticated but not encrypted. */
export function seal(key: Buffer, plaintext: Buffer, aad: Buffer): Sealed {
  assertKey(key);
  const iv = randomBytes(IV_LENGTH);
  const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_LENGTH });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), ciphertext };
}

/** Decrypts and authenticates; throws `AuthenticationError` on any mismatch. */
export function open(key: Buffer, sealed: Sealed, aad: Buffer): Buffer {
  assertKey(key);
  // GCM in Node accepts shorter tags unless told otherwise; a truncated tag is a forgery aid.
  if (sealed.iv.length !== IV_LENGTH || sealed.tag.length !== TAG_LENGTH) throw new AuthenticationError();
  try {
    const decipher = createDecipheriv(ALGORITHM, key, sealed.iv, { authTagLength: TAG_LENGTH });
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.tag);
    return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
  } catch {
    // OpenSSL's own message ("Unsupported state or unable to authenticate data") is replaced, not wrapped,
    // so no library ever gets to put input bytes into what we surface.
    throw new AuthenticationError();
  }
}

export const MASTER_KEY_ERROR = 'master key must be 32 bytes (raw, base64 or hex)';

const HEX_KEY = /^[0-9a-fA-F]{64}$/;
// 32 bytes are 43 base64 characters plus one '=' of padding; accept the URL-safe alphabet and no padding too.
const BASE64_KEY = /^[A-Za-z0-9+/]{43}=?$/;
const BASE64URL_KEY = /^[A-Za-z0-9_-]{43}=?$/;

/**
 * A 32-byte master key from what a person stored in a file or a Secret.
 * Exactly 32 bytes are taken as the raw key before anything else, because
 * trimming random bytes could cut real key bytes that happen to be whitespace.
 */
export function parseMasterKey(input: Buffer | string): Buffer {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  if (bytes.length === KEY_LENGTH) return Buffer.from(bytes);
  const text = bytes.toString('latin1').trim();
  if (HEX_KEY.test(text)) return Buffer.from(text, 'hex');
  if (BASE64_KEY.test(text)) return checkedLength(Buffer.from(text, 'base64'));
  if (BASE64URL_KEY.test(text)) return checkedLength(Buffer.from(text, 'base64url'));
  throw new Error(MASTER_KEY_ERROR);
}

function checkedLength(key: Buffer): Buffer {
  if (key.length !== KEY_LENGTH) throw new Error(MASTER_KEY_ERROR);
  return key;
}

/**
 * A public fingerprint of a master key, stored next to what it encrypts so a
 * wrong key is recognised before any decryption is attempted. HMAC with a fixed
 * label rather than a plain hash, so it reveals nothing usable about the key.
 */
export function masterKeyId(masterKey: Buffer): string {
  assertKey(masterKey);
  return createHmac('sha256', masterKey).update('secretsync-master-key-id').digest('hex').slice(0, 16);
}
