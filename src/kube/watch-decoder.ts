// Turns the bytes of a watch response into events. The network cuts the
// stream anywhere, also inside a multi-byte UTF-8 character or a JSON line, so
// bytes are decoded with a streaming decoder that carries an incomplete
// character over to the next chunk (decoding each chunk on its own turns such
// a character into U+FFFD in the cache). Pure and synchronous, so that it can
// be tested byte by byte and fuzzed.
import { StringDecoder } from 'node:string_decoder';
import { LimitError, SecretsyncError } from '../api/errors.js';

/** Longest watch line kept while waiting for its end: far above etcd's 1.5 MiB object limit. */
export const MAX_WATCH_LINE_CHARS = 32 * 1024 * 1024;

/**
 * Splits a UTF-8 byte stream into its non-blank lines, whatever the chunk
 * boundaries, in time linear in the stream: a line longer than a chunk is kept
 * as its pieces (none holds a newline) and joined once its end arrives. A
 * 1.2 MB line (a Secret near the 1 MiB bound) comes in some 75 chunks of
 * 16 KiB; appending each to the line so far and searching it from its start
 * again took 90–150 ms of one event-loop turn (measured, docs/performance.md
 * "Hostile namespace"), and a namespace decides how big its objects are.
 */
export class WatchLineDecoder {
  private readonly decoder = new StringDecoder('utf8');
  /** The pieces of the line not yet ended, in order; no piece holds a newline. */
  private pending: string[] = [];
  private pendingChars = 0;

  constructor(private readonly maxLineChars = MAX_WATCH_LINE_CHARS) {}

  /** Feeds the next chunk; returns the lines it completed (without their line ends). */
  push(chunk: Uint8Array): string[] {
    return this.split(this.decoder.write(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk)));
  }

  /**
   * The stream ended: returns the unterminated rest, if any is not blank. The
   * API server ends every event with a newline, so a rest is a cut-off event.
   */
  end(): string[] {
    const rest = this.takePending(this.decoder.end());
    return rest.trim().length > 0 ? [stripCr(rest)] : [];
  }

  private split(text: string): string[] {
    const lines: string[] = [];
    let start = 0;
    let newline: number;
    // Only the new text is searched: the pending pieces hold no newline.
    while ((newline = text.indexOf('\n', start)) >= 0) {
      const line = stripCr(this.takePending(text.slice(start, newline)));
      if (line.trim().length > 0) lines.push(line);
      start = newline + 1;
    }
    const rest = text.slice(start);
    if (this.pendingChars + rest.length > this.maxLineChars)
      throw new LimitError(
        'WatchEventTooLarge',
        `a watch event is longer than ${this.maxLineChars} characters; restarting the watch`,
        'transient',
      );
    if (rest.length > 0) {
      this.pending.push(rest);
      this.pendingChars += rest.length;
    }
    return lines;
  }

  /** The pending pieces followed by `last`, as one string; nothing is pending afterwards. */
  private takePending(last: string): string {
    if (this.pending.length === 0) return last;
    this.pending.push(last);
    const whole = this.pending.join('');
    this.pending = [];
    this.pendingChars = 0;
    return whole;
  }
}

const stripCr = (line: string): string => (line.endsWith('\r') ? line.slice(0, -1) : line);

/** One watch event: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR, and its object (a Status for ERROR). */
export interface WatchEvent<T> {
  type: string;
  object: T;
}

/** Parses one watch line; a line that is not an event is a broken stream, not a reason to stop for good. */
export function parseWatchEvent<T = unknown>(line: string): WatchEvent<T> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    // Never the line itself: it may hold a Secret's data.
    throw new SecretsyncError(
      'WatchStreamBroken',
      'transient',
      `a watch line of ${line.length} characters is not JSON`,
    );
  }
  const event = parsed as { type?: unknown; object?: unknown } | null;
  if (
    typeof event !== 'object' ||
    event === null ||
    typeof event.type !== 'string' ||
    typeof event.object !== 'object' ||
    event.object === null ||
    // Every event but ERROR (whose object is a Status) carries an object with metadata.
    (event.type !== 'ERROR' &&
      (typeof (event.object as { metadata?: unknown }).metadata !== 'object' ||
        (event.object as { metadata?: unknown }).metadata === null))
  )
    throw new SecretsyncError('WatchStreamBroken', 'transient', 'a watch line is not a {type, object} event');
  return { type: event.type, object: event.object as T };
}
