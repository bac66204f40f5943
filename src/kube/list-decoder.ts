// Decodes a list response (`{"kind":…,"metadata":{…},"items":[{…},{…}]}`) item
// by item as its bytes arrive, instead of reading the whole body into one
// string and parsing it at once. A namespace may write objects of a MiB each
// (etcd's limit); a page of 100 such ManagedSecrets is a 100 MB body, and
// concatenating, decoding and parsing it in one go blocked the event loop for
// 200–700 ms and held the body three times over (bytes, text, objects) until
// the cache's transform had dropped what it does not keep (measured by the
// hostile benchmark, docs/performance.md). Here each network chunk is scanned
// in the I/O callback that brought it, each item is parsed and mapped as soon
// as its last byte is in, and only the mapped items are kept.
//
// The scanner knows only what it needs of JSON: strings (with escapes, so a
// brace inside a value is not structure) and nesting. It finds the top-level
// `items` array, hands each element (an object, as every Kubernetes list has)
// to JSON.parse on its own, and keeps the rest of the document (kind,
// metadata, an empty items array) to parse at the end. Streaming JSON
// libraries (stream-json, @streamparser/json) tokenise and build every value
// in JavaScript, several times slower than JSON.parse per item; we need only
// the element boundaries.
//
// Errors never quote the body: a list of Secrets is secret.

/** The top-level fields of a list, with its items mapped. */
export interface DecodedList<R> {
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: R[];
  [field: string]: unknown;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;
const ITEMS = Buffer.from('items');

/** Where `byte` next occurs in `chunk` at or after `from`; the chunk's length when it does not. */
function indexOrEnd(chunk: Buffer, byte: number, from: number): number {
  const at = chunk.indexOf(byte, from);
  return at < 0 ? chunk.length : at;
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** A list body that is not the JSON it should be (cut off, or malformed); the message never holds its bytes. */
export class ListDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ListDecodeError';
  }
}

export class ListPageDecoder<T, R = T> {
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** Bytes of the string being read at depth 1 (a key, perhaps `items`), up to ITEMS.length + 1. */
  private key: number[] | undefined;
  private lastKey = '';
  private inItems = false;
  /** Inside the items array, between elements: what may come next. */
  private expect: 'item-or-end' | 'comma-or-end' | 'item' = 'item-or-end';
  private inItem = false;
  private itemParts: Buffer[] = [];
  private itemBytes = 0;
  private readonly outerParts: Buffer[] = [];
  private ended = false;
  readonly items: R[] = [];

  constructor(
    private readonly map: (item: T) => R,
    /** Longest item accepted, in bytes (etcd's object limit is 1.5 MiB; a list is bounded by the server's answer). */
    private readonly maxItemBytes = 64 * 1024 * 1024,
  ) {}

