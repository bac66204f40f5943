// Bounds on everything a namespace controls that the API server cannot bound
// for us: how much template source a ManagedSecret may carry, how big the
// Secret it makes may grow, and how much backend data one sync may pull in.
// A ManagedSecret's author is untrusted; without these one object could make
// the operator allocate gigabytes or list a whole account. The admin sets them
// with `secretsync run` flags; the checks here are pure, the controller calls them.
import { boundedText, LimitError } from './errors.js';
import type { FindSpec } from './types.js';

export interface Limits {
  /** UTF-8 bytes of all template sources (`target.template.data` values) of one ManagedSecret. */
  maxTemplateBytes: number;
  /** UTF-8 bytes of the data (keys and values) of one Secret, fetched or rendered. */
  maxSecretBytes: number;
  /** Keys in one Secret. */
  maxKeysPerSecret: number;
  /** Entries one `dataFrom.find` may match; the providers stop listing past it. */
  maxFindEntries: number;
  /** UTF-8 bytes of one value read from a backend. */
  maxValueBytes: number;
}

/** The defaults of the `secretsync run` flags. The API server keeps a Secret under 1 MiB anyway. */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxTemplateBytes: 65_536,
  maxSecretBytes: 1_048_576,
  maxKeysPerSecret: 1_000,
  maxFindEntries: 500,
  maxValueBytes: 1_048_576,
});

/** The reasons (Ready condition, Events) a passed bound maps to. */
export const LimitReasons = {
  TemplateTooLarge: 'TemplateTooLarge',
  SecretTooLarge: 'SecretTooLarge',
  TooManyKeys: 'TooManyKeys',
  TooManyEntries: 'TooManyEntries',
  ValueTooLarge: 'ValueTooLarge',
} as const;

/** Bytes of a string as UTF-8: what the API server and etcd count, not JavaScript's UTF-16 length. */
export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * Checks values fetched from a backend (after `find`, `extract` and decryption;
 * again after templating) before they become a Secret. `what` says where they
 * came from (`values from SecretStore team-a/vault`) for the message, which
 * names keys and sizes, never a value. The values came from the backend, so a
 * bound passed here is transient: the data may shrink, and the sync is retried
 * with back-off rather than waiting for a spec change.
 */
export function checkFetchedValues(values: Record<string, string>, limits: Limits, what: string): void {
  const keys = Object.keys(values);
  if (keys.length > limits.maxKeysPerSecret) {
    throw new LimitError(
      LimitReasons.TooManyKeys,
      `${what}: ${keys.length} keys, more than the ${limits.maxKeysPerSecret} a Secret may hold (--max-keys-per-secret)`,
      'transient',
    );
  }
  let total = 0;
  // Sorted, so that of several oversized values the message always names the same one.
  for (const key of keys.sort()) {
    const bytes = utf8Bytes(values[key] as string);
    if (bytes > limits.maxValueBytes) {
      throw new LimitError(
        LimitReasons.ValueTooLarge,
        `${what}: the value for key "${key}" is ${bytes} bytes, more than the ${limits.maxValueBytes} allowed for one value (--max-value-bytes)`,
        'transient',
      );
    }
    total += utf8Bytes(key) + bytes;
  }
  if (total > limits.maxSecretBytes) {
    throw new LimitError(
      LimitReasons.SecretTooLarge,
      `${what}: ${total} bytes of keys and values, more than the ${limits.maxSecretBytes} allowed for one Secret (--max-secret-bytes)`,
      'transient',
    );
  }
}

/**
 * The error a provider's `find` raises when more entries match than
 * `maxEntries`. Transient: the backend's entries may be deleted.
 */
export function tooManyEntries(maxEntries: number, query: FindSpec): LimitError {
  const by =
    query.nameRegexp !== undefined
      ? `nameRegexp "${boundedText(query.nameRegexp, 100)}"`
      : `prefix "${boundedText(query.prefix ?? '', 100)}"`;
  return new LimitError(
    LimitReasons.TooManyEntries,
    `dataFrom.find with ${by} matches more than ${maxEntries} entries (--max-find-entries); narrow it down`,
    'transient',
  );
}

/** Checks that a Limits object holds only positive integers (flags, tests). */
export function assertLimits(limits: Limits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || (value as number) < 1)
      throw new RangeError(`limit ${name} must be a positive integer, got ${String(value)}`);
  }
}
