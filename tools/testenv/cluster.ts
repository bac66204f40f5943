import { KubeConfig } from '@kubernetes/client-node';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ensureKubeTestenv } from './binaries.js';
import { generateClusterPki, type ClusterPki } from './certs.js';
import { simpleRequest, type TlsClient } from './http.js';
import {
  freePort,
  GiveUpError,
  releaseTempDir,
  spawnLogged,
  trackTempDir,
  waitFor,
  type SpawnedProcess,
} from './processes.js';

export interface StartClusterOptions {
  /** Shown in logs, certificate names and the kubeconfig context. */
  name?: string;
  /** State directory (certificates, etcd data, logs). Default: a temporary directory removed on stop. */
  dir?: string;
  /** Let the processes outlive this Node process (for `testenv start --detach`). */
  detached?: boolean;
  /** Run kube-controller-manager (garbage collector, namespaces, ServiceAccounts). Default true. */
  controllerManager?: boolean;
  /**
   * An audit policy (YAML or JSON text, audit.k8s.io/v1 Policy): kube-apiserver
   * then writes its audit log, one JSON event a line, to `auditLogPath`, in
   * blocking mode (an event is on disk before its response is sent). Default: no
   * audit log.
   */
  auditPolicy?: string;
}

/** One line of a kube-apiserver audit log (audit.k8s.io/v1 Event), the fields tests read. */
export interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  user: { username: string; groups?: string[] };
  userAgent?: string;
  objectRef?: {
    resource?: string;
    subresource?: string;
    namespace?: string;
    name?: string;
    apiGroup?: string;
  };
  responseStatus?: { code?: number };
  /** Only at level Request or RequestResponse. */
  requestObject?: unknown;
  /** RFC 3339 with microseconds. */
  requestReceivedTimestamp: string;
  stageTimestamp: string;
}

/** A process of a test cluster, by the name it was launched with. */
export type ClusterComponent = 'etcd' | 'kube-apiserver' | 'kube-controller-manager';

/** What a detached cluster leaves on disk so that a later `testenv stop` can find it. */
export interface ClusterRecord {
  name: string;
  dir: string;
  server: string;
  version: string;
  kubeconfigPath: string;
  pids: number[];
}

const STARTUP_TIMEOUT_MS = 120_000;

/** How one component is started and when it counts as up; kept so that `restart()` can start it again. */
interface Launch {
  name: string;
  binary: string;
  args: string[];
  logFile: string;
  ready(proc: SpawnedProcess): Promise<void>;
}

async function launch(spec: Launch, detached: boolean): Promise<SpawnedProcess> {
  const proc = spawnLogged(spec.name, spec.binary, spec.args, spec.logFile, { detached });
  try {
    await spec.ready(proc);
  } catch (err) {
    await proc.stop(5_000);
    throw err;
  }
  return proc;
}

function tail(file: string, lines = 25): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

function failedToStart(proc: SpawnedProcess): GiveUpError {
  return new GiveUpError(`${proc.name} exited during start-up; last lines of ${proc.logFile}:\n${tail(proc.logFile)}`);
}

function kubeconfigYaml(name: string, server: string, pki: ClusterPki): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server, 'certificate-authority-data': b64(pki.ca.certPem) } }],
    users: [
      {
        name: 'admin',
        user: { 'client-certificate-data': b64(pki.admin.certPem), 'client-key-data': b64(pki.admin.keyPem) },
      },
    ],
    contexts: [{ name, context: { cluster: name, user: 'admin' } }],
    'current-context': name,
  });
}

/**
 * A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver with RBAC
 * authorization, and kube-controller-manager, all from the kube-testenv binary
 * built from the Kubernetes Go modules. Several can run side by side.
 */
