// A real Vault dev server for the issued-credentials tests, with the two
// engines they use: PKI (a root CA and a role `web`) and AWS pointed at the
// shared moto (IAM users issued with short, renewable leases and deleted on
// revocation, which moto shows). Until tools/testenv gains its VaultServer,
// this starts the binary tools/build-vault-testenv.sh built (never builds it).
import { readdirSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort, waitFor } from '../../../tools/testenv/processes.js';

export const ROOT_TOKEN = 'root';

/** The Vault binary built by tools/build-vault-testenv.sh (cached under ~/.cache/secretsync/vault-testenv/<hash>/). */
export function vaultBinary(): string {
  const base = join(homedir(), '.cache', 'secretsync', 'vault-testenv');
  for (const dir of existsSync(base) ? readdirSync(base) : []) {
    const bin = join(base, dir, 'vault');
    if (existsSync(bin)) return bin;
  }
  throw new Error('no Vault test binary: run `bash tools/build-vault-testenv.sh` first');
}

export class IssuingVault {
  private constructor(
    readonly address: string,
    private readonly proc: ChildProcess,
  ) {}

  static async start(): Promise<IssuingVault> {
    const port = await freePort();
    const address = `http://127.0.0.1:${port}`;
    const proc = spawn(
      vaultBinary(),
      ['server', '-dev', `-dev-root-token-id=${ROOT_TOKEN}`, `-dev-listen-address=127.0.0.1:${port}`],
      { stdio: 'ignore', env: { ...process.env, VAULT_LOG_LEVEL: 'warn' } },
    );
    const vault = new IssuingVault(address, proc);
    await waitFor(
      'Vault answering',
      async () => {
        try {
          const res = await fetch(`${address}/v1/sys/health`);
          return res.status === 200 ? true : undefined;
        } catch {
          return undefined;
        }
      },
      30_000,
      100,
    );
    return vault;
  }

  /** One Vault API call as root; returns the JSON answer (or undefined for 204). */
  async api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.address}/v1/${path}`, {
      method,
      headers: { 'x-vault-token': ROOT_TOKEN, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`Vault ${method} ${path}: HTTP ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** PKI at pki/ with a root CA and a role `web` for example.com names. */
  async setUpPki(): Promise<void> {
    await this.api('POST', 'sys/mounts/pki', { type: 'pki', config: { max_lease_ttl: '87600h' } });
    await this.api('POST', 'pki/root/generate/internal', { common_name: 'secretsync test root', ttl: '87600h' });
    await this.api('POST', 'pki/roles/web', {
      allowed_domains: 'example.com',
      allow_subdomains: true,
      allow_ip_sans: true,
      max_ttl: '24h',
      key_type: 'ec',
      key_bits: 256,
    });
  }

  /** The AWS engine at aws/, IAM and STS at moto, leases of `lease` (renewable up to `leaseMax`), a role `app`. */
  async setUpAws(motoEndpoint: string, lease: string, leaseMax: string): Promise<void> {
    await this.api('POST', 'sys/mounts/aws', { type: 'aws' });
    await this.api('POST', 'aws/config/root', {
      access_key: 'testing',
      secret_key: 'testing',
      region: 'us-east-1',
      iam_endpoint: motoEndpoint,
      sts_endpoint: motoEndpoint,
    });
    await this.api('POST', 'aws/config/lease', { lease, lease_max: leaseMax });
    await this.api('POST', 'aws/roles/app', {
      credential_type: 'iam_user',
      policy_document: JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 's3:ListAllMyBuckets', Resource: '*' }],
      }),
    });
  }

  /** The lease as Vault knows it (sys/leases/lookup), or undefined once it is revoked or expired. */
  async lease(leaseId: string): Promise<{ ttl: number; expire_time: string } | undefined> {
    try {
      const out = await this.api<{ data: { ttl: number; expire_time: string } }>('PUT', 'sys/leases/lookup', {
        lease_id: leaseId,
      });
      return out.data;
    } catch {
      return undefined;
    }
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null) return;
    const exited = new Promise((resolve) => this.proc.once('exit', resolve));
    this.proc.kill('SIGTERM');
    await exited;
  }
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
