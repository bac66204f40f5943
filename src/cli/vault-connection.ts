// How `secretsync encrypt --transit` and `reencrypt --transit` reach Vault:
// address, token, namespace and CA bundle from flags or the environment the
// `vault` CLI reads (VAULT_ADDR, VAULT_TOKEN or ~/.vault-token,
// VAULT_NAMESPACE, VAULT_CACERT), so a person already logged in with `vault
// login` needs nothing more. A token is never taken as an argument (it would
// land in shell history and the process list). Errors name the request and the
// HTTP status, never Vault's body (which may repeat input) or the token.
import { readFile } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { isTlsError } from '../providers/vault/errors.js';
import type { TransitApi, VaultFailure } from '../providers/vault/transit.js';

export interface VaultConnectionOptions {
  vaultAddr?: string;
  vaultNamespace?: string;
  vaultCacert?: string;
  vaultTokenFile?: string;
}

/** What the connection needs from the process (tests give their own). */
export interface VaultEnvironment {
  env: Record<string, string | undefined>;
  readFile(path: string): Promise<string>;
  home(): string;
}

export const processEnvironment: VaultEnvironment = {
  get env() {
    return process.env;
  },
  readFile: (path) => readFile(path, 'utf8'),
  // $HOME first, as the vault CLI reads it (and as tests set it); the OS account's home otherwise.
  home: () => process.env.HOME || homedir(),
};

/** Requests slower than this fail (Vault answers transit calls in milliseconds). */
export const VAULT_CLI_TIMEOUT_MS = 30_000;
/** Answers larger than this are refused (a transit answer is a few KiB). */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/** A Vault answer that was not 2xx: status and Vault's error strings (kept for classification, never printed). */
export class VaultCliError extends Error {
  declare readonly vaultErrors: readonly string[];
  constructor(
    message: string,
    readonly status: number,
    vaultErrors: readonly string[],
  ) {
    super(message);
    this.name = 'VaultCliError';
    Object.defineProperty(this, 'vaultErrors', { value: vaultErrors, enumerable: false });
  }
}

/** For TransitKey: the status and error strings of a VaultCliError. */
export function cliFailureOf(err: unknown): VaultFailure | undefined {
  return err instanceof VaultCliError ? { status: err.status, errors: err.vaultErrors } : undefined;
}

/** A TransitApi for the CLI, configured like the `vault` CLI. */
export async function vaultConnection(
  options: VaultConnectionOptions,
  environment: VaultEnvironment = processEnvironment,
): Promise<TransitApi> {
  const env = environment.env;
  const address = options.vaultAddr ?? env.VAULT_ADDR;
  if (!address) throw new Error('no Vault address: give --vault-addr or set VAULT_ADDR');
  let base: URL;
  try {
    base = new URL(address);
  } catch {
    throw new Error('--vault-addr / VAULT_ADDR is not a URL (e.g. https://vault.example.com:8200)');
  }
  if (base.protocol !== 'https:' && base.protocol !== 'http:') {
    throw new Error('--vault-addr / VAULT_ADDR must be an http:// or https:// URL');
  }
  const token = await tokenFrom(options, environment);
  const namespace = options.vaultNamespace ?? env.VAULT_NAMESPACE;
  const caPath = options.vaultCacert ?? env.VAULT_CACERT;
  let ca: string | undefined;
  if (caPath) {
    try {
      ca = await environment.readFile(caPath);
    } catch {
      throw new Error('cannot read the CA bundle named by --vault-cacert / VAULT_CACERT');
    }
  }

  const call = (method: 'GET' | 'POST', path: string, body?: Record<string, unknown>) => {
    const url = new URL(`v1/${path}`, base.href.endsWith('/') ? base.href : `${base.href}/`);
    const what = `Vault ${method} v1/${path}`;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    const headers: Record<string, string> = { 'X-Vault-Token': token, 'X-Vault-Request': 'true' };
    if (namespace) headers['X-Vault-Namespace'] = namespace;
    if (payload) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(url, { method, headers, timeout: VAULT_CLI_TIMEOUT_MS, ...(ca ? { ca } : {}) }, (res) => {
        readAnswer(res, what).then(resolve, reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${what}: no answer within ${VAULT_CLI_TIMEOUT_MS / 1000} s`)));
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.message.startsWith(what)) reject(err);
        else if (isTlsError(err)) {
          reject(
            new Error(
              `${what}: TLS failed (${err.code}): Vault's certificate is not trusted; give its CA with --vault-cacert or VAULT_CACERT`,
            ),
          );
        } else reject(new Error(`${what}: ${err.code ?? 'request failed'}`));
      });
      // The body holds the value (base64): zero it once the request is done with it, not before (end() may queue it).
      req.on('close', () => payload?.fill(0));
      req.end(payload);
    });
  };
  return {
    read: (path) => call('GET', path),
    write: (path, body) => call('POST', path, body),
  };
}

async function readAnswer(res: IncomingMessage, what: string): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    size += (chunk as Buffer).length;
    if (size > MAX_ANSWER_BYTES) {
      res.destroy();
      throw new Error(`${what}: answer too large`);
    }
    chunks.push(chunk as Buffer);
  }
  const status = res.statusCode ?? 0;
  const text = Buffer.concat(chunks).toString('utf8');
  let parsed: unknown;
  try {
    parsed = text === '' ? {} : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (status < 200 || status > 299) {
    const errors = (parsed as { errors?: unknown } | undefined)?.errors;
    const list = Array.isArray(errors) ? errors.filter((e): e is string => typeof e === 'string') : [];
    const why =
      status === 403 || status === 401
        ? 'permission denied (check the token and its policy)'
        : status === 503 && list.some((e) => /sealed/i.test(e))
          ? 'Vault is sealed'
          : status === 404
            ? 'not found'
            : 'refused';
    throw new VaultCliError(`${what}: ${why} (HTTP ${status})`, status, list);
  }
  if (typeof parsed !== 'object' || parsed === null) throw new Error(`${what}: the answer is not JSON`);
  const data = (parsed as { data?: unknown }).data;
  return typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : {};
}

/** --vault-token-file, else VAULT_TOKEN, else ~/.vault-token (what `vault login` writes). */
async function tokenFrom(options: VaultConnectionOptions, environment: VaultEnvironment): Promise<string> {
  const trimmed = (s: string) => s.trim();
  if (options.vaultTokenFile) {
    try {
      return nonEmpty(trimmed(await environment.readFile(options.vaultTokenFile)));
    } catch {
      throw new Error('cannot read a Vault token from the file named by --vault-token-file');
    }
  }
  const fromEnv = environment.env.VAULT_TOKEN;
  if (fromEnv !== undefined && fromEnv.trim() !== '') return fromEnv.trim();
  try {
    return nonEmpty(trimmed(await environment.readFile(join(environment.home(), '.vault-token'))));
  } catch {
    throw new Error('no Vault token: set VAULT_TOKEN, run `vault login`, or give --vault-token-file');
  }
}

function nonEmpty(token: string): string {
  if (token === '' || /[\r\n]/.test(token)) throw new Error('empty or multi-line token');
  return token;
}
