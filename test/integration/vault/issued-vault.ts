// The engines the issued-credentials tests use, on the shared Vault test
// server (test/integration/env.ts sharedVault) at mounts of their own: PKI (a
// root CA and a role `web`) and AWS pointed at the shared moto (IAM users
// issued with short, renewable leases and deleted on revocation, which moto
// shows), and moto IAM look-ups.
import type { VaultServer } from '../../../tools/testenv/index.js';

/** PKI at `mount` with a root CA and a role `web` for example.com names. */
export async function setUpPki(vault: VaultServer, mount: string): Promise<void> {
  await vault.must('POST', `sys/mounts/${mount}`, { type: 'pki', config: { max_lease_ttl: '87600h' } });
  await vault.must('POST', `${mount}/root/generate/internal`, { common_name: 'secretsync test root', ttl: '87600h' });
  await vault.must('POST', `${mount}/roles/web`, {
    allowed_domains: 'example.com',
    allow_subdomains: true,
    allow_ip_sans: true,
    max_ttl: '24h',
    key_type: 'ec',
    key_bits: 256,
  });
}

/** The AWS engine at `mount`, IAM and STS at moto, leases of `lease` (renewable up to `leaseMax`), a role `app`. */
export async function setUpAws(
  vault: VaultServer,
  mount: string,
  motoEndpoint: string,
  lease: string,
  leaseMax: string,
): Promise<void> {
  await vault.must('POST', `sys/mounts/${mount}`, { type: 'aws' });
  await vault.must('POST', `${mount}/config/root`, {
    access_key: 'testing',
    secret_key: 'testing',
    region: 'us-east-1',
    iam_endpoint: motoEndpoint,
    sts_endpoint: motoEndpoint,
  });
  await vault.must('POST', `${mount}/config/lease`, { lease, lease_max: leaseMax });
  await vault.must('POST', `${mount}/roles/app`, {
    credential_type: 'iam_user',
    policy_document: JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 's3:ListAllMyBuckets', Resource: '*' }],
    }),
  });
}

/** The lease as Vault knows it (sys/leases/lookup), or undefined once it is revoked or expired. */
export async function leaseOf(
  vault: VaultServer,
  leaseId: string,
): Promise<{ ttl: number; expire_time: string } | undefined> {
  const res = await vault.api('PUT', 'sys/leases/lookup', { lease_id: leaseId });
  if (res.status !== 200) return undefined;
  return (res.json as { data: { ttl: number; expire_time: string } }).data;
}

/**
 * One IAM query call to moto. moto does not check signatures, so an unsigned
 * AWS4 Authorization header that names IAM is enough.
 */
async function motoIam(motoEndpoint: string, params: Record<string, string>): Promise<string> {
  const res = await fetch(motoEndpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization:
        'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0',
    },
    body: new URLSearchParams({ ...params, Version: '2010-05-08' }).toString(),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`moto IAM ${params.Action}: HTTP ${res.status}`);
  return text;
}

const userNames = (xml: string) => [...xml.matchAll(/<UserName>([^<]+)<\/UserName>/g)].map((m) => m[1] ?? '');

/** The IAM user names moto holds (ListUsers). */
export async function motoIamUsers(motoEndpoint: string): Promise<string[]> {
  return userNames(await motoIam(motoEndpoint, { Action: 'ListUsers' }));
}

/** The IAM user an access key belongs to (GetAccessKeyLastUsed), while the user exists. */
export async function motoUserOfKey(motoEndpoint: string, accessKeyId: string): Promise<string> {
  const user = userNames(await motoIam(motoEndpoint, { Action: 'GetAccessKeyLastUsed', AccessKeyId: accessKeyId }))[0];
  if (!user) throw new Error('moto knows no user for the access key');
  return user;
}