export class TestCluster {
  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly server: string,
    readonly version: string,
    readonly kubeconfigPath: string,
    private readonly pki: ClusterPki,
    private processes: SpawnedProcess[],
    private readonly ownsDir: boolean,
    private readonly launches: Launch[],
    /** Where kube-apiserver writes its audit log; undefined unless started with `auditPolicy`. */
    readonly auditLogPath: string | undefined = undefined,
  ) {}

  static async start(options: StartClusterOptions = {}): Promise<TestCluster> {
    const name = options.name ?? 'secretsync-test';
    const binary = await ensureKubeTestenv();
    const ownsDir = options.dir === undefined;
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), `secretsync-${name}-`));
    if (ownsDir && !options.detached) trackTempDir(dir);
    mkdirSync(dir, { recursive: true });
    const pkiDir = join(dir, 'pki');
    mkdirSync(pkiDir, { recursive: true });

    const pki = await generateClusterPki(name);
    const files = {
      ca: join(pkiDir, 'ca.crt'),
      servingCert: join(pkiDir, 'apiserver.crt'),
      servingKey: join(pkiDir, 'apiserver.key'),
      saKey: join(pkiDir, 'sa.key'),
      saPub: join(pkiDir, 'sa.pub'),
    };
    writeFileSync(files.ca, pki.ca.certPem);
    writeFileSync(files.servingCert, pki.serving.certPem);
    writeFileSync(files.servingKey, pki.serving.keyPem, { mode: 0o600 });
    writeFileSync(files.saKey, pki.serviceAccount.privateKeyPem, { mode: 0o600 });
    writeFileSync(files.saPub, pki.serviceAccount.publicKeyPem);
    const auditLogPath = options.auditPolicy === undefined ? undefined : join(dir, 'audit.log');
    const auditArgs: string[] = [];
    if (options.auditPolicy !== undefined && auditLogPath !== undefined) {
      const policyFile = join(dir, 'audit-policy.yaml');
      writeFileSync(policyFile, options.auditPolicy);
      auditArgs.push(
        `--audit-policy-file=${policyFile}`,
        `--audit-log-path=${auditLogPath}`,
        '--audit-log-format=json',
        '--audit-log-mode=blocking',
        '--audit-log-maxbackup=0',
      );
    }

    const started: SpawnedProcess[] = [];
    const launches: Launch[] = [];
    const detached = options.detached === true;
    try {
      const [etcdClient, etcdPeer, apiPort] = await Promise.all([freePort(), freePort(), freePort()]);
      const etcdUrl = `http://127.0.0.1:${etcdClient}`;
      const peerUrl = `http://127.0.0.1:${etcdPeer}`;
      const etcdLaunch: Launch = {
        name: 'etcd',
        binary,
        args: [
          'etcd',
          `--name=${name}`,
          `--data-dir=${join(dir, 'etcd-data')}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=${peerUrl}`,
          `--initial-advertise-peer-urls=${peerUrl}`,
          `--initial-cluster=${name}=${peerUrl}`,
          '--unsafe-no-fsync',
          '--log-level=warn',
        ],
        logFile: join(dir, 'etcd.log'),
        ready: (etcd) =>
          waitFor(
            'etcd /health',
            async () => {
              if (!etcd.isRunning()) throw failedToStart(etcd);
              const res = await simpleRequest(`${etcdUrl}/health`);
              return res.status === 200 && res.body.includes('true') ? true : undefined;
            },
            STARTUP_TIMEOUT_MS,
          ).then(() => undefined),
      };
      launches.push(etcdLaunch);
      started.push(await launch(etcdLaunch, detached));

      const server = `https://127.0.0.1:${apiPort}`;
      const tls: TlsClient = { ca: pki.ca.certPem, cert: pki.admin.certPem, key: pki.admin.keyPem };
      const apiLaunch: Launch = {
        name: 'kube-apiserver',
        binary,
        args: [
          'kube-apiserver',
          `--etcd-servers=${etcdUrl}`,
          '--bind-address=127.0.0.1',
          '--advertise-address=127.0.0.1',
          `--secure-port=${apiPort}`,
          `--cert-dir=${pkiDir}`,
          `--tls-cert-file=${files.servingCert}`,
          `--tls-private-key-file=${files.servingKey}`,
          `--client-ca-file=${files.ca}`,
          '--authorization-mode=RBAC',
          `--service-account-issuer=${server}`,
          `--service-account-key-file=${files.saPub}`,
          `--service-account-signing-key-file=${files.saKey}`,
          '--service-cluster-ip-range=10.0.0.0/24',
          '--allow-privileged=true',
          '--endpoint-reconciler-type=none',
          '--enable-priority-and-fairness=false',
          '--profiling=false',
          ...(options.controllerManager === false ? ['--disable-admission-plugins=ServiceAccount'] : []),
          ...auditArgs,
        ],
        logFile: join(dir, 'kube-apiserver.log'),
        ready: (apiserver) =>
          waitFor(
            'kube-apiserver /readyz',
            async () => {
              if (!apiserver.isRunning()) throw failedToStart(apiserver);
              const res = await simpleRequest(`${server}/readyz`, { tls });
              return res.status === 200 ? true : undefined;
            },
            STARTUP_TIMEOUT_MS,
          ).then(() => undefined),
      };
      launches.push(apiLaunch);
      started.push(await launch(apiLaunch, detached));
      const versionInfo = JSON.parse((await simpleRequest(`${server}/version`, { tls })).body) as {
        gitVersion: string;
      };

      const kubeconfigPath = join(dir, 'kubeconfig');
      writeFileSync(kubeconfigPath, kubeconfigYaml(name, server, pki), { mode: 0o600 });

      if (options.controllerManager !== false) {
        const kcmLaunch: Launch = {
          name: 'kube-controller-manager',
          binary,
          args: [
            'kube-controller-manager',
            `--kubeconfig=${kubeconfigPath}`,
            '--leader-elect=false',
            '--secure-port=0',
            '--controllers=garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller',
            `--service-account-private-key-file=${files.saKey}`,
            `--root-ca-file=${files.ca}`,
          ],
          logFile: join(dir, 'kube-controller-manager.log'),
          // The default ServiceAccount appears once the ServiceAccount controller runs.
          ready: (kcm) =>
            waitFor(
              'kube-controller-manager (default ServiceAccount)',
              async () => {
                if (!kcm.isRunning()) throw failedToStart(kcm);
                const res = await simpleRequest(`${server}/api/v1/namespaces/default/serviceaccounts/default`, {
                  tls,
                });
                return res.status === 200 ? true : undefined;
              },
              STARTUP_TIMEOUT_MS,
            ).then(() => undefined),
        };
        launches.push(kcmLaunch);
        started.push(await launch(kcmLaunch, detached));
      }

      const cluster = new TestCluster(
        name,
        dir,
        server,
        versionInfo.gitVersion,
        kubeconfigPath,
        pki,
        started,
        ownsDir,
        launches,
        auditLogPath,
      );
      writeFileSync(join(dir, 'cluster.json'), JSON.stringify(cluster.record(), null, 2));
      return cluster;
    } catch (err) {
      for (const proc of started.reverse()) await proc.stop(5_000);
      if (ownsDir && !detached) releaseTempDir(dir);
      throw err;
    }
  }

  record(): ClusterRecord {
    return {
      name: this.name,
      dir: this.dir,
      server: this.server,
      version: this.version,
      kubeconfigPath: this.kubeconfigPath,
      pids: this.processes.map((p) => p.pid),
    };
  }

  /** The audit log so far, oldest first; throws unless the cluster was started with `auditPolicy`. */
  auditEvents(): AuditEvent[] {
    if (this.auditLogPath === undefined) throw new Error(`cluster ${this.name} was started without an audit policy`);
    if (!existsSync(this.auditLogPath)) return [];
    const lines = readFileSync(this.auditLogPath, 'utf8').split('\n');
    // The last piece is empty, or a line still being written.
    lines.pop();
    return lines.filter((line) => line.trim().length > 0).map((line) => JSON.parse(line) as AuditEvent);
  }

  /** A client configuration for the cluster admin (`system:masters`). */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  /** A client configuration that authenticates with a bearer token only (say, a ServiceAccount's). */
  kubeConfigForToken(token: string, user = 'token-user'): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: this.name, server: this.server, caData: Buffer.from(this.pki.ca.certPem).toString('base64') }],
      users: [{ name: user, token }],
      contexts: [{ name: this.name, cluster: this.name, user }],
      currentContext: this.name,
    });
    return kc;
  }

  /** The same as `kubeConfigForToken`, as kubeconfig YAML for a child process or kubectl. */
  kubeconfigYamlForToken(token: string, user = 'token-user'): string {
    return this.kubeConfigForToken(token, user).exportConfig();
  }

  /**
   * A raw request as the cluster admin. Typed clients re-serialize bodies
   * through their models, which drops fields they do not know (client-node
   * loses nested `x-kubernetes-validations`); this sends JSON as given.
   */
  async adminRequest(method: string, path: string, body?: unknown): Promise<{ status: number; body: string }> {
    return simpleRequest(`${this.server}${path}`, {
      method,
      tls: { ca: this.pki.ca.certPem, cert: this.pki.admin.certPem, key: this.pki.admin.keyPem },
      ...(body === undefined ? {} : { body: JSON.stringify(body), contentType: 'application/json' }),
      timeoutMs: 30_000,
    });
  }

  get caPem(): string {
    return this.pki.ca.certPem;
  }

  /** The running process of one component, by its launch name. */
  private component(name: ClusterComponent): { index: number; proc: SpawnedProcess } {
    const index = this.launches.findIndex((l) => l.name === name);
    const proc = this.processes[index];
    if (index < 0 || !proc) throw new Error(`cluster ${this.name} has no ${name} (or it is paused)`);
    return { index, proc };
  }

  /** The pid of one component's process. */
  pidOf(name: ClusterComponent): number {
    return this.component(name).proc.pid;
  }

  /**
   * SIGSTOP (`frozen: true`) or SIGCONT one component: a frozen kube-apiserver
   * still accepts TCP connections (the kernel does) but answers nothing, the way
   * a wedged or swapping server looks.
   */
  freeze(name: ClusterComponent, frozen: boolean): void {
    process.kill(this.pidOf(name), frozen ? 'SIGSTOP' : 'SIGCONT');
  }

  /**
   * Kills one component with SIGKILL (a crash: no graceful shutdown) and keeps
   * its data and port; `startComponent` brings it back. Its clients see refused
   * connections meanwhile.
   */
  async killComponent(name: ClusterComponent): Promise<void> {
    const { proc } = this.component(name);
    if (!proc.isRunning()) return;
    process.kill(proc.pid, 'SIGCONT');
    process.kill(proc.pid, 'SIGKILL');
    await proc.exited;
  }

  /** Starts one component again (after `killComponent`), on the same port with the same data; resolves once it is up. */
  async startComponent(name: ClusterComponent): Promise<void> {
    const { index, proc } = this.component(name);
    if (proc.isRunning()) throw new Error(`${name} of cluster ${this.name} is running; kill it first`);
    const spec = this.launches[index];
    if (!spec) throw new Error(`no launch for ${name}`);
    this.processes[index] = await launch(spec, false);
    writeFileSync(join(this.dir, 'cluster.json'), JSON.stringify(this.record(), null, 2));
  }

  /** Whether every process of the cluster is running (false between `pause()` and `restart()`). */
  isRunning(): boolean {
    return this.processes.length > 0 && this.processes.every((p) => p.isRunning());
  }

  /**
   * Stops the processes but keeps the data directory, certificates and ports,
   * so that `restart()` brings back the same cluster at the same address (an
   * outage, as clients see it).
   */
  async pause(): Promise<void> {
    // Reverse start order: clients of the apiserver first, etcd last.
    for (const proc of [...this.processes].reverse()) await proc.stop();
    this.processes = [];
  }

  /** Starts the processes again after `pause()`, on the same ports with the same data; resolves once it is up. */
  async restart(): Promise<void> {
    if (this.processes.length > 0) throw new Error(`cluster ${this.name} is running; pause() it first`);
    const started: SpawnedProcess[] = [];
    try {
      for (const spec of this.launches) started.push(await launch(spec, false));
    } catch (err) {
      for (const proc of started.reverse()) await proc.stop(5_000);
      throw err;
    }
    this.processes = started;
  }

  async stop(): Promise<void> {
    await this.pause();
    if (this.ownsDir) releaseTempDir(this.dir);
  }
}
