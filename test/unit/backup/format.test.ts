// The backup file format: round trips in both key modes, and refusal of any
// change to any byte, of a wrong key file, and of a KMS unwrap under the wrong context.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import {
  BackupFileError,
  MAGIC_LINE,
  describeHeader,
  keyFileFingerprint,
  openBackup,
  readHeader,
  sealBackup,
  type BackupContents,
  type BackupKey,
  type BackupPayload,
} from '../../../src/backup/format.js';
import { rejectionOf } from '../helpers/index.js';
import { FakeKms } from '../providers/aws-kms/fake-kms.js';

const secretValue = `pw-${randomBytes(6).toString('hex')}`;
const payload: BackupPayload = {
  objects: [
    {
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'SecretStore',
      metadata: { name: 'local', namespace: 'team-a' },
      spec: { provider: { local: { path: '/store', masterKeySecretRef: { name: 'mk' } } } },
    },
    {
      apiVersion: 'secretsync.io/v1alpha1',
      kind: 'ManagedSecret',
      metadata: { name: 'db', namespace: 'team-a', labels: { app: 'db' } },
      spec: { storeRef: { name: 'local' }, data: [{ secretKey: 'password', remoteRef: { key: 'db/prod' } }] },
    },
  ],
  syncedSecrets: [
    {
      namespace: 'team-a',
      name: 'db',
      type: 'Opaque',
      data: { password: Buffer.from(secretValue).toString('base64') },
      labels: { 'secretsync.io/managed': 'true' },
      annotations: { 'secretsync.io/managed-secret': 'db' },
      immutable: false,
      ownerManagedSecret: 'db',
    },
  ],
};
const contents: BackupContents = {
  secretStores: 1,
  clusterSecretStores: 0,
  replicationTargets: null,
  managedSecrets: 1,
  syncedSecrets: 1,
};
const options = { secretsyncVersion: '0.1.0', source: { server: 'https://127.0.0.1:6443', context: 'src' }, contents };

