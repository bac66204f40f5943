import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { generateKeyPairSync, randomBytes, webcrypto } from 'node:crypto';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ecdsa = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface KeyAndCert {
  certPem: string;
  keyPem: string;
}

export interface ClusterPki {
  ca: KeyAndCert;
  serving: KeyAndCert;
  admin: KeyAndCert;
  /** RSA key pair that signs and verifies ServiceAccount tokens. */
  serviceAccount: { privateKeyPem: string; publicKeyPem: string };
}

function serial(): string {
  // Positive, non-zero serial numbers as RFC 5280 asks.
  return '01' + randomBytes(15).toString('hex');
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function newKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ecdsa, true, ['sign', 'verify'])) as CryptoKeyPair;
}

/**
 * A throw-away PKI for one test cluster: a CA, a serving certificate for
 * 127.0.0.1/localhost, an admin client certificate in `system:masters`, and a
 * ServiceAccount signing key.
 */
export async function generateClusterPki(clusterName: string): Promise<ClusterPki> {
  const notBefore = new Date(Date.now() - 60 * 60 * 1000);
  const notAfter = new Date(Date.now() + 365 * 24 * 60 * 60 * 1000);

  const caKeys = await newKeys();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=secretsync-testenv-ca-${clusterName}`,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ecdsa,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  async function issue(
    subject: string,
    usage: x509.ExtendedKeyUsage,
    sans?: x509.JsonGeneralNames,
  ): Promise<KeyAndCert> {
    const keys = await newKeys();
    const extensions: x509.Extension[] = [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([usage]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ];
    if (sans) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject,
      issuer: caCert.subject,
      notBefore,
      notAfter,
      signingKey: caKeys.privateKey,
      publicKey: keys.publicKey,
      signingAlgorithm: ecdsa,
      extensions,
    });
    return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
  }

  const serving = await issue('CN=kube-apiserver', x509.ExtendedKeyUsage.serverAuth, [
    { type: 'ip', value: '127.0.0.1' },
    { type: 'dns', value: 'localhost' },
    { type: 'dns', value: 'kubernetes.default.svc' },
  ]);
  const admin = await issue('CN=admin, O=system:masters', x509.ExtendedKeyUsage.clientAuth);
  const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });

  return {
    ca: { certPem: caCert.toString('pem'), keyPem: await privateKeyPem(caKeys.privateKey) },
    serving,
    admin,
    serviceAccount: {
      privateKeyPem: sa.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      publicKeyPem: sa.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    },
  };
}
