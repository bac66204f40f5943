// Multi-Region key decryption through a failover region, against small
// in-memory KMS regions of our own (moto 5.2.5 cannot decrypt multi-Region key
// ciphertexts at all; see test/integration/failover/failover.test.ts). The fake
// keeps the KMS rules that matter: a replica shares the key id and key material
// with its primary key; a Decrypt's KeyId must be the ARN of the key in the
// region asked; a single-Region key exists in its own region only.
import { expect } from 'chai';
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { canonicalContext, type EncryptionContext } from '../../../../src/crypto/ciphertext.js';
import { KmsDecryptor, KmsEncryptor } from '../../../../src/providers/aws-kms/index.js';
import type { KmsApi, KmsDecryptRequest } from '../../../../src/providers/aws-kms/kms-api.js';
import { RegionHealth, RegionalClients } from '../../../../src/providers/aws/failover.js';
import { RegionalKmsApi } from '../../../../src/providers/aws/regional-kms.js';
import { DecryptError, type CiphertextBinding } from '../../../../src/providers/provider.js';

const ACCOUNT = '111122223333';
const here: CiphertextBinding = { namespace: 'team-a', managedSecret: 'db', secretKey: 'password' };

function kmsError(name: string): Error {
  return Object.assign(new Error(name), { name });
}

/** Keys of an account: id → material, and the regions holding the key (a replica adds one). */
class Account {
  readonly keys = new Map<string, { material: Buffer; regions: Set<string> }>();

  createKey(region: string, multiRegion: boolean): string {
    const id = `${multiRegion ? 'mrk-' : ''}${randomUUID().replaceAll('-', multiRegion ? '' : '-')}`;
    this.keys.set(id, { material: randomBytes(32), regions: new Set([region]) });
    return `arn:aws:kms:${region}:${ACCOUNT}:key/${id}`;
  }

  /** ReplicateKey: the same key id and material in another region. */
  replicate(arn: string, region: string): void {
    const id = arn.slice(arn.lastIndexOf('/') + 1);
    if (!id.startsWith('mrk-')) throw new Error('only multi-Region keys replicate');
    this.keys.get(id)?.regions.add(region);
  }
}

/** One region's KMS endpoint. `down` makes it refuse connections. */
class RegionKms implements KmsApi {
  down = false;
  readonly decrypts: (string | undefined)[] = [];

  constructor(
    readonly region: string,
    private readonly account: Account,
  ) {}

  private key(keyIdOrArn: string): { id: string; material: Buffer } {
    let id = keyIdOrArn;
    if (keyIdOrArn.startsWith('arn:')) {
      if (keyIdOrArn.split(':')[3] !== this.region) throw kmsError('NotFoundException');
      id = keyIdOrArn.slice(keyIdOrArn.lastIndexOf('/') + 1);
    }
    const key = this.account.keys.get(id);
    if (!key || !key.regions.has(this.region)) throw kmsError('NotFoundException');
    return { id, material: key.material };
  }

  private reachable(): void {
    if (this.down) throw Object.assign(new Error(`connect ECONNREFUSED kms.${this.region}`), { code: 'ECONNREFUSED' });
  }

  async encrypt(req: { keyId: string; plaintext: Buffer; context: EncryptionContext }) {
    this.reachable();
    const { id, material } = this.key(req.keyId);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', material, iv);
    cipher.setAAD(canonicalContext(req.context));
    const ct = Buffer.concat([cipher.update(req.plaintext), cipher.final()]);
    const idBytes = Buffer.from(id);
    return {
      blob: Buffer.concat([Buffer.from([idBytes.length]), idBytes, iv, cipher.getAuthTag(), ct]),
      keyId: `arn:aws:kms:${this.region}:${ACCOUNT}:key/${id}`,
    };
  }

  async generateDataKey(req: { keyId: string; context: EncryptionContext }) {
    const plaintext = randomBytes(32);
    return { plaintext, ...(await this.encrypt({ ...req, plaintext })) };
  }

