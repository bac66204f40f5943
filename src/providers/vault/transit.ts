// Vault transit for secretsync ciphertexts: decryption for Vault stores that
// set `decrypt.transit` (inline `data[].ciphertext` and fetched values), and
// encryption / rewrapping for `secretsync encrypt --transit` and
// `secretsync reencrypt --transit`. Vault holds the key; the binding to where a
// value may be used is the key-derivation context (transitContext), so the key
// must be a derived one: that is checked before the first decrypt and encrypt,
// because a key without derivation would ignore the context and let a
// ciphertext be used anywhere. What Vault returns is cached per decryptor,
// like KMS results (one cache per store client).
import { createHash } from 'node:crypto';
import { Reasons, type CiphertextScope } from '../../api/types.js';
import { SecretsyncError } from '../../api/errors.js';
import { raceAbort, throwIfAborted } from '../../api/abort.js';
import { canonicalContext, encryptionContext, isCiphertext } from '../../crypto/ciphertext.js';
import {
  formatTransitCiphertext,
  isTransitCiphertext,
  isTransitKeyName,
  parseTransitCiphertext,
  transitContext,
  type TransitCiphertext,
} from '../../crypto/transit-ciphertext.js';
import {
  DecryptCache,
  decodePlaintext,
  zeroIfAbandoned,
  type DecryptCacheOptions,
  type DecryptCacheStats,
} from '../decrypt-cache.js';
import {
  DecryptError,
  ProviderConfigError,
  ProviderError,
  type CallOptions,
  type CiphertextBinding,
} from '../provider.js';
import { VaultNotFoundError, VaultPermissionError, VaultRequestError } from './errors.js';
import type { VaultHttp } from './http.js';

export const DEFAULT_TRANSIT_MOUNT = 'transit';

/** A store's `decrypt.transit` (VaultTransitSpec), or the CLI's --mount and --key. */
export interface TransitKeySpec {
  mount?: string;
  key: string;
}

/** A call's options and its metric operation name (`transit.decrypt`, …). */
export interface TransitCallOptions extends CallOptions {
  operation: string;
}

/** Vault's HTTP API as transit uses it: a JSON body in, the reply's `data` out. */
export interface TransitApi {
  /** GET /v1/<path>. */
  read(path: string, opts: TransitCallOptions): Promise<Record<string, unknown>>;
  /** POST /v1/<path> with a JSON body. */
  write(path: string, body: Record<string, unknown>, opts: TransitCallOptions): Promise<Record<string, unknown>>;
}

/** The TransitApi of a Vault store's HTTP client (its token, TLS, budget, failover and metrics). */
export function httpTransitApi(http: VaultHttp): TransitApi {
  const dataOf = (answer: { data?: Record<string, unknown> | null } | undefined) => answer?.data ?? {};
  return {
    read: async (path, opts) => dataOf(await http.request('GET', `v1/${path}`, { ...opts, key: path })),
    write: async (path, body, opts) => dataOf(await http.request('POST', `v1/${path}`, { ...opts, body, key: path })),
  };
}

/** The status and Vault error strings of the store client's errors (errors.ts). */
export const httpFailureOf: FailureOf = (err) => {
  if (err instanceof VaultRequestError) return { status: err.status, errors: err.vaultErrors };
  if (err instanceof VaultNotFoundError) return { status: 404, errors: [] };
  if (err instanceof VaultPermissionError) return { status: 403, errors: [] };
  return undefined;
};

/**
 * How a failed Vault request is told apart: its HTTP status and Vault's own
 * error strings (`{"errors": [...]}`). Vault transit answers 400 for a
 * ciphertext it refuses (wrong context, modified, unknown key).
 */
export interface VaultFailure {
  status: number;
  errors: readonly string[];
}

/** The status and error strings of a failed Vault request, when `err` carries them. */
export type FailureOf = (err: unknown) => VaultFailure | undefined;

/** A mount path: segments of letters, digits, `_`, `-` and `.` (never `.` or `..`), so requests cannot walk elsewhere. */
const MOUNT_PATTERN = /^[A-Za-z0-9_.-]+(?:\/[A-Za-z0-9_.-]+)*$/;

export interface TransitKeyInfo {
  derived: boolean;
  type: string;
  latestVersion: number;
}

