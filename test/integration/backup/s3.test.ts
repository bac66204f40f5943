// `secretsync backup --out s3://…` and `secretsync restore --in s3://…` against
// a real moto S3 and the real control plane: the object holds the sealed file,
// an existing object is kept without --force (the CLI's HeadObject check, and
// the conditional write under it on its own), --force replaces it, a restore
// from the bucket brings deleted objects back, and a missing object or bucket
// is a clear error. Credentials come from the SDK's default chain (the
// environment here; IRSA in a pod), region and endpoint from --s3-region and
// --s3-endpoint.
import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_VERSION } from '../../../src/api/types.js';
import { readHeader } from '../../../src/backup/format.js';
import { BackupObjectExistsError, sdkBackupObjectStore } from '../../../src/backup/s3.js';
import { main, type CliIo } from '../../../src/cli/main.js';
import { isNotFound } from '../../../src/kube/client.js';
import { sharedCluster, sharedMoto, uniqueName } from '../env.js';
import { adminClient, createManagedSecret, createSecretStore, ensureNamespace } from '../operator.js';

interface Run {
  code: number;
  out: string[];
  err: string[];
}

describe('secretsync backup and restore through an S3 bucket (moto)', function () {
  this.timeout(120_000);
  const namespace = uniqueName('s3backup');
  const bucket = uniqueName('secretsync-backups');
  const key = `${namespace}/nightly.backup`;
  const url = `s3://${bucket}/${key}`;
  const savedEnv = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  let tmp: string;
  let keyFile: string;
  let s3: S3Client;
  const client = () => adminClient(sharedCluster());
  const s3Flags = () => ['--s3-region', sharedMoto().region, '--s3-endpoint', sharedMoto().endpoint];
  const allOutput: string[] = [];

  async function cli(...args: string[]): Promise<Run> {
    const out: string[] = [];
    const err: string[] = [];
    const io: CliIo = { out: (l) => out.push(l), err: (l) => err.push(l), readStdin: async () => Buffer.alloc(0) };
    const code = await main(['node', 'secretsync', ...args], io);
    allOutput.push(...out, ...err);
    return { code, out, err };
  }

  const backup = (...extra: string[]) =>
    cli(
      'backup',
      '--out',
      url,
      '--key-file',
      keyFile,
      '--kubeconfig',
      sharedCluster().kubeconfigPath,
      '--operator-namespace',
      namespace,
      '--no-progress',
      ...s3Flags(),
      ...extra,
    );

  async function objectBytes(): Promise<Buffer> {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await (out.Body?.transformToByteArray() ?? new Uint8Array()));
  }

  before(async () => {
    // The default credentials chain reads these (moto accepts any keys).
    process.env.AWS_ACCESS_KEY_ID = 'testing';
    process.env.AWS_SECRET_ACCESS_KEY = 'testing';
    tmp = mkdtempSync(join(tmpdir(), 'secretsync-s3backup-it-'));
    keyFile = join(tmp, 'backup.key');
    await writeFile(keyFile, randomBytes(32), { mode: 0o600 });
    s3 = new S3Client({ ...sharedMoto().clientConfig(), forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await ensureNamespace(client(), namespace);
    await createSecretStore(client(), namespace, 'local', join(tmp, 'store'));
    await createManagedSecret(client(), namespace, {
      metadata: { name: 'db' },
      spec: { storeRef: { name: 'local' }, data: [{ secretKey: 'password', remoteRef: { key: 'db/prod' } }] },
    });
  });

  after(async () => {
    for (const [name, value] of [
      ['AWS_ACCESS_KEY_ID', savedEnv.id],
      ['AWS_SECRET_ACCESS_KEY', savedEnv.secret],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    s3?.destroy();
    await client()
      .request('DELETE', `/api/v1/namespaces/${namespace}`)
      .catch(() => undefined);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('uploads the sealed backup to s3://BUCKET/KEY', async () => {
    const run = await backup();
    expect(run.code, run.err.join('\n')).to.equal(0);
    const bytes = await objectBytes();
    expect(run.out.at(-1)).to.equal(`wrote ${url} (${bytes.length} bytes)`);
    const header = readHeader(bytes);
    expect(header.encryption.mode).to.equal('key-file');
    expect(header.contents.managedSecrets).to.be.at.least(1);
    expect(header.contents.secretStores).to.be.at.least(1);
  });

  it('keeps an existing object without --force, and replaces it with --force', async () => {
    const first = await objectBytes();
    const again = await backup();
    expect(again.code).to.equal(1);
    expect(again.err).to.deep.equal([`secretsync: ${url} exists; pass --force to overwrite it`]);
    expect((await objectBytes()).equals(first), 'the object is untouched').to.equal(true);

    // The write itself is conditional (If-None-Match: *): without the CLI's check before it, S3 still refuses.
    const store = sdkBackupObjectStore({ region: sharedMoto().region, endpoint: sharedMoto().endpoint });
    try {
      let refused: unknown;
      await store.put({ bucket, key }, Buffer.from('not a backup'), { force: false }).catch((err) => (refused = err));
      expect(refused).to.be.instanceOf(BackupObjectExistsError);
      expect((refused as Error).message).to.equal(`${url} exists; pass --force to overwrite it`);
      expect((await objectBytes()).equals(first)).to.equal(true);
      // A new key is written by the same conditional call.
      await store.put({ bucket, key: `${key}.new` }, Buffer.from('x'), { force: false });
      expect(await store.exists({ bucket, key: `${key}.new` })).to.equal(true);
    } finally {
      store.close();
    }

    const forced = await backup('--force');
    expect(forced.code, forced.err.join('\n')).to.equal(0);
    const replaced = await objectBytes();
    expect(replaced.equals(first), 'a new backup (new nonce, new time)').to.equal(false);
    expect(readHeader(replaced).createdAt >= readHeader(first).createdAt).to.equal(true);
  });

  it('restores deleted objects into the cluster from s3://BUCKET/KEY', async () => {
    const path = `/apis/${API_VERSION}/namespaces/${namespace}/managedsecrets/db`;
    await client().request('DELETE', path);
    await client()
      .get(path)
      .then(
        () => expect.fail('the ManagedSecret is still there'),
        (err: unknown) => expect(isNotFound(err)).to.equal(true),
      );
    const run = await cli(
      'restore',
      '--in',
      url,
      '--key-file',
      keyFile,
      '--kubeconfig',
      sharedCluster().kubeconfigPath,
      '--operator-namespace',
      namespace,
      '--no-progress',
      ...s3Flags(),
    );
    expect(run.code, run.err.join('\n')).to.equal(0);
    expect(run.out.some((l) => /^created\s+ManagedSecret /.test(l) && l.endsWith(`${namespace}/db`))).to.equal(
      true,
      run.out.join('\n'),
    );
    const back = await client().get<{ spec: { storeRef: { name: string } } }>(path);
    expect(back.spec.storeRef.name).to.equal('local');
  });

  it('says clearly when the object or the bucket does not exist, and applies nothing', async () => {
    const restore = (from: string) =>
      cli('restore', '--in', from, '--key-file', keyFile, '--kubeconfig', sharedCluster().kubeconfigPath, ...s3Flags());
    const missing = await restore(`s3://${bucket}/${namespace}/missing.backup`);
    expect(missing.code).to.equal(1);
    expect(missing.err).to.deep.equal([
      `secretsync: s3://${bucket}/${namespace}/missing.backup does not exist (no such object in bucket ${bucket})`,
    ]);
    expect(missing.out).to.deep.equal([]);
    const noBucket = await restore(`s3://${bucket}-gone/x.backup`);
    expect(noBucket.code).to.equal(1);
    expect(noBucket.err).to.deep.equal([
      `secretsync: s3://${bucket}-gone/x.backup does not exist (no bucket ${bucket}-gone here)`,
    ]);
  });

  it('never prints the key file or the credentials', async () => {
    const keyText = (await import('node:fs')).readFileSync(keyFile);
    const text = allOutput.join('\n');
    expect(text).not.to.include(keyText.toString('base64'));
    expect(text).not.to.include(keyText.toString('hex'));
    expect(text).not.to.include('AWS_SECRET_ACCESS_KEY');
  });
});
