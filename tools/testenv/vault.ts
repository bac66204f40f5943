// A real Vault server for the tests (the binary tools/build-vault-testenv.sh
// builds from Vault's Go module), started in dev mode on 127.0.0.1: unsealed,
// in memory, with a root token the tests hold. `configureKubernetesAuth` points
// Vault's Kubernetes auth method at the test control plane, so logins are
// checked by the real API server's TokenReview.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureVault } from './binaries.js';
import type { TestCluster } from './cluster.js';
import { simpleRequest } from './http.js';
import {
  freePort,
  GiveUpError,
  releaseTempDir,
  spawnLogged,
  trackTempDir,
  waitFor,
  type SpawnedProcess,
} from './processes.js';

export interface StartVaultOptions {
  /** Where the log (and TLS files) go. Default: a temporary directory removed on stop. */
  dir?: string;
  detached?: boolean;
  /** Serve HTTPS with a CA Vault generates (`-dev-tls`); `caPem` then holds it. */
  tls?: boolean;
  /** Default: random. */
  rootToken?: string;
}

export interface VaultAnswer {
  status: number;
  /** The parsed JSON body (undefined for an empty body). */
  json: unknown;
}

/** The ServiceAccount Vault reviews login tokens with (bound to system:auth-delegator). */
export const VAULT_REVIEWER_NAMESPACE = 'kube-system';
export const VAULT_REVIEWER_NAME = 'vault-token-reviewer';

export class VaultServer {
  private constructor(
    readonly address: string,
    readonly rootToken: string,
    private proc: SpawnedProcess,
    private readonly dir: string,
    private readonly ownsDir: boolean,
    private readonly listenPort: number,
    private readonly options: StartVaultOptions,
  ) {}