describe('backup file format', () => {
  const keyFile = randomBytes(32);
  const key: BackupKey = { mode: 'key-file', keyFile };

  it('round-trips with a key file, and the header says what, when and which key (never the key)', async () => {
    const file = await sealBackup(payload, key, { ...options, createdAt: new Date('2026-01-02T03:04:05Z') });
    const text = file.toString('utf8');
    expect(text.startsWith(`${MAGIC_LINE}\n{`)).to.equal(true);
    const header = readHeader(file);
    expect(header.createdAt).to.equal('2026-01-02T03:04:05.000Z');
    expect(header.contents).to.deep.equal(contents);
    expect(header.encryption).to.include({ mode: 'key-file', keyFingerprint: keyFileFingerprint(keyFile) });
    expect(text).not.to.include(keyFile.toString('base64'));
    expect(text).not.to.include(keyFile.toString('hex'));
    expect(text).not.to.include(secretValue);
    expect(text).not.to.include(Buffer.from(secretValue).toString('base64'));
    expect(describeHeader(header).join('\n')).to.include('1 SecretStore').and.include('1 synced Secrets');
    const opened = await openBackup(file, key);
    expect(opened.payload).to.deep.equal(payload);
  });

  it('refuses a change to any single byte of the file, saying nothing was applied', async function () {
    this.timeout(60_000);
    const file = await sealBackup(payload, key, options);
    let refused = 0;
    for (let i = 0; i < file.length; i++) {
      const bad = Buffer.from(file);
      bad[i] = (bad[i] as number) ^ 0x01;
      const err = await rejectionOf(openBackup(bad, key));
      expect(err, `byte ${i}`).to.be.instanceOf(BackupFileError);
      expect(err.message, `byte ${i}`).to.match(/nothing was applied$/);
      expect(err.message).not.to.include(secretValue);
      refused++;
    }
    expect(refused).to.equal(file.length);
  });

  it('refuses a truncated, extended or empty file', async () => {
    const file = await sealBackup(payload, key, options);
    for (const bad of [
      file.subarray(0, file.length - 5),
      Buffer.concat([file, Buffer.from('AAAA\n')]),
      Buffer.alloc(0),
    ]) {
      const err = await rejectionOf(openBackup(bad, key));
      expect(err.message).to.match(/corrupted or was tampered with.*nothing was applied$/);
    }
  });

  it('refuses a wrong key file by its fingerprint, and a key file that is too short', async () => {
    const file = await sealBackup(payload, key, options);
    const err = await rejectionOf(openBackup(file, { mode: 'key-file', keyFile: randomBytes(32) }));
    expect(err.message).to.match(/^wrong key file: .* fingerprint/);
    expect(err.message).to.include('nothing was applied');
    const short = await rejectionOf(sealBackup(payload, { mode: 'key-file', keyFile: randomBytes(31) }, options));
    expect(short.message).to.include('at least 32 bytes');
  });

  it('a header edited to name the other key still fails (the header is authenticated)', async () => {
    const file = await sealBackup(payload, key, options);
    const other = randomBytes(32);
    const text = file.toString('utf8').replace(keyFileFingerprint(keyFile), keyFileFingerprint(other));
    const err = await rejectionOf(openBackup(Buffer.from(text), { mode: 'key-file', keyFile: other }));
    expect(err.message).to.match(/corrupted or was tampered with \(authentication failed\); nothing was applied/);
  });

  it('a header edited to claim other contents fails authentication', async () => {
    const file = await sealBackup(payload, key, options);
    const text = file.toString('utf8').replace('"managedSecrets":1', '"managedSecrets":2');
    const err = await rejectionOf(openBackup(Buffer.from(text), key));
    expect(err.message).to.include('authentication failed');
  });

  it('IBM instance secrets: values only inside the encrypted payload, counted in the header, checked on open', async () => {
    const ibmValue = `ibm-${randomBytes(6).toString('hex')}`;
    const withIbm: BackupPayload = {
      ...payload,
      ibmInstances: [
        {
          store: 'SecretStore/team-a/ibm',
          instance: 'us-south (abc.us-south.secrets-manager.appdomain.cloud)',
          secrets: [
            {
              group: 'payments',
              name: 'db',
              type: 'username_password',
              labels: ['db'],
              customMetadata: { owner: 'payments' },
              payload: { username: 'app', password: ibmValue },
            },
          ],
          skipped: [{ group: 'default', name: 'ci', type: 'iam_credentials', reason: 'IBM creates its API key' }],
        },
      ],
    };
    const file = await sealBackup(withIbm, key, { ...options, contents: { ...contents, ibmInstanceSecrets: 1 } });
    const text = file.toString('utf8');
    expect(text).not.to.include(ibmValue);
    expect(text).not.to.include(Buffer.from(ibmValue).toString('base64'));
    expect(describeHeader(readHeader(file)).join('\n')).to.include('1 IBM Cloud Secrets Manager secrets');
    expect((await openBackup(file, key)).payload).to.deep.equal(withIbm);
    // A writer whose header count does not describe the payload is refused.
    const miscounted = await sealBackup(withIbm, key, { ...options, contents: { ...contents, ibmInstanceSecrets: 2 } });
    expect((await rejectionOf(openBackup(miscounted, key))).message).to.match(/counts do not match/);
    const malformed = await sealBackup(
      { ...withIbm, ibmInstances: [{ ...withIbm.ibmInstances![0]!, secrets: [{ name: 'x' } as never] }] },
      key,
      { ...options, contents: { ...contents, ibmInstanceSecrets: 1 } },
    );
    expect((await rejectionOf(openBackup(malformed, key))).message).to.match(/IBM instance secret is malformed/);
  });

  describe('with KMS', () => {
    it('wraps a random data key under the key with a context naming the backup, and unwraps it', async () => {
      const kms = new FakeKms();
      const arn = kms.createKey('alias/backup');
      const file = await sealBackup(payload, { mode: 'kms', kms, keyId: 'alias/backup' }, options);
      const header = readHeader(file);
      expect(header.encryption).to.include({ mode: 'kms', keyId: arn });
      expect((await openBackup(file, { mode: 'kms', kms })).payload).to.deep.equal(payload);
      expect(kms.calls).to.deep.equal(['Encrypt', 'Decrypt']);
    });

    it('refuses a file whose backup id was changed (the KMS context no longer matches)', async () => {
      const kms = new FakeKms();
      kms.createKey('alias/backup');
      const file = await sealBackup(payload, { mode: 'kms', kms, keyId: 'alias/backup' }, options);
      const id = readHeader(file).backupId;
      const edited = Buffer.from(
        file.toString('utf8').replace(id, `${id.slice(0, -1)}${id.endsWith('0') ? '1' : '0'}`),
      );
      const err = await rejectionOf(openBackup(edited, { mode: 'kms', kms }));
      expect(err.message).to.match(/KMS could not unwrap .*nothing was applied$/);
    });

    it('says which mode a file needs when given the other', async () => {
      const kms = new FakeKms();
      kms.createKey('alias/backup');
      const kmsFile = await sealBackup(payload, { mode: 'kms', kms, keyId: 'alias/backup' }, options);
      expect((await rejectionOf(openBackup(kmsFile, key))).message).to.include('not a key file');
      const keyFileBackup = await sealBackup(payload, key, options);
      expect((await rejectionOf(openBackup(keyFileBackup, { mode: 'kms', kms }))).message).to.include(
        'give --key-file',
      );
    });
  });
});
