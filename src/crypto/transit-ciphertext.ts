// The text form of a secretsync ciphertext made by Vault's transit engine:
// a header naming the mode (`transit`), the scope and the transit key, then
// Vault's own `vault:vN:<base64>` ciphertext. The binding to where the value
// may be used is the key-derivation context Vault is given (the same fields as
// the KMS encryption context), so it never travels in the text. Pure (no Vault
// calls): the format can be tested and reasoned about alone. Documented in
// docs/ciphertext-format.md.
import type { CiphertextScope } from '../api/types.js';
import { DecryptError, type CiphertextBinding } from '../providers/provider.js';
import {
  MAX_TEXT_LENGTH,
  TEXT_PREFIX,
  TRANSIT_MODE,
  canonicalContext,
  encryptionContext,
  isScope,
} from './ciphertext.js';

/** Every transit ciphertext starts with this (so readers that only know the KMS form refuse it loudly). */
export const TRANSIT_PREFIX = `${TEXT_PREFIX}${TRANSIT_MODE}`;
/** Longest transit key name kept in the header. */
export const MAX_TRANSIT_KEY_LENGTH = 256;
/**
 * Fewest bytes a Vault transit ciphertext of a key that supports derivation
 * can hold: a 12-byte nonce and a 16-byte tag (AES-GCM, ChaCha20-Poly1305).
 */
export const MIN_VAULT_CIPHERTEXT_BYTES = 28;

/** Vault's key names: word characters, `-` and `.` inside (Vault's GenericNameRegex), ASCII only. */
const TRANSIT_KEY_PATTERN = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;
/** `vault:v<version>:<standard base64 with padding>`, as Vault's transit engine writes it. */
const VAULT_CIPHERTEXT = /^vault:v([1-9][0-9]{0,8}):([A-Za-z0-9+/]+={0,2})$/;

export interface TransitCiphertext {
  scope: CiphertextScope;
  /** The transit key (its name inside the mount) that made `vault`. */
  key: string;
  /** The key version Vault's ciphertext names (`vault:v3:` → 3). */
  keyVersion: number;
  /** Vault's ciphertext, `vault:vN:…`, exactly as Vault returned it. */
  vault: string;
}

/** Whether a value is in the transit text form (well-formed or not), as opposed to the KMS one. */
export function isTransitCiphertext(value: string): boolean {
  return value.trim().startsWith(TRANSIT_PREFIX);
}

export function isTransitKeyName(name: string): boolean {
  return name.length <= MAX_TRANSIT_KEY_LENGTH && TRANSIT_KEY_PATTERN.test(name);
}

/**
 * The key-derivation context Vault gets for a scope and the place a value is
 * used, base64 as Vault's API takes it: the canonical JSON of the same
 * encryption context the KMS form uses (docs/ciphertext-format.md). Fields the
 * scope uses must be set; DecryptError otherwise.
 */
export function transitContext(scope: CiphertextScope, binding: Partial<CiphertextBinding>): string {
  return canonicalContext(encryptionContext(scope, binding)).toString('base64');
}

/** The text form; throws (a plain Error, this is our own output) when Vault's ciphertext or the key name is not one we could parse back. */
export function formatTransitCiphertext(c: { scope: CiphertextScope; key: string; vault: string }): string {
  if (!isTransitKeyName(c.key)) throw new Error('the transit key name is empty, too long or has unexpected characters');
  if (!isScope(c.scope)) throw new Error('unknown ciphertext scope');
  const text = `${TRANSIT_PREFIX}${c.scope}:${c.key}:${c.vault}`;
  parseTransitCiphertext(text); // what we write must be what we read
  return text;
}

/** Parses the text form; every problem is a DecryptError that quotes nothing of the input. */
export function parseTransitCiphertext(text: string): TransitCiphertext {
  const trimmed = text.trim();
  if (!trimmed.startsWith(TRANSIT_PREFIX)) {
    throw new DecryptError(`not a secretsync transit ciphertext (expected text starting with "${TRANSIT_PREFIX}")`);
  }
  if (trimmed.length > MAX_TEXT_LENGTH) throw new DecryptError('malformed secretsync transit ciphertext: too long');
  const malformed = (what: string) => new DecryptError(`malformed secretsync transit ciphertext: ${what}`);
  const rest = trimmed.slice(TRANSIT_PREFIX.length);
  const scopeEnd = rest.indexOf(':');
  const scope = scopeEnd < 0 ? '' : rest.slice(0, scopeEnd);
  if (!isScope(scope)) throw malformed('unknown scope (expected strict, namespace or cluster)');
  const keyEnd = rest.indexOf(':', scopeEnd + 1);
  const key = keyEnd < 0 ? '' : rest.slice(scopeEnd + 1, keyEnd);
  if (!isTransitKeyName(key)) throw malformed('bad transit key name');
  const vault = rest.slice(keyEnd + 1);
  const match = VAULT_CIPHERTEXT.exec(vault);
  if (!match) throw malformed('not a Vault ciphertext (vault:v<version>:<base64>) after the key name');
  const body = match[2] ?? '';
  const bytes = Buffer.from(body, 'base64');
  // One text ↔ one byte string: padding and the last character's spare bits must be canonical.
  if (body.length % 4 !== 0 || bytes.toString('base64') !== body) {
    throw malformed('the Vault ciphertext is not canonical padded base64');
  }
  if (bytes.length < MIN_VAULT_CIPHERTEXT_BYTES) throw malformed('the Vault ciphertext is too short');
  return { scope, key, keyVersion: Number(match[1]), vault };
}