  async decrypt({ blob, context, keyId }: KmsDecryptRequest): Promise<Buffer> {
    this.reachable();
    this.decrypts.push(keyId);
    const idLength = blob[0] ?? 0;
    const blobId = blob.subarray(1, 1 + idLength).toString();
    let key;
    try {
      key = this.key(blobId);
    } catch {
      throw kmsError('AccessDeniedException');
    }
    if (keyId !== undefined && this.key(keyId).id !== blobId) throw kmsError('IncorrectKeyException');
    const iv = blob.subarray(1 + idLength, 13 + idLength);
    const tag = blob.subarray(13 + idLength, 29 + idLength);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.material, iv);
      decipher.setAAD(canonicalContext(context));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(blob.subarray(29 + idLength)), decipher.final()]);
    } catch {
      throw kmsError('InvalidCiphertextException');
    }
  }

  async reEncrypt(): Promise<{ blob: Buffer; keyId: string }> {
    throw kmsError('UnsupportedOperationException');
  }

  async ping(): Promise<void> {
    this.reachable();
  }

  close(): void {}
}

describe('regional failover: KMS decryption with multi-Region keys', () => {
  let account: Account;
  let east: RegionKms;
  let west: RegionKms;
  let regions: RegionalClients<KmsApi>;
  let regional: RegionalKmsApi;
  let decryptor: KmsDecryptor;

  beforeEach(() => {
    account = new Account();
    east = new RegionKms('us-east-1', account);
    west = new RegionKms('us-west-2', account);
    regions = new RegionalClients<KmsApi>(
      [
        { target: { region: 'us-east-1' }, client: east },
        { target: { region: 'us-west-2' }, client: west },
      ],
      {
        store: 'kms',
        provider: 'awsKms',
        settings: { failureThreshold: 3, openSeconds: 30 },
        health: new RegionHealth(),
      },
    );
    regional = new RegionalKmsApi(regions);
    decryptor = new KmsDecryptor(regional);
  });

  for (const mode of ['direct', 'envelope'] as const) {
    it(`a ${mode} ciphertext under a multi-Region key decrypts with the replica while the primary is down`, async () => {
      const arn = account.createKey('us-east-1', true);
      account.replicate(arn, 'us-west-2');
      const ciphertext = await new KmsEncryptor(east).encrypt('s3cret', {
        keyId: arn,
        scope: 'strict',
        binding: here,
        mode,
      });

      expect(await decryptor.decrypt(ciphertext, here)).to.equal('s3cret');
      expect(regional.servedRegion()).to.deep.equal({ region: 'us-east-1', primary: true });
      decryptor.clear();

      east.down = true;
      expect(await decryptor.decrypt(ciphertext, here)).to.equal('s3cret');
      expect(regional.servedRegion()).to.deep.equal({ region: 'us-west-2', primary: false });
      // The replica is addressed by the same key id, with the failover region's ARN.
      expect(west.decrypts).to.deep.equal([arn.replace(':us-east-1:', ':us-west-2:')]);
      // The encryption context still binds the value to its place in the failover region.
      decryptor.clear();
      let caught: unknown;
      await decryptor.decrypt(ciphertext, { ...here, namespace: 'team-b' }).catch((e: unknown) => (caught = e));
      expect(caught).to.be.instanceOf(DecryptError);
    });
  }

  it('observes each Decrypt attempt with the region it went to (the refused primary, then the replica)', async () => {
    const arn = account.createKey('us-east-1', true);
    account.replicate(arn, 'us-west-2');
    const ciphertext = await new KmsEncryptor(east).encrypt('s3cret', { keyId: arn, scope: 'strict', binding: here });
    const attempts: string[] = [];
    const observed = new RegionalKmsApi(regions, undefined, async (operation, call, region) => {
      try {
        const value = await call();
        attempts.push(`${operation} ${region ?? '-'} ok`);
        return value;
      } catch (err) {
        attempts.push(`${operation} ${region ?? '-'} error`);
        throw err;
      }
    });
    east.down = true;
    expect(await new KmsDecryptor(observed).decrypt(ciphertext, here)).to.equal('s3cret');
    expect(attempts).to.deep.equal(['Decrypt us-east-1 error', 'Decrypt us-west-2 ok']);
  });

  it('a single-Region key has no replica: its ciphertext is never sent to another region', async () => {
    const arn = account.createKey('us-east-1', false);
    const ciphertext = await new KmsEncryptor(east).encrypt('s3cret', { keyId: arn, scope: 'strict', binding: here });
    east.down = true;
    let caught: unknown;
    await decryptor.decrypt(ciphertext, here).catch((e: unknown) => (caught = e));
    expect((caught as Error).name).to.equal('ProviderError');
    expect((caught as Error).message).to.contain('ECONNREFUSED');
    expect(west.decrypts).to.deep.equal([]);
  });

  it('a multi-Region key without a replica in the failover region is refused there, not retried elsewhere', async () => {
    const arn = account.createKey('us-east-1', true);
    const ciphertext = await new KmsEncryptor(east).encrypt('s3cret', { keyId: arn, scope: 'strict', binding: here });
    east.down = true;
    let caught: unknown;
    await decryptor.decrypt(ciphertext, here).catch((e: unknown) => (caught = e));
    expect(caught).to.be.instanceOf(DecryptError);
    expect(west.decrypts).to.have.length(1);
  });

  it('ping (the store check) fails over too; encryption stays in the primary region', async () => {
    east.down = true;
    await regional.ping();
    expect(regional.servedRegion()?.region).to.equal('us-west-2');
    const arn = account.createKey('us-east-1', true);
    account.replicate(arn, 'us-west-2');
    let caught: unknown;
    await regional
      .encrypt({ keyId: arn, plaintext: Buffer.from('x'), context: {} })
      .catch((e: unknown) => (caught = e));
    expect((caught as { code?: string }).code).to.equal('ECONNREFUSED');
  });

  it("each region tried draws from the store's request budget", async () => {
    let taken = 0;
    const budgeted = new RegionalKmsApi(regions, async () => {
      taken += 1;
    });
    await budgeted.ping();
    expect(taken).to.equal(1);
    east.down = true;
    await budgeted.ping();
    expect(taken, 'the refused primary and the failover region').to.equal(3);
  });

  describe('another endpoint of the same region', () => {
    let eastB: RegionKms;
    beforeEach(() => {
      // A second endpoint of us-east-1 (say the public one behind a VPC endpoint): the same keys answer there.
      eastB = new RegionKms('us-east-1', account);
      regions = new RegionalClients<KmsApi>(
        [
          {
            target: { region: 'us-east-1', endpoint: 'https://vpce-1.kms.us-east-1.vpce.amazonaws.com' },
            client: east,
          },
          { target: { region: 'us-west-2' }, client: west },
          { target: { region: 'us-east-1' }, client: eastB },
        ],
        {
          store: 'kms',
          provider: 'awsKms',
          settings: { failureThreshold: 3, openSeconds: 30 },
          health: new RegionHealth(),
        },
      );
      regional = new RegionalKmsApi(regions);
      decryptor = new KmsDecryptor(regional);
    });

    it("a single-Region key's ciphertext goes to the region's other endpoint with the same key ARN, never to another region", async () => {
      const arn = account.createKey('us-east-1', false);
      const ciphertext = await new KmsEncryptor(east).encrypt('s3cret', { keyId: arn, scope: 'strict', binding: here });
      east.down = true;
      expect(await decryptor.decrypt(ciphertext, here)).to.equal('s3cret');
      expect(eastB.decrypts).to.deep.equal([arn]);
      expect(west.decrypts).to.deep.equal([]);
      expect(regional.servedRegion()).to.deep.equal({
        region: 'us-east-1',
        endpoint: 'kms.us-east-1.amazonaws.com',
        primary: false,
      });

      // Both endpoints of the region down: refused, and still not sent to us-west-2.
      eastB.down = true;
      decryptor.clear();
      let caught: unknown;
      await decryptor.decrypt(ciphertext, here).catch((e: unknown) => (caught = e));
      expect((caught as Error).message).to.contain('ECONNREFUSED');
      expect(west.decrypts).to.deep.equal([]);
    });

    it("a multi-Region key's ciphertext goes to the failover targets in order, the replica in the other region first", async () => {
      const arn = account.createKey('us-east-1', true);
      account.replicate(arn, 'us-west-2');
      const ciphertext = await new KmsEncryptor(east).encrypt('s3cret', { keyId: arn, scope: 'strict', binding: here });
      east.down = true;
      expect(await decryptor.decrypt(ciphertext, here)).to.equal('s3cret');
      expect(west.decrypts).to.deep.equal([arn.replace(':us-east-1:', ':us-west-2:')]);
      expect(eastB.decrypts).to.deep.equal([]);
    });
  });
});