/** The transit engine's key `key` under `mount`, and the calls secretsync makes with it. */
export class TransitKey {
  readonly mount: string;
  readonly key: string;
  /** Set once the key was seen to be derived; a failed check is not remembered. */
  private checked: Promise<void> | undefined;

  constructor(
    private readonly api: TransitApi,
    spec: TransitKeySpec,
    private readonly failureOf: FailureOf,
  ) {
    const mount = (spec.mount ?? DEFAULT_TRANSIT_MOUNT).replace(/^\/+|\/+$/g, '');
    if (!MOUNT_PATTERN.test(mount) || mount.split('/').some((segment: string) => segment === '.' || segment === '..')) {
      throw new ProviderConfigError(
        'decrypt.transit.mount must be a Vault mount path (letters, digits, "_", "-", ".", "/")',
      );
    }
    if (typeof spec.key !== 'string' || !isTransitKeyName(spec.key)) {
      throw new ProviderConfigError(
        'decrypt.transit.key must be a transit key name (letters, digits and "_", with "-" and "." inside; at most 256)',
      );
    }
    this.mount = mount;
    this.key = spec.key;
  }

  /** `<mount>/keys/<key>`: the key's type, version and whether it is derived. */
  async info(opts: CallOptions = {}): Promise<TransitKeyInfo> {
    const what = `transit key ${this.label()}`;
    let data: Record<string, unknown>;
    try {
      data = await this.api.read(`${this.mount}/keys/${this.key}`, { ...opts, operation: 'transit.keys' });
    } catch (err) {
      const failure = this.failureOf(err);
      if (failure?.status === 404) {
        // The key may be created later; the client is fine (rebuilding it would only log in again).
        throw new ProviderConfigError(`${what} does not exist`, {
          reason: Reasons.TransitKeyNotFound,
          clientUnusable: false,
        });
      }
      if (failure?.status === 403) {
        throw new ProviderConfigError(
          `${what}: permission denied reading it; the store's Vault policy needs "read" on ${this.mount}/keys/${this.key} ` +
            '(secretsync checks that the key is derived before it trusts a ciphertext bound by context)',
          { reason: Reasons.PermissionDenied, clientUnusable: false },
        );
      }
      throw err;
    }
    return {
      derived: data.derived === true,
      type: typeof data.type === 'string' ? data.type : 'unknown',
      latestVersion: typeof data.latest_version === 'number' ? data.latest_version : 0,
    };
  }

  /**
   * Resolves once the key is known to be derived (then never asks again);
   * ProviderConfigError `TransitKeyNotDerived` when it is not, because Vault
   * would then ignore the context that binds a ciphertext to its place.
   * The read is shared by every caller, so it takes no caller's signal (the
   * client's request deadline bounds it); each caller stops on its own.
   */
  requireDerived(opts: CallOptions = {}): Promise<void> {
    const check = (this.checked ??= this.info().then((info) => {
      if (!info.derived) {
        throw new ProviderConfigError(
          `transit key ${this.label()} was created without key derivation (derived=false), so Vault would decrypt its ` +
            'ciphertexts in any namespace; secretsync refuses it. Create a key with derived=true ' +
            `(vault write -f ${this.mount}/keys/NAME derived=true) and name it in decrypt.transit.key`,
          { reason: Reasons.TransitKeyNotDerived, clientUnusable: false },
        );
      }
    }));
    check.catch(() => {
      if (this.checked === check) this.checked = undefined;
    });
    return raceAbort(check, opts.signal, `transit key ${this.label()}`);
  }

  /** Vault encrypts `plaintext` under the context of `scope` and `binding`; the secretsync text form. */
  async encrypt(
    plaintext: Buffer,
    scope: CiphertextScope,
    binding: Partial<CiphertextBinding>,
    opts: CallOptions = {},
  ): Promise<string> {
    const context = transitContext(scope, binding);
    await this.requireDerived(opts);
    const body = { plaintext: plaintext.toString('base64'), context };
    let data: Record<string, unknown>;
    try {
      data = await this.api.write(`${this.mount}/encrypt/${this.key}`, body, { ...opts, operation: 'transit.encrypt' });
    } catch (err) {
      throw this.translate(err, 'encrypt', scope);
    } finally {
      body.plaintext = '';
    }
    return formatTransitCiphertext({ scope, key: this.key, vault: vaultCiphertextOf(data) });
  }

