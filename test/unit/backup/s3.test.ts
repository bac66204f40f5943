// s3://BUCKET/KEY as --out and --in: what is accepted and what is refused
// (before any AWS call), with messages that name the problem, and a call to an
// endpoint that never answers stopped by its signal. The calls themselves run
// against moto in test/integration/backup/s3.test.ts.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isS3Url, parseS3Url, s3Url, sdkBackupObjectStore } from '../../../src/backup/s3.js';
import { main } from '../../../src/cli/main.js';
import { repoRoot } from '../../../tools/testenv/paths.js';
import { captureIo } from '../helpers/index.js';

// The SDK's notice about its future Node floor is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

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

  it('backup and restore refuse a malformed s3:// or --s3-endpoint before reaching AWS or a cluster', async () => {
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
    const io = captureIo();
    const code = await main(
      ['node', 'secretsync', 'restore', '--in', 's3://bucket/k', '--s3-endpoint', 'minio:9000'],
      io,
    );
    expect(code).to.equal(1);
    expect(io.errLines).to.deep.equal(['secretsync: --s3-endpoint must be an http(s) URL, got "minio:9000"']);
  });

  it('stops a call to an endpoint that never answers when its signal fires, and says so', async () => {
    // A local server that accepts connections and never answers: only the signal can end the call.
    const sockets: Socket[] = [];
    const server: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = 'testing';
    process.env.AWS_SECRET_ACCESS_KEY = 'testing';
    const store = sdkBackupObjectStore({ region: 'us-east-1', endpoint: `http://127.0.0.1:${port}` });
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('interrupted by SIGTERM')), 300);
      const started = Date.now();
      let failed: unknown;
      await store
        .get({ bucket: 'acme-backups', key: 'x.backup' }, { maxBytes: 1024, signal: controller.signal })
        .catch((err) => (failed = err));
      expect(Date.now() - started).to.be.below(5000);
      expect((failed as Error).message).to.equal(
        'S3 GetObject s3://acme-backups/x.backup: stopped before it finished (interrupted by SIGTERM)',
      );
      expect(sockets.length, 'the request reached the server').to.be.at.least(1);
    } finally {
      store.close();
      for (const socket of sockets) socket.destroy();
      server.close();
      for (const [name, value] of [
        ['AWS_ACCESS_KEY_ID', saved.id],
        ['AWS_SECRET_ACCESS_KEY', saved.secret],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('loads no AWS SDK module until a command reaches S3 (the CLI, `run` included, starts without it)', async function () {
    this.timeout(30_000);
    // A fresh process: this one has loaded the SDK in the test above.
    const script = [
      "import { createRequire } from 'node:module';",
      `await import(${JSON.stringify(join(repoRoot, 'src', 'cli', 'main.ts'))});`,
      'const cache = createRequire(import.meta.url).cache;',
      "console.log(Object.keys(cache).filter((k) => k.includes('@aws-sdk')).length);",
    ].join('\n');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: repoRoot, timeout: 30_000 },
    );
    expect(stdout.trim()).to.equal('0');
  });
});
