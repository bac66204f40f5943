// s3://BUCKET/KEY as --out and --in: what is accepted and what is refused
// (before any AWS call), with messages that name the problem. The calls
// themselves run against moto in test/integration/backup/s3.test.ts.
import { expect } from 'chai';
import { isS3Url, parseS3Url, s3Url } from '../../../src/backup/s3.js';
import { main } from '../../../src/cli/main.js';
import { captureIo } from '../helpers/index.js';

describe('backup S3 locations', () => {
  it('parses s3://BUCKET/KEY, keeping the key whole', () => {
    expect(parseS3Url('s3://acme-backups/secretsync/nightly.backup')).to.deep.equal({
      bucket: 'acme-backups',
      key: 'secretsync/nightly.backup',
    });
    expect(parseS3Url('S3://a.b-c/x y/z')).to.deep.equal({ bucket: 'a.b-c', key: 'x y/z' });
    expect(s3Url({ bucket: 'b12', key: 'k/1' })).to.equal('s3://b12/k/1');
    expect(isS3Url('s3://b/k')).to.equal(true);
    expect(isS3Url('./s3:/b/k')).to.equal(false);
    expect(isS3Url('/backups/x.backup')).to.equal(false);
  });

  it('refuses a bucket that is no bucket name, and a key that is missing or a folder', () => {
    expect(() => parseS3Url('s3://bucket')).to.throw('is not s3://BUCKET/KEY');
    expect(() => parseS3Url('s3://Bucket_1/k')).to.throw('"Bucket_1" is not an S3 bucket name');
    expect(() => parseS3Url('s3://ab/k')).to.throw('is not an S3 bucket name');
    expect(() => parseS3Url('s3://a..b/k')).to.throw('is not an S3 bucket name');
    expect(() => parseS3Url('s3://bucket/')).to.throw('the object key must name a file');
    expect(() => parseS3Url('s3://bucket/dir/')).to.throw('the object key must name a file');
    expect(() => parseS3Url(`s3://bucket/${'k'.repeat(1025)}`)).to.throw('longer than 1024 bytes');
  });

  it('backup and restore refuse a malformed s3:// before reaching AWS or a cluster', async () => {
    for (const args of [
      ['backup', '--out', 's3://bucket/', '--kms-key', 'alias/x'],
      ['restore', '--in', 's3://bucket/'],
    ]) {
      const io = captureIo();
      const code = await main(['node', 'secretsync', ...args], io);
      expect(code, args.join(' ')).to.equal(1);
      expect(io.errLines.join('\n')).to.equal(
        'secretsync: s3://bucket/: the object key must name a file, not a folder',
      );
    }
  });
});
