// How the entries a `dataFrom.find` returns become keys of the Secret. Entry
// names may hold characters a Secret key may not (`/`, `+`, `=`, spaces), so
// they are mapped onto the allowed ones; two names that map to the same key
// would silently have one value overwrite the other (which one depending on
// the backend's listing order), so that is refused instead, naming both.
import { boundedText, SpecError } from '../api/errors.js';
import type { Properties } from '../providers/provider.js';

/** Longest Secret key the API server accepts. */
const MAX_SECRET_KEY_LENGTH = 253;

/** Secret keys may hold only these characters; entry names found by `find` are mapped onto them. */
export function toSecretKey(name: string): string {
  return name.replace(/[^-._a-zA-Z0-9]/g, '_');
}

/** One value from an entry's properties: the sole property as is, several as their JSON. */
export function entryValue(props: Properties): string {
  const keys = Object.keys(props);
  return keys.length === 1 ? (props[keys[0] as string] as string) : JSON.stringify(props);
}

/** The key an entry lands in: its name without `prefix` and leading slashes, mapped onto Secret key characters. */
export function secretKeyForEntry(name: string, prefix: string | undefined): string {
  const relative = prefix && name.startsWith(prefix) ? name.slice(prefix.length) : name;
  return toSecretKey(relative.replace(/^\/+/, ''));
}

const shown = (name: string) => `"${boundedText(name, 120)}"`;

/**
 * The Secret keys and values of the entries one `find` returned. Throws
 * SpecError (InvalidSpec) naming both entries when two names map to the same
 * key (`a+b` and `a=b` both become `a_b`), and naming the entry when its name
 * maps to no valid key (empty, `.`, `..`, longer than 253 characters). The
 * result and the error are the same whatever the map's order: names are
 * visited sorted. Entry names are not secret; values never appear in a message.
 */
export function keysForFoundEntries(
  found: ReadonlyMap<string, Properties>,
  prefix: string | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  const from = new Map<string, string>();
  for (const name of [...found.keys()].sort()) {
    const key = secretKeyForEntry(name, prefix);
    if (key === '' || key === '.' || key === '..' || key.length > MAX_SECRET_KEY_LENGTH) {
      throw new SpecError(
        `dataFrom.find: entry ${shown(name)} maps to the Secret key ${shown(key)}, which is not a valid key ` +
          `(empty, "." and ".." and keys over ${MAX_SECRET_KEY_LENGTH} characters are not); narrow the find or rename the entry`,
      );
    }
    const first = from.get(key);
    if (first !== undefined) {
      throw new SpecError(
        `dataFrom.find: entries ${shown(first)} and ${shown(name)} both map to the Secret key ${shown(key)} ` +
          '(characters other than letters, digits, "-", "_" and "." become "_"); narrow the find or rename one of them',
      );
    }
    from.set(key, name);
    // Defined, not assigned: an entry named __proto__ is a valid key, not the object's prototype.
    Object.defineProperty(out, key, {
      value: entryValue(found.get(name) as Properties),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}