  /** Feeds the next chunk of the body; items completed in it are parsed and mapped now. */
  push(chunk: Buffer): void {
    if (this.ended) throw new ListDecodeError('list body: data after the end');
    const n = chunk.length;
    // Where the current run of outer (non-item) bytes or item bytes began in this chunk.
    let outerStart = this.inItems ? -1 : 0;
    let itemStart = this.inItem ? 0 : -1;
    // Next quote and backslash at or after i, found by indexOf (native) and kept until passed: long strings
    // (templates, Secret data) are skipped without looking at each byte, and no byte is searched twice.
    let nextQuote = -1;
    let nextBackslash = -1;
    for (let i = 0; i < n; i++) {
      if (this.inString && !this.escaped && this.key === undefined) {
        if (nextQuote < i) nextQuote = indexOrEnd(chunk, QUOTE, i);
        if (nextBackslash < i) nextBackslash = indexOrEnd(chunk, BACKSLASH, i);
        i = Math.min(nextQuote, nextBackslash);
        if (i >= n) break;
      }
      const c = chunk[i] as number;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === BACKSLASH) this.escaped = true;
        else if (c === QUOTE) {
          this.inString = false;
          if (this.key) {
            this.lastKey = this.key.length === ITEMS.length && ITEMS.equals(Buffer.from(this.key)) ? 'items' : '';
            this.key = undefined;
          }
        } else if (this.key && this.key.length <= ITEMS.length) this.key.push(c);
        continue;
      }
      if (this.inItems && !this.inItem && this.depth === 2) {
        // Between the elements of the items array.
        if (isSpace(c)) continue;
        if (c === CLOSE_BRACKET && this.expect !== 'item') {
          this.inItems = false;
          this.depth = 1;
          outerStart = i;
          continue;
        }
        if (c === COMMA && this.expect === 'comma-or-end') {
          this.expect = 'item';
          continue;
        }
        if (c !== OPEN_BRACE || this.expect === 'comma-or-end')
          throw new ListDecodeError(`list body: unexpected byte in the items array after item ${this.items.length}`);
        this.inItem = true;
        itemStart = i;
        this.depth = 3;
        continue;
      }
      switch (c) {
        case QUOTE:
          this.inString = true;
          if (this.depth === 1 && !this.inItems) this.key = [];
          break;
        case OPEN_BRACE:
          this.depth += 1;
          break;
        case OPEN_BRACKET:
          if (this.depth === 1 && this.lastKey === 'items' && !this.inItems) {
            this.inItems = true;
            this.expect = 'item-or-end';
            this.outerParts.push(chunk.subarray(outerStart, i + 1));
            outerStart = -1;
          }
          this.depth += 1;
          break;
        case CLOSE_BRACE:
        case CLOSE_BRACKET:
          this.depth -= 1;
          if (this.depth < 0) throw new ListDecodeError('list body: unbalanced brackets');
          if (this.inItem && this.depth === 2) {
            this.finishItem(chunk.subarray(itemStart, i + 1));
            itemStart = -1;
          }
          break;
        default:
          break;
      }
    }
    if (this.inItem && itemStart >= 0) {
      const part = chunk.subarray(itemStart);
      this.itemBytes += part.length;
      if (this.itemBytes > this.maxItemBytes)
        throw new ListDecodeError(`list body: item ${this.items.length} is longer than ${this.maxItemBytes} bytes`);
      this.itemParts.push(part);
    }
    if (outerStart >= 0 && outerStart < n) this.outerParts.push(chunk.subarray(outerStart));
  }

  /** The body ended: the list's top-level fields with the mapped items. */
  end(): DecodedList<R> {
    this.ended = true;
    if (this.depth !== 0 || this.inString || this.inItems)
      throw new ListDecodeError(`list body: ended early (after ${this.items.length} items)`);
    let outer: unknown;
    try {
      outer = JSON.parse(Buffer.concat(this.outerParts).toString('utf8'));
    } catch {
      throw new ListDecodeError('list body: the list itself is not valid JSON');
    }
    if (outer === null || typeof outer !== 'object' || Array.isArray(outer))
      throw new ListDecodeError('list body: not a JSON object');
    const list = outer as Record<string, unknown>;
    const metadata = (list.metadata ?? {}) as DecodedList<R>['metadata'];
    return { ...list, metadata, items: this.items };
  }

  private finishItem(last: Buffer): void {
    const bytes = this.itemParts.length === 0 ? last : Buffer.concat([...this.itemParts, last]);
    this.itemParts = [];
    this.itemBytes = 0;
    this.inItem = false;
    this.expect = 'comma-or-end';
    if (bytes.length > this.maxItemBytes)
      throw new ListDecodeError(`list body: item ${this.items.length} is longer than ${this.maxItemBytes} bytes`);
    let item: T;
    try {
      item = JSON.parse(bytes.toString('utf8')) as T;
    } catch {
      throw new ListDecodeError(`list body: item ${this.items.length} is not valid JSON`);
    }
    this.items.push(this.map(item));
  }
}