  /**
   * Rewraps a transit ciphertext to the key's newest version (POST
   * <mount>/rewrap/<key>): the value never leaves Vault; the scope and binding
   * stay. Returns the new text (the same text when it already was the newest).
   */
  async rewrap(text: string, binding: Partial<CiphertextBinding>, opts: CallOptions = {}): Promise<string> {
    const c = this.parseForThisKey(text);
    const context = transitContext(c.scope, binding);
    await this.requireDerived(opts);
    let data: Record<string, unknown>;
    try {
      data = await this.api.write(
        `${this.mount}/rewrap/${this.key}`,
        { ciphertext: c.vault, context },
        { ...opts, operation: 'transit.rewrap' },
      );
    } catch (err) {
      throw this.translate(err, 'rewrap', c.scope);
    }
    return formatTransitCiphertext({ scope: c.scope, key: this.key, vault: vaultCiphertextOf(data) });
  }

  /** Vault's answer to decrypting `c` in `context` (base64 context), as bytes the caller owns. */
  async decryptParsed(c: TransitCiphertext, context: string, opts: CallOptions = {}): Promise<Buffer> {
    await this.requireDerived(opts);
    let data: Record<string, unknown>;
    try {
      data = await this.api.write(
        `${this.mount}/decrypt/${this.key}`,
        { ciphertext: c.vault, context },
        { ...opts, operation: 'transit.decrypt' },
      );
    } catch (err) {
      throw this.translate(err, 'decrypt', c.scope);
    }
    const plaintext = data.plaintext;
    if (typeof plaintext !== 'string') throw new ProviderError(`Vault's transit decrypt answer has no plaintext`);
    return Buffer.from(plaintext, 'base64');
  }

  /**
   * Many decrypts in one request (`batch_input`, with
   * `partial_failure_response_code: 200` so that one refused item does not
   * hide the others' results). One result per item, in order: the bytes
   * (the caller's), or the item's own error. A failure of the whole request
   * (sealed, denied, unreachable) is every item's error.
   */
  async decryptBatch(
    items: readonly { c: TransitCiphertext; context: string }[],
    opts: CallOptions = {},
  ): Promise<(Buffer | Error)[]> {
    if (items.length === 1) {
      const only = items[0] as { c: TransitCiphertext; context: string };
      return [await this.decryptParsed(only.c, only.context, opts).catch((err: unknown) => toError(err))];
    }
    try {
      await this.requireDerived(opts);
    } catch (err) {
      return items.map(() => toError(err));
    }
    let data: Record<string, unknown>;
    try {
      data = await this.api.write(
        `${this.mount}/decrypt/${this.key}`,
        {
          batch_input: items.map(({ c, context }) => ({ ciphertext: c.vault, context })),
          partial_failure_response_code: 200,
        },
        { ...opts, operation: 'transit.decrypt' },
      );
    } catch (err) {
      // Every item refused (Vault answers 400 then, with no per-item detail the client keeps), or the request failed.
      return items.map(({ c }) => this.translate(err, 'decrypt', c.scope));
    }
    const results = data.batch_results;
    if (!Array.isArray(results) || results.length !== items.length) {
      const err = new ProviderError(`Vault's transit batch decrypt answer does not have one result per item`);
      return items.map(() => err);
    }
    return items.map(({ c }, i) => {
      const result = results[i] as { plaintext?: unknown; error?: unknown } | null;
      if (typeof result?.error === 'string' && result.error !== '') {
        return this.translate(new BatchItemRefused(result.error), 'decrypt', c.scope);
      }
      if (typeof result?.plaintext !== 'string')
        return new ProviderError(`Vault's transit decrypt answer has no plaintext`);
      return Buffer.from(result.plaintext, 'base64');
    });
  }

  /** Parses a transit text and checks it names this key; DecryptError (quoting nothing of the text) otherwise. */
  parseForThisKey(text: string): TransitCiphertext {
    if (!isTransitCiphertext(text) && isCiphertext(text)) {
      throw new DecryptError(
        'a KMS ciphertext: this Vault store decrypts Vault transit ciphertexts (secretsync encrypt --transit); ' +
          'use a store with decrypt.kms for it',
      );
    }
    const c = parseTransitCiphertext(text);
    if (c.key !== this.key) {
      throw new DecryptError(
        `made with transit key "${c.key}", but this store decrypts with ${this.label()}; ` +
          "encrypt it again with the store's key (or point decrypt.transit.key at the key that made it)",
      );
    }
    return c;
  }

