import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureMoto } from './binaries.js';
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

export interface StartMotoOptions {
  /** Where the log goes. Default: a temporary directory removed on stop. */
  dir?: string;
  detached?: boolean;
  /** The region the credentials environment names. */
  region?: string;
}

/** Environment variables that point the AWS SDK at this moto server. */
export interface AwsEnv {
  AWS_ACCESS_KEY_ID: string;
  AWS_SECRET_ACCESS_KEY: string;
  AWS_REGION: string;
  AWS_ENDPOINT_URL: string;
}

/**
 * moto_server on 127.0.0.1: the AWS-compatible endpoint (KMS, Secrets Manager,
 * SSM, STS) that tests reach through the real `@aws-sdk/*` clients.
 */
export class MotoServer {
  private constructor(
    readonly endpoint: string,
    readonly region: string,
    private proc: SpawnedProcess,
    private readonly dir: string,
    private readonly ownsDir: boolean,
    private readonly port: number,
    private readonly detached: boolean,
  ) {}

  static async start(options: StartMotoOptions = {}): Promise<MotoServer> {
    const ownsDir = options.dir === undefined;
    const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'secretsync-moto-'));
    if (ownsDir && !options.detached) trackTempDir(dir);
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const detached = options.detached === true;
    let proc: SpawnedProcess;
    try {
      proc = await MotoServer.spawn(port, dir, detached);
    } catch (err) {
      if (ownsDir && !options.detached) releaseTempDir(dir);
      throw err;
    }
    return new MotoServer(
      `http://127.0.0.1:${port}`,
      options.region ?? 'us-east-1',
      proc,
      dir,
      ownsDir,
      port,
      detached,
    );
  }

  /** moto_server on `port`, answering; stopped again if it does not come up. */
  private static async spawn(port: number, dir: string, detached: boolean): Promise<SpawnedProcess> {
    const server = await ensureMoto();
    const proc = spawnLogged('moto_server', server, ['-H', '127.0.0.1', '-p', String(port)], join(dir, 'moto.log'), {
      detached,
    });
    const endpoint = `http://127.0.0.1:${port}`;
    try {
      await waitFor(
        'moto_server',
        async () => {
          if (!proc.isRunning()) throw new GiveUpError(`moto_server exited during start-up; see ${proc.logFile}`);
          const res = await simpleRequest(`${endpoint}/moto-api/`);
          return res.status < 500 ? true : undefined;
        },
        60_000,
      );
    } catch (err) {
      await proc.stop();
      throw err;
    }
    return proc;
  }

  /**
   * An outage: the process stops, the endpoint refuses connections, the log
   * directory stays. `restart()` brings it back on the same port (with empty
   * state: moto keeps everything in memory).
   */
  async kill(): Promise<void> {
    await this.proc.stop();
  }

  /** Starts moto_server again on the same port (after `kill()`; stops a running one first). */
  async restart(): Promise<void> {
    if (this.proc.isRunning()) await this.proc.stop();
    this.proc = await MotoServer.spawn(this.port, this.dir, this.detached);
  }

  get pid(): number {
    return this.proc.pid;
  }

  /** Static test credentials; moto accepts any. */
  env(): AwsEnv {
    return {
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: this.region,
      AWS_ENDPOINT_URL: this.endpoint,
    };
  }

  /** Client settings for an `@aws-sdk/*` client pointed at this server. */
  clientConfig(): { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } } {
    return {
      endpoint: this.endpoint,
      region: this.region,
      credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
    };
  }

  /** Forgets every key, secret and parameter, so tests do not see each other's state. */
  async reset(): Promise<void> {
    const res = await simpleRequest(`${this.endpoint}/moto-api/reset`, { method: 'POST' });
    if (res.status !== 200) throw new Error(`moto reset failed with HTTP ${res.status}`);
  }

  async stop(): Promise<void> {
    await this.proc.stop();
    if (this.ownsDir) releaseTempDir(this.dir);
  }
}
