// Fuzzing the watch stream decoder (src/kube/watch-decoder.ts): the bytes of a
// watch come from the API server, but what they hold (names, annotations, data)
// from whoever writes the objects, and the network cuts them anywhere. Any
// chunking of a stream gives the lines of the whole stream; any bytes end in
// lines or the decoder's own LimitError; the unfinished line never grows past
// its bound; and feeding a long line in small chunks takes linear time.
import { expect } from 'chai';
import fc from 'fast-check';
import { LimitError, SecretsyncError } from '../../../src/api/errors.js';
import { MAX_WATCH_LINE_CHARS, WatchLineDecoder, parseWatchEvent } from '../../../src/kube/watch-decoder.js';
import { assertTypedError, chunked, runs, thrownBy, timeoutFor } from './fuzz.js';

function feed(decoder: WatchLineDecoder, chunks: Buffer[]): string[] {
  return [...chunks.flatMap((c) => decoder.push(c)), ...decoder.end()];
}

/** The lines of a whole stream, as the decoder promises them: split on \n, one \r dropped, blank ones skipped. */
function linesOf(text: string): string[] {
  return text
    .split('\n')
    .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l))
    .filter((l) => l.trim().length > 0);
}

const anyText = fc.string({ maxLength: 30, unit: 'grapheme' });
const event = fc
  .record({
    type: fc.constantFrom('ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK'),
    name: anyText,
    note: anyText,
    data: fc.dictionary(fc.string({ maxLength: 5 }), anyText, { maxKeys: 3 }),
  })
  .map(({ type, name, note, data }) => ({ type, object: { metadata: { name, annotations: { note } }, data } }));
const lineEnd = fc.constantFrom('\n', '\r\n', '\n\n', '\n \n');

describe('fuzz: watch stream decoder', function () {
  this.timeout(timeoutFor(20_000));

  it('gives the same events for any chunking of a valid stream', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(event, lineEnd), { maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (events, cuts) => {
          const stream = Buffer.from(events.map(([e, end]) => JSON.stringify(e) + end).join(''), 'utf8');
          const lines = feed(new WatchLineDecoder(), chunked(stream, cuts));
          expect(lines.map((l) => parseWatchEvent(l))).to.deep.equal(events.map(([e]) => e));
        },
      ),
      runs(31, 500),
    );
  });

  it('gives the lines of the whole stream for any bytes and any chunking, or its own LimitError', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)),
      // Mostly text, with cut and broken multi-byte characters among it.
      fc
        .array(
          fc.oneof(
            anyText.map((s) => Buffer.from(s)),
            fc.constantFrom(
              Buffer.from('\n'),
              Buffer.from('\r'),
              Buffer.of(0xe2, 0x82),
              Buffer.of(0xf0, 0x9f),
              Buffer.of(0xff),
              Buffer.of(0xc0, 0x80),
            ),
          ),
          {
            maxLength: 20,
          },
        )
        .map((parts) => Buffer.concat(parts)),
    );
    fc.assert(
      fc.property(
        bytes,
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constant(MAX_WATCH_LINE_CHARS)),
        (stream, cuts, max) => {
          const whole = linesOf(stream.toString('utf8'));
          let lines: string[] | undefined;
          const err = thrownBy(() => (lines = feed(new WatchLineDecoder(max), chunked(stream, cuts))));
          if (err !== undefined) {
            assertTypedError(err, [LimitError]);
            return;
          }
          expect(lines).to.deep.equal(whole);
        },
      ),
      runs(32, 1_000),
    );
  });

  it('refuses exactly when the unfinished line at a chunk boundary passes the bound', () => {
    // Valid UTF-8: the unfinished line after a chunk is what the stream so far decodes to after its last
    // newline, less an incomplete last character.
    fc.assert(
      fc.property(
        fc.array(fc.oneof(anyText, fc.constant('\n')), { maxLength: 12 }).map((p) => Buffer.from(p.join(''), 'utf8')),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.integer({ min: 1, max: 40 }),
        (stream, cuts, max) => {
          const decoder = new WatchLineDecoder(max);
          let fed = 0;
          for (const chunk of chunked(stream, cuts)) {
            fed += chunk.length;
            const sofar = new TextDecoder('utf-8', { fatal: false }).decode(
              stream.subarray(0, completeUtf8(stream, fed)),
            );
            const unfinished = sofar.length - (sofar.lastIndexOf('\n') + 1);
            const err = thrownBy(() => decoder.push(chunk));
            if (unfinished > max) {
              assertTypedError(err, [LimitError]);
              expect((err as LimitError).reason).to.equal('WatchEventTooLarge');
              return;
            }
            expect(err).to.equal(undefined);
          }
        },
      ),
      runs(33, 500),
    );
  });

  it('parses any line to an event or its own transient error, never quoting the line', () => {
    const line = fc.oneof(
      fc.string({ maxLength: 100 }),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? ''),
      fc
        .record({ type: fc.jsonValue({ maxDepth: 1 }), object: fc.jsonValue({ maxDepth: 3 }) }, { requiredKeys: [] })
        .map((v) => JSON.stringify(v)),
    );
    fc.assert(
      fc.property(line, (l) => {
        const err = thrownBy(() => parseWatchEvent(l));
        if (err === undefined) return;
        assertTypedError(err, [SecretsyncError], l.length >= 12 ? [l] : []);
        expect((err as SecretsyncError).reason).to.equal('WatchStreamBroken');
        expect((err as SecretsyncError).retry).to.equal('transient');
      }),
      runs(34, 1_000),
    );
  });

  it('takes linear time for a long line fed in small chunks', () => {
    // Before: the unfinished line was joined and searched again for every chunk (a 4 MiB line in 4 KiB
    // chunks took seconds; 16 MiB in 16 KiB chunks 23 s).
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 4 }), fc.constantFrom(1024, 4096, 16_384), (mib, chunkSize) => {
        const decoder = new WatchLineDecoder();
        const chunk = Buffer.alloc(chunkSize, 0x61);
        const started = performance.now();
        for (let fed = 0; fed < mib << 20; fed += chunkSize) expect(decoder.push(chunk)).to.deep.equal([]);
        const [line] = decoder.push(Buffer.from('\n'));
        const elapsed = performance.now() - started;
        expect(line?.length).to.be.at.least(mib << 20);
        expect(elapsed, `${mib} MiB in ${chunkSize}-byte chunks: ${elapsed.toFixed(0)} ms`).to.be.lessThan(1_500);
      }),
      runs(35, 4),
    );
  });
});