  label(): string {
    return `"${this.key}" (mount ${this.mount})`;
  }

  /**
   * Vault's refusals in terms of the provider contract. A 400 from transit is
   * the ciphertext's fault (modified, another context, a version too old):
   * DecryptError. Vault's error strings are never quoted: some repeat input.
   */
  private translate(err: unknown, operation: string, scope: CiphertextScope): Error {
    const failure = err instanceof BatchItemRefused ? { status: 400, errors: [err.vaultError] } : this.failureOf(err);
    if (failure?.status === 400) {
      const errors = failure.errors.join('; ');
      if (operation === 'encrypt')
        return new ProviderConfigError(`Vault refused to encrypt with transit key ${this.label()}`);
      if (/too old|disallowed by policy/i.test(errors)) {
        return new DecryptError(
          `Vault refused to ${operation} it: its key version is below the key's min_decryption_version (rewrap it with secretsync reencrypt --transit)`,
        );
      }
      if (/key not found|no existing key/i.test(errors)) {
        return new DecryptError(`Vault refused to ${operation} it: transit key ${this.label()} does not exist`);
      }
      return new DecryptError(`Vault refused to ${operation} it (scope ${scope}); ${SCOPE_HINT[scope]}`);
    }
    if (err instanceof SecretsyncError) return err;
    return err instanceof Error ? err : new ProviderError(`Vault transit ${operation} failed`);
  }
}

/** One item of a batch that Vault refused (its error string kept for classification, never shown). */
class BatchItemRefused extends Error {
  constructor(readonly vaultError: string) {
    super('refused');
  }
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new ProviderError(String(err));
}

const SCOPE_HINT: Record<CiphertextScope, string> = {
  strict: 'it was made for another namespace, ManagedSecret or secret key, or was modified',
  namespace: 'it was made for another namespace, or was modified',
  cluster: 'it was made under another key, or was modified',
};

function vaultCiphertextOf(data: Record<string, unknown>): string {
  const ciphertext = data.ciphertext;
  if (typeof ciphertext !== 'string') throw new ProviderError(`Vault's transit answer has no ciphertext`);
  return ciphertext;
}

/** Most items in one batch decrypt request. */
export const MAX_TRANSIT_BATCH = 100;
/**
 * Batch requests in flight at once per store client; decrypts asked for
 * meanwhile wait and go in the next batch. One: the operator's workers then
 * fill each batch while the previous one is answered (or waits for the store's
 * request budget), so N decrypts cost about N / workers requests; a request
 * that hangs is bounded by the client's request deadline.
 */
export const MAX_TRANSIT_BATCHES_IN_FLIGHT = 1;

export interface TransitDecryptorOptions extends DecryptCacheOptions {
  /** Items per request (default MAX_TRANSIT_BATCH; 1 turns batching off). */
  maxBatch?: number;
}

interface PendingDecrypt {
  c: TransitCiphertext;
  context: string;
  resolve(value: Buffer): void;
  reject(err: Error): void;
}

/**
 * Decrypts transit ciphertexts for one Vault store client. Distinct
 * ciphertexts asked for together (a cold start, many ManagedSecrets at once)
 * share batch requests, so they cost few of the store's request budget;
 * identical ones share one cache entry.
 */
export class TransitDecryptor {
  private readonly cache: DecryptCache;
  private readonly maxBatch: number;
  private queue: PendingDecrypt[] = [];
  private inFlight = 0;
  private flushScheduled = false;
  private readonly batchCounters = { requests: 0, items: 0 };

  constructor(
    readonly transitKey: TransitKey,
    options: TransitDecryptorOptions = {},
  ) {
    this.cache = new DecryptCache(options);
    this.maxBatch = Math.max(1, Math.min(options.maxBatch ?? MAX_TRANSIT_BATCH, MAX_TRANSIT_BATCH));
  }

