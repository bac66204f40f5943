import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Every child process and temporary directory the harness creates is tracked
 * here so that a failing test, an uncaught error or Ctrl-C still tears
 * everything down: no stray etcd or kube-apiserver survives a test run.
 */
const liveChildren = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let handlersInstalled = false;

function killAllSync(): void {
  for (const child of liveChildren) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  liveChildren.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAllSync();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
}

export function trackTempDir(dir: string): void {
  installHandlers();
  tempDirs.add(dir);
}

export function releaseTempDir(dir: string): void {
  tempDirs.delete(dir);
  rmSync(dir, { recursive: true, force: true });
}

export interface SpawnedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  stop(timeoutMs?: number): Promise<void>;
  isRunning(): boolean;
}

/**
 * Starts a long-running component with its output in a log file. A detached
 * process gets its own session and is not tracked, so it outlives this Node
 * process (the `testenv start --detach` case); its pid is the caller's to keep.
 */
export function spawnLogged(
  name: string,
  command: string,
  args: string[],
  logFile: string,
  options: { detached?: boolean; env?: NodeJS.ProcessEnv } = {},
): SpawnedProcess {
  installHandlers();
  const fd = openSync(logFile, 'a');
  const child = spawn(command, args, {
    stdio: ['ignore', fd, fd],
    detached: options.detached === true,
    env: options.env ?? process.env,
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  const pid = child.pid;
  const exited = new Promise<void>((resolveExit) => {
    if (child.exitCode !== null) resolveExit();
    child.once('exit', () => {
      liveChildren.delete(child);
      resolveExit();
    });
    child.once('error', () => resolveExit());
  });
  if (options.detached) child.unref();
  else liveChildren.add(child);
  const isRunning = () => child.exitCode === null && child.signalCode === null;
  return {
    name,
    pid,
    logFile,
    exited,
    isRunning,
    async stop(timeoutMs = 10_000) {
      if (!isRunning()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not read the allocated port'));
        return;
      }
      server.close(() => resolvePort(address.port));
    });
  });
}

/** Whether a process (say, one that `testenv start --detach` left running) is still alive. */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Thrown from a `waitFor` check to stop waiting at once (say, the process being waited on died). */
export class GiveUpError extends Error {}

/** Polls until `check` returns a value, or fails with the last error after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof GiveUpError) throw err;
      lastError = err;
    }
    if (Date.now() > deadline) {
      const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}
