// A dev-mode Vault server for the Vault provider tests, from the binary that
// tools/build-vault-testenv.sh builds (never built here: a missing binary is
// a failure that names the script). Same shape as tools/testenv's VaultServer
// (address, rootToken, api, must, caPem, stop), plus what these tests need on
// top: the dev unseal key (sys/seal and sys/unseal), and a restart on the same
// port (failover "and back").
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  freePort,
  GiveUpError,
  releaseTempDir,
  spawnLogged,
  trackTempDir,
  waitFor,
  type SpawnedProcess,
} from '../../../tools/testenv/processes.js';
import type { TestCluster } from '../../../tools/testenv/cluster.js';
import { KubeClient, isAlreadyExists } from '../../../src/kube/client.js';

export interface VaultAnswer {
  status: number;
  json: unknown;
}

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

/** The binary: the script prints its cached path, and builds it first only when its sources' hash is not cached (CI). */
export function vaultBinary(): string {
  return execFileSync('bash', [join(repoRoot, 'tools/build-vault-testenv.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

export class DevVault {
  private constructor(
    readonly port: number,
    readonly rootToken: string,
    private proc: SpawnedProcess,
    private readonly dir: string,
    private readonly tls: boolean,
  ) {}

  static async start(options: { tls?: boolean; port?: number } = {}): Promise<DevVault> {
    const dir = mkdtempSync(join(tmpdir(), 'secretsync-vault-'));
    trackTempDir(dir);
    const port = options.port ?? (await freePort());
    const rootToken = 'root';
    const proc = await DevVault.spawn(dir, port, rootToken, options.tls === true);
    return new DevVault(port, rootToken, proc, dir, options.tls === true);
  }

  private static async spawn(dir: string, port: number, rootToken: string, tls: boolean): Promise<SpawnedProcess> {
    const args = [
      'server',
      '-dev',
      `-dev-root-token-id=${rootToken}`,
      `-dev-listen-address=127.0.0.1:${port}`,
      '-dev-no-store-token',
      ...(tls ? ['-dev-tls', `-dev-tls-cert-dir=${join(dir, 'tls')}`] : []),
    ];
    if (tls) mkdirSync(join(dir, 'tls'), { recursive: true });
    const log = join(dir, `vault-${Date.now()}.log`);
    const proc = spawnLogged('vault', vaultBinary(), args, log, {
      env: { PATH: process.env.PATH, HOME: dir, SKIP_SETCAP: '1' },
    });
    const scheme = tls ? 'https' : 'http';
    try {
      await waitFor(
        'vault',
        async () => {
          if (!proc.isRunning()) throw new GiveUpError(`vault exited during start-up; see ${log}`);
          const ca = tls ? readCa(dir) : undefined;
          if (tls && !ca) return undefined;
          const res = await send(`${scheme}://127.0.0.1:${port}/v1/sys/health`, 'GET', undefined, undefined, ca).catch(
            () => undefined,
          );
          return res?.status === 200 ? true : undefined;
        },
        60_000,
      );
    } catch (err) {
      await proc.stop();
      throw err;
    }
    return proc;
  }

  get address(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.port}`;
  }

  get caPem(): string | undefined {
    return this.tls ? readCa(this.dir) : undefined;
  }

  /** The dev server's unseal key, from its log. */
  unsealKey(): string {
    const text = readFileSync(this.proc.logFile, 'utf8');
    const m = /Unseal Key: (\S+)/.exec(text);
    if (!m?.[1]) throw new Error('no unseal key in the dev server log');
    return m[1];
  }

  async api(method: string, path: string, body?: unknown, token = this.rootToken): Promise<VaultAnswer> {
    const res = await send(`${this.address}/v1/${path.replace(/^\/+/, '')}`, method, body, token, this.caPem);
    return { status: res.status, json: res.body === '' ? undefined : (JSON.parse(res.body) as unknown) };
  }

  async must<T = unknown>(method: string, path: string, body?: unknown, token?: string): Promise<T> {
    const res = await this.api(method, path, body, token);
    if (res.status < 200 || res.status > 299) {
      throw new Error(`vault ${method} ${path}: HTTP ${res.status} ${JSON.stringify(res.json)}`);
    }
    return res.json as T;
  }

  async seal(): Promise<void> {
    await this.must('PUT', 'sys/seal');
  }

  async unseal(): Promise<void> {
    await this.must('PUT', 'sys/unseal', { key: this.unsealKey() });
  }

  /**
   * Enables Kubernetes auth at `mount`, pointed at `cluster`'s API server (its
   * CA, and the token of a reviewer ServiceAccount bound to
   * system:auth-delegator): every login JWT is checked by a real TokenReview.
   */
  async configureKubernetesAuth(cluster: TestCluster, mount = 'kubernetes'): Promise<void> {
    const kube = new KubeClient(cluster.kubeConfig());
    const ns = 'kube-system';
    const sa = 'vault-token-reviewer';
    const ignoreExists = (err: unknown) => {
      if (!isAlreadyExists(err)) throw err;
    };
    await kube
      .request('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, {
        body: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns } },
      })
      .catch(ignoreExists);
    await kube
      .request('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
        body: {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: `${sa}-auth-delegator` },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
          subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
        },
      })
      .catch(ignoreExists);
    const token = await kube.request<{ status: { token: string } }>(
      'POST',
      `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
      { body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 86_400 } } },
    );
    const current = cluster.kubeConfig().getCurrentCluster();
    const ca = Buffer.from(current?.caData ?? '', 'base64').toString('utf8');
    const enabled = await this.api('POST', `sys/auth/${mount}`, { type: 'kubernetes' });
    if (enabled.status !== 204 && !JSON.stringify(enabled.json).includes('path is already in use')) {
      throw new Error(`enable auth/${mount}: HTTP ${enabled.status}`);
    }
    await this.must('POST', `auth/${mount}/config`, {
      kubernetes_host: cluster.server,
      kubernetes_ca_cert: ca,
      token_reviewer_jwt: token.status.token,
      disable_local_ca_jwt: true,
    });
  }

  /** Stops the process (the data is in memory: gone). */
  async stop(): Promise<void> {
    await this.proc.stop();
  }

  /** Removes the temporary directory. */
  cleanup(): void {
    releaseTempDir(this.dir);
  }
}

function readCa(dir: string): string | undefined {
  try {
    return readFileSync(join(dir, 'tls', 'vault-ca.pem'), 'utf8');
  } catch {
    return undefined;
  }
}

function send(
  url: string,
  method: string,
  body: unknown,
  token: string | undefined,
  ca: string | undefined,
): Promise<{ status: number; body: string }> {
  const target = new URL(url);
  const fn = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = fn(
      target,
      {
        method,
        timeout: 30_000,
        headers: {
          ...(token ? { 'x-vault-token': token } : {}),
          ...(payload ? { 'content-type': 'application/json' } : {}),
        },
        ...(ca ? { ca } : {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}