  static async start(options: StartVaultOptions = {}): Promise<VaultServer> {
    const ownsDir = options.dir === undefined;
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'secretsync-vault-'));
    if (ownsDir && !options.detached) trackTempDir(dir);
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const rootToken = options.rootToken ?? `root-${randomBytes(12).toString('hex')}`;
    const address = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    let proc: SpawnedProcess;
    try {
      proc = await VaultServer.spawn(port, dir, rootToken, options);
    } catch (err) {
      if (ownsDir && !options.detached) releaseTempDir(dir);
      throw err;
    }
    return new VaultServer(address, rootToken, proc, dir, ownsDir, port, options);
  }

  private static async spawn(
    port: number,
    dir: string,
    rootToken: string,
    options: StartVaultOptions,
  ): Promise<SpawnedProcess> {
    const vault = await ensureVault();
    const args = [
      'server',
      '-dev',
      `-dev-root-token-id=${rootToken}`,
      `-dev-listen-address=127.0.0.1:${port}`,
      '-dev-no-store-token',
      ...(options.tls ? ['-dev-tls', `-dev-tls-cert-dir=${join(dir, 'tls')}`] : []),
    ];
    if (options.tls) mkdirSync(join(dir, 'tls'), { recursive: true });
    // No HOME token helper, no mlock (dev mode does not use it), nothing from the caller's VAULT_* env.
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir, SKIP_SETCAP: '1' };
    // The dev banner (with the unseal key) is written after /sys/health first answers: wait for both,
    // so that a test sealing Vault at once can unseal it. A restart appends a second banner.
    const bannersBefore = VaultServer.unsealKeysIn(join(dir, 'vault.log')).length;
    const proc = spawnLogged('vault', vault, args, join(dir, 'vault.log'), {
      detached: options.detached === true,
      env,
    });
    const scheme = options.tls ? 'https' : 'http';
    try {
      await waitFor(
        'vault',
        async () => {
          if (!proc.isRunning()) throw new GiveUpError(`vault exited during start-up; see ${proc.logFile}`);
          const tls = options.tls ? VaultServer.readCa(dir) : undefined;
          if (options.tls && !tls) return undefined;
          const res = await simpleRequest(`${scheme}://127.0.0.1:${port}/v1/sys/health`, {
            ...(tls ? { tls: { ca: tls } } : {}),
          });
          if (res.status !== 200) return undefined;
          return VaultServer.unsealKeysIn(proc.logFile).length > bannersBefore ? true : undefined;
        },
        60_000,
      );
    } catch (err) {
      await proc.stop();
      throw err;
    }
    return proc;
  }

  private static readCa(dir: string): string | undefined {
    try {
      return readFileSync(join(dir, 'tls', 'vault-ca.pem'), 'utf8');
    } catch {
      return undefined;
    }
  }

  /** With `tls`: the CA (PEM) that signed the server's certificate. */
  get caPem(): string | undefined {
    return this.options.tls ? VaultServer.readCa(this.dir) : undefined;
  }

  get pid(): number {
    return this.proc.pid;
  }

  get logFile(): string {
    return this.proc.logFile;
  }

  /** Environment for the `vault` CLI or any client that reads VAULT_ADDR / VAULT_TOKEN. */
  env(): { VAULT_ADDR: string; VAULT_TOKEN: string; VAULT_CACERT?: string } {
    return {
      VAULT_ADDR: this.address,
      VAULT_TOKEN: this.rootToken,
      ...(this.options.tls ? { VAULT_CACERT: join(this.dir, 'tls', 'vault-ca.pem') } : {}),
    };
  }

  /** One API call as root (or with `token`): `path` without the `/v1/` prefix. */
  async api(method: string, path: string, body?: unknown, token = this.rootToken): Promise<VaultAnswer> {
    const ca = this.caPem;
    const res = await simpleRequest(`${this.address}/v1/${path.replace(/^\/+/, '')}`, {
      method,
      headers: { 'x-vault-token': token },
      timeoutMs: 30_000,
      ...(ca ? { tls: { ca } } : {}),
      ...(body === undefined ? {} : { body: JSON.stringify(body), contentType: 'application/json' }),
    });
    return { status: res.status, json: res.body === '' ? undefined : (JSON.parse(res.body) as unknown) };
  }

  /** Like `api`, but throws unless Vault answered 2xx; the body is the caller's to type. */
  async must<T = unknown>(method: string, path: string, body?: unknown, token?: string): Promise<T> {
    const res = await this.api(method, path, body, token);
    if (res.status < 200 || res.status > 299) {
      throw new Error(`vault ${method} ${path}: HTTP ${res.status} ${JSON.stringify(res.json)}`);
    }
    return res.json as T;
  }

  /**
   * Enables the Kubernetes auth method at `mount` and points it at `cluster`'s
   * API server: its CA, and a token of a reviewer ServiceAccount bound to
   * system:auth-delegator, so Vault checks every login JWT with a real TokenReview.
   */
  async configureKubernetesAuth(cluster: TestCluster, mount = 'kubernetes'): Promise<void> {
    const ns = VAULT_REVIEWER_NAMESPACE;
    const sa = VAULT_REVIEWER_NAME;
    const ok = (what: string, res: { status: number; body: string }) => {
      if (res.status >= 300 && res.status !== 409) throw new Error(`${what}: HTTP ${res.status} ${res.body}`);
    };
    ok(
      'create the reviewer ServiceAccount',
      await cluster.adminRequest('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, {
        apiVersion: 'v1',
        kind: 'ServiceAccount',
        metadata: { name: sa, namespace: ns },
      }),
    );
    ok(
      'bind the reviewer to system:auth-delegator',
      await cluster.adminRequest('POST', '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: `${sa}-auth-delegator` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:auth-delegator' },
        subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
      }),
    );
    const tokenRes = await cluster.adminRequest('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`, {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 86_400 },
    });
    if (tokenRes.status !== 201) throw new Error(`TokenRequest for the reviewer: HTTP ${tokenRes.status}`);
    const reviewerJwt = (JSON.parse(tokenRes.body) as { status: { token: string } }).status.token;
    const enabled = await this.api('POST', `sys/auth/${mount}`, { type: 'kubernetes' });
    if (enabled.status !== 204 && !JSON.stringify(enabled.json).includes('path is already in use')) {
      throw new Error(`enable auth/${mount}: HTTP ${enabled.status} ${JSON.stringify(enabled.json)}`);
    }
    await this.must('POST', `auth/${mount}/config`, {
      kubernetes_host: cluster.server,
      kubernetes_ca_cert: cluster.caPem,
      token_reviewer_jwt: reviewerJwt,
      disable_local_ca_jwt: true,
    });
  }

  /** Enables a secrets engine (`kv` v1/v2, `transit`, `pki`, …) at `path`; an engine already there is kept. */
  async enableEngine(path: string, type: string, options: Record<string, string> = {}): Promise<void> {
    const res = await this.api('POST', `sys/mounts/${path}`, { type, options });
    if (res.status !== 204 && !JSON.stringify(res.json).includes('path is already in use')) {
      throw new Error(`enable ${type} at ${path}: HTTP ${res.status} ${JSON.stringify(res.json)}`);
    }
  }

  /** The unseal keys in a dev server's log, oldest first (one banner per start of the process). */
  private static unsealKeysIn(logFile: string): string[] {
    let log: string;
    try {
      log = readFileSync(logFile, 'utf8');
    } catch {
      return [];
    }
    return [...log.matchAll(/Unseal Key: (\S+)/g)].map((m) => m[1] ?? '');
  }

  /** The running dev server's unseal key, from its start-up output (the last banner: a restart starts afresh). */
  unsealKey(): string {
    const key = VaultServer.unsealKeysIn(this.proc.logFile).at(-1);
    if (!key) throw new Error(`no unseal key in ${this.proc.logFile}`);
    return key;
  }

  /** Seals Vault: every request answers 503 "Vault is sealed" until `unseal()`. */
  async seal(): Promise<void> {
    await this.must('PUT', 'sys/seal');
  }

  async unseal(): Promise<void> {
    const key = this.unsealKey();
    const res = await this.must<{ sealed: boolean }>('PUT', 'sys/unseal', { key });
    if (res.sealed) throw new Error('vault is still sealed after unseal');
  }

  /** An outage: the process stops and the address refuses connections. */
  async kill(): Promise<void> {
    await this.proc.stop();
  }

  /**
   * Starts Vault again on the same address and root token. Dev mode keeps
   * everything in memory: mounts, auth methods and data are gone.
   */
  async restart(): Promise<void> {
    if (this.proc.isRunning()) await this.proc.stop();
    this.proc = await VaultServer.spawn(this.listenPort, this.dir, this.rootToken, this.options);
  }

  /** Stops the server and removes its directory (when it made one). */
  async stop(): Promise<void> {
    await this.proc.stop();
    if (this.ownsDir) releaseTempDir(this.dir);
  }

  /** The port Vault listens on (a TCP fault proxy in front of it needs it). */
  get port(): number {
    return this.listenPort;
  }
}
