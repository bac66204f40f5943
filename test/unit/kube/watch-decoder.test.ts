// The watch line decoder on its own: every way the network can cut a stream
// (inside a multi-byte character, inside a line, between \r and \n) must give
// the same events as the whole stream.
import { expect } from 'chai';
import { LimitError, SecretsyncError } from '../../../src/api/errors.js';
import { WatchLineDecoder, parseWatchEvent } from '../../../src/kube/watch-decoder.js';

/** Two-, three- and four-byte characters, where a cut falls inside one character. */
const TEXT = 'ü€😀 naïve 日本語';

const event = (name: string, value: string) =>
  JSON.stringify({ type: 'ADDED', object: { metadata: { name, annotations: { note: value } } } });

const feed = (decoder: WatchLineDecoder, chunks: Uint8Array[]): string[] => [
  ...chunks.flatMap((c) => decoder.push(c)),
  ...decoder.end(),
];

describe('WatchLineDecoder', () => {
  const stream = Buffer.from(`${event('a', TEXT)}\n${event('b', `${TEXT}${TEXT}`)}\n`, 'utf8');
  const expected = [event('a', TEXT), event('b', `${TEXT}${TEXT}`)];

  it('gives the same lines for a stream cut in two at every byte position', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const lines = feed(new WatchLineDecoder(), [stream.subarray(0, cut), stream.subarray(cut)]);
      expect(lines, `cut at byte ${cut}`).to.deep.equal(expected);
    }
  });

  it('gives the same lines for a stream fed one byte at a time', () => {
    const bytes = [...stream].map((b) => Uint8Array.of(b));
    expect(feed(new WatchLineDecoder(), bytes)).to.deep.equal(expected);
    const parsed = expected.map((l) => parseWatchEvent<{ metadata: { annotations: { note: string } } }>(l));
    expect(parsed[0]?.object.metadata.annotations.note).to.equal(TEXT);
    expect(JSON.stringify(parsed)).to.not.contain('\uFFFD');
  });

  it('skips blank lines, drops a \\r before the \\n, and returns several lines of one chunk', () => {
    const decoder = new WatchLineDecoder();
    expect(decoder.push(Buffer.from('\n\r\n{"a":1}\r'))).to.deep.equal([]);
    expect(decoder.push(Buffer.from('\n{"b":2}\n  \n{"c":3}\n{"d"'))).to.deep.equal(['{"a":1}', '{"b":2}', '{"c":3}']);
    expect(decoder.end()).to.deep.equal(['{"d"']);
    expect(decoder.end()).to.deep.equal([]);
  });

  it('decodes a long line in many small chunks in time linear in its length', () => {
    // 16 MB in 16 KiB chunks: searching and copying the line so far for every chunk
    // is about a thousand passes over 8 MB on average, seconds of one event-loop turn; once through, milliseconds.
    const line = event('big', 'x'.repeat(16 * 1024 * 1024));
    const bytes = Buffer.from(`${line}\n${event('next', 'y')}\n`, 'utf8');
    const decoder = new WatchLineDecoder();
    const started = performance.now();
    const lines: string[] = [];
    for (let i = 0; i < bytes.length; i += 16 * 1024) lines.push(...decoder.push(bytes.subarray(i, i + 16 * 1024)));
    const elapsed = performance.now() - started;
    expect(lines).to.have.length(2);
    expect(lines[0] === line, 'the long line comes out whole').to.equal(true);
    expect(lines[1]).to.equal(event('next', 'y'));
    expect(elapsed).to.be.below(1_500);
  });

  it('refuses to buffer a line beyond its bound', () => {
    const decoder = new WatchLineDecoder(16);
    expect(decoder.push(Buffer.from('{"short":1}\n'))).to.deep.equal(['{"short":1}']);
    expect(() => decoder.push(Buffer.from('x'.repeat(17)))).to.throw(LimitError, /longer than 16 characters/);
  });
});

describe('parseWatchEvent', () => {
  it('reads a {type, object} line', () => {
    expect(parseWatchEvent('{"type":"DELETED","object":{"metadata":{"name":"x"}}}')).to.deep.equal({
      type: 'DELETED',
      object: { metadata: { name: 'x' } },
    });
    // ERROR carries a Status, which needs no metadata.
    expect(parseWatchEvent('{"type":"ERROR","object":{"code":410}}').object).to.deep.equal({ code: 410 });
  });

  it('refuses anything else as a transient error that never quotes the line', () => {
    for (const line of [
      '{"type":"ADDED","object":{"metadata":{"name":"x","annotations":{"v":"s3cret"}}}',
      '[1,2]',
      '{"type":"ADDED"}',
      '{"type":"ADDED","object":{"data":{"v":"s3cret"}}}',
      'null',
    ]) {
      let caught: unknown;
      try {
        parseWatchEvent(line);
      } catch (err) {
        caught = err;
      }
      expect(caught, line).to.be.instanceOf(SecretsyncError);
      expect((caught as SecretsyncError).retry).to.equal('transient');
      expect((caught as Error).message).to.not.contain('s3cret');
    }
  });
});
