import {
  CreateKeyCommand,
  DecryptCommand,
  EncryptCommand,
  InvalidCiphertextException,
  KMSClient,
} from '@aws-sdk/client-kms';
import { expect } from 'chai';
import { MotoServer } from '../../../tools/testenv/index.js';
import { sharedMoto } from '../env.js';

describe('the test AWS endpoint (moto)', () => {
  beforeEach(async () => {
    await sharedMoto().reset();
  });

  it('encrypts and decrypts with a KMS key, and refuses a different encryption context', async () => {
    const kms = new KMSClient(sharedMoto().clientConfig());
    const key = await kms.send(new CreateKeyCommand({ Description: 'secretsync test key' }));
    const keyId = key.KeyMetadata?.KeyId;
    expect(keyId).to.be.a('string');
    const plaintext = Buffer.from('not really a secret');
    const context = { namespace: 'team-a', name: 'db' };
    const encrypted = await kms.send(
      new EncryptCommand({ KeyId: keyId, Plaintext: plaintext, EncryptionContext: context }),
    );
    expect(Buffer.from(encrypted.CiphertextBlob ?? []).includes(plaintext)).to.equal(false);

    const decrypted = await kms.send(
      new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob, EncryptionContext: context }),
    );
    expect(Buffer.from(decrypted.Plaintext ?? []).toString()).to.equal('not really a secret');

    let refused: unknown;
    try {
      await kms.send(
        new DecryptCommand({
          CiphertextBlob: encrypted.CiphertextBlob,
          EncryptionContext: { namespace: 'team-b', name: 'db' },
        }),
      );
    } catch (err) {
      refused = err;
    }
    expect(refused).to.be.instanceOf(InvalidCiphertextException);
  });

  it('forgets keys on reset', async () => {
    const kms = new KMSClient(sharedMoto().clientConfig());
    await kms.send(new CreateKeyCommand({}));
    await sharedMoto().reset();
    const { ListKeysCommand } = await import('@aws-sdk/client-kms');
    const keys = await kms.send(new ListKeysCommand({}));
    expect(keys.Keys ?? []).to.have.length(0);
  });

  it('kill() refuses connections (an outage); restart() answers again on the same port, with empty state', async function () {
    this.timeout(120_000);
    const moto = await MotoServer.start();
    const { ListKeysCommand } = await import('@aws-sdk/client-kms');
    const kms = new KMSClient({ ...moto.clientConfig(), maxAttempts: 1 });
    try {
      await kms.send(new CreateKeyCommand({}));
      await moto.kill();
      let refused: unknown;
      await kms.send(new ListKeysCommand({})).catch((err: unknown) => (refused = err));
      expect((refused as { code?: string } | undefined)?.code).to.equal('ECONNREFUSED');
      await moto.restart();
      const keys = await kms.send(new ListKeysCommand({}));
      expect(keys.Keys ?? []).to.have.length(0);
    } finally {
      kms.destroy();
      await moto.stop();
    }
  });
});