/** How many leading bytes of `bytes[0:end]` form complete UTF-8 characters (a cut character is held back). */
function completeUtf8(bytes: Buffer, end: number): number {
  for (let back = 1; back <= Math.min(3, end); back++) {
    const b = bytes[end - back] as number;
    if ((b & 0xc0) === 0x80) continue;
    const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    return need > back ? end - back : end;
  }
  return end;
}

describe('fuzz findings: watch stream decoder (fixed examples)', () => {
  it('decodes a 1.5 MiB event (etcd’s object limit) sent in 1 KiB pieces in linear time', function () {
    this.timeout(10_000);
    // Before: 0.9 s for this one event, every time such an object changed; now a few ms.
    const object = { metadata: { name: 'big' }, data: { v: 'x'.repeat(1_536 * 1024) } };
    const stream = Buffer.from(`${JSON.stringify({ type: 'MODIFIED', object })}\n`);
    const decoder = new WatchLineDecoder();
    const started = performance.now();
    const lines = chunked(
      stream,
      Array.from({ length: stream.length >> 10 }, (_, i) => i << 10),
    ).flatMap((c) => decoder.push(c));
    const elapsed = performance.now() - started;
    expect(lines).to.have.length(1);
    expect(parseWatchEvent<typeof object>(lines[0] as string).object.data.v.length).to.equal(1_536 * 1024);
    expect(elapsed, `${elapsed.toFixed(0)} ms`).to.be.lessThan(300);
  });

  it('keeps a \\r that ends one chunk and drops it before a \\n that starts the next', () => {
    const decoder = new WatchLineDecoder();
    expect(decoder.push(Buffer.from('{"a":'))).to.deep.equal([]);
    expect(decoder.push(Buffer.from('1}\r'))).to.deep.equal([]);
    expect(decoder.push(Buffer.from('\n{"b":\r2}\n'))).to.deep.equal(['{"a":1}', '{"b":\r2}']);
  });
});