  /**
   * The value of a transit ciphertext used at `binding`. DecryptError when it
   * is not one, names another key, was modified or belongs somewhere else;
   * ProviderConfigError when the key is not derived (or cannot be read);
   * Vault's own failures (sealed, unreachable, permission) as the client maps
   * them. No message carries a value.
   */
  async decrypt(ciphertext: string, binding: CiphertextBinding, opts: CallOptions = {}): Promise<string> {
    return decodePlaintext(await this.decryptBytes(ciphertext, binding, opts), where(binding));
  }

  /** Like `decrypt`, as bytes the caller owns (and may zero). */
  async decryptBytes(ciphertext: string, binding: CiphertextBinding, opts: CallOptions = {}): Promise<Buffer> {
    throwIfAborted(opts.signal, where(binding));
    let parsed: TransitCiphertext;
    let context: string;
    try {
      parsed = this.transitKey.parseForThisKey(ciphertext);
      context = transitContext(parsed.scope, binding);
    } catch (err) {
      throw prefixed(err, binding);
    }
    const key = cacheKey(this.transitKey, parsed.vault, encryptionContext(parsed.scope, binding));
    // Shared by every caller wanting the same result, so it takes no caller's signal; each stops on its own.
    const load = this.cache.get(key, () => this.enqueue(parsed, context));
    const raced = raceAbort(load, opts.signal, where(binding));
    zeroIfAbandoned(load, opts.signal);
    try {
      return await raced;
    } catch (err) {
      throw prefixed(err, binding, parsed);
    }
  }

  /** One decrypt, sent in the next batch. */
  private enqueue(c: TransitCiphertext, context: string): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      this.queue.push({ c, context, resolve, reject });
      this.schedule();
    });
  }

  /** Sends what is queued on the next turn of the event loop (so decrypts asked for together go together). */
  private schedule(): void {
    if (this.flushScheduled || this.queue.length === 0 || this.inFlight >= MAX_TRANSIT_BATCHES_IN_FLIGHT) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      while (this.queue.length > 0 && this.inFlight < MAX_TRANSIT_BATCHES_IN_FLIGHT)
        this.send(this.queue.splice(0, this.maxBatch));
    });
  }

  private send(batch: PendingDecrypt[]): void {
    this.inFlight++;
    this.batchCounters.requests++;
    this.batchCounters.items += batch.length;
    this.transitKey
      .decryptBatch(batch)
      .then(
        (results) =>
          batch.forEach((item, i) => {
            const result = results[i];
            if (Buffer.isBuffer(result)) item.resolve(result);
            else item.reject(result ?? new ProviderError('no result for a batch item'));
          }),
        (err: unknown) => batch.forEach((item) => item.reject(toError(err))),
      )
      .finally(() => {
        this.inFlight--;
        this.schedule();
      });
  }

  /** Batch requests sent and the decrypts they carried (each request is one of the store's budget). */
  batchStats(): { requests: number; items: number } {
    return { ...this.batchCounters };
  }

  /** The key is readable and derived (for the store's health check). */
  check(opts: CallOptions = {}): Promise<void> {
    return this.transitKey.requireDerived(opts);
  }

  cacheStats(): DecryptCacheStats {
    return this.cache.stats();
  }

  /** Forgets every cached value (zeroing them). */
  clear(): void {
    this.cache.clear();
  }
}

/** The cache identity of one transit decrypt: mount, key, Vault ciphertext and context, length-prefixed. */
function cacheKey(key: TransitKey, vault: string, context: Record<string, string>): string {
  const hash = createHash('sha256');
  const parts: Buffer[] = [key.mount, key.key, vault].map((s) => Buffer.from(s, 'utf8'));
  parts.push(canonicalContext(context));
  for (const part of parts) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(part.length);
    hash.update(length).update(part);
  }
  return hash.digest('hex');
}

function where(binding: CiphertextBinding): string {
  return `ciphertext for secret key "${binding.secretKey}" of ManagedSecret ${binding.namespace}/${binding.managedSecret}`;
}

function prefixed(err: unknown, binding: CiphertextBinding, c?: TransitCiphertext): Error {
  if (err instanceof DecryptError) {
    return new DecryptError(`${where(binding)}${c ? ` (transit, scope ${c.scope})` : ''}: ${err.message}`);
  }
  return err instanceof Error ? err : new Error(String(err));
}
