// Backup files in an S3 bucket: `secretsync backup --out s3://BUCKET/KEY` and
// `secretsync restore --in s3://BUCKET/KEY`. Only the sealed file's bytes go
// to S3 (they are already encrypted and authenticated, see format.ts), so the
// bucket needs no trust beyond keeping them. The SDK loads on first use, as
// the KMS client does: every other command starts without it.
//
// An existing object is never replaced unless asked: the upload is a
// conditional write (If-None-Match: *), which S3 and moto evaluate atomically
// on the server, so two runs racing for one key cannot both win. A bucket that
// ignores the header (some S3-compatible stores) would overwrite silently, so
// the CLI also asks HeadObject before any work, as the file target checks
// existsSync first (a role without s3:ListBucket gets 403 for a missing key
// there; then only the conditional write decides).
//
// Every call has a deadline and takes the caller's signal; errors carry the
// S3 code and its short message (describeAwsFailure), never a body.
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { abortError } from '../api/abort.js';
import { describeAwsFailure, awsErrorName, httpStatusOf } from '../providers/aws/errors.js';
import type { HttpTimeouts } from '../providers/aws/client-config.js';

/** Where a backup lives in S3. */
export interface S3Location {
  bucket: string;
  key: string;
}

/** How to reach S3: flags, else the SDK's own environment (AWS_REGION, AWS_ENDPOINT_URL_S3, credentials chain). */
export interface S3Settings {
  region?: string;
  endpoint?: string;
}

/** The two calls a backup and a restore make; tests of the commands may substitute their own. */
export interface BackupObjectStore {
  /**
   * Whether the object exists (HeadObject); undefined when S3 will not say:
   * without s3:ListBucket a missing key is 403, not 404.
   */
  exists(loc: S3Location, signal?: AbortSignal): Promise<boolean | undefined>;
  /** Uploads the bytes; without `force`, fails with BackupObjectExistsError if the key is taken. */
  put(loc: S3Location, bytes: Buffer, opts: { force: boolean; signal?: AbortSignal }): Promise<void>;
  /** The object's bytes; at most `maxBytes`. */
  get(loc: S3Location, opts: { maxBytes: number; signal?: AbortSignal }): Promise<Buffer>;
  close(): void;
}

/** One call (head, put or get) may take this long in all, retries included. */
export const S3_CALL_DEADLINE_MS = 5 * 60_000;
/**
 * Connect, and wait for headers or the next byte of a body: uploads and
 * downloads of large files need more than the providers' 10 s. Spelled out
 * rather than taken from client-config.ts, which loads the STS SDK: every
 * command imports this module, and `run` must start without any AWS SDK.
 */
export const S3_HTTP_TIMEOUTS: HttpTimeouts = {
  connectionTimeout: 3000,
  requestTimeout: 60_000,
  throwOnRequestTimeout: true,
  socketTimeout: 60_000,
};
/** SDK attempts per call (the first and two retries), as the providers' clients (client-config.ts MAX_ATTEMPTS). */
const MAX_ATTEMPTS = 3;

export class BackupObjectExistsError extends Error {
  constructor(loc: S3Location) {
    super(`${s3Url(loc)} exists; pass --force to overwrite it`);
    this.name = 'BackupObjectExistsError';
  }
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Whether a --out / --in value names S3 rather than a file. */
export function isS3Url(value: string): boolean {
  return value.toLowerCase().startsWith('s3://');
}

/** `s3://BUCKET/KEY` → its parts; throws a message that names what is wrong. */
export function parseS3Url(value: string): S3Location {
  const m = /^s3:\/\/([^/]*)\/(.*)$/i.exec(value);
  if (!m) throw new Error(`${value} is not s3://BUCKET/KEY`);
  const [, bucket = '', key = ''] = m;
  if (!BUCKET.test(bucket) || bucket.includes('..')) {
    throw new Error(`${value}: "${bucket}" is not an S3 bucket name (3-63 of a-z, 0-9, "." and "-")`);
  }
  if (key === '' || key.endsWith('/')) throw new Error(`${value}: the object key must name a file, not a folder`);
  if (Buffer.byteLength(key) > 1024) throw new Error(`${value}: the object key is longer than 1024 bytes`);
  return { bucket, key };
}

export function s3Url(loc: S3Location): string {
  return `s3://${loc.bucket}/${loc.key}`;
}

/** The caller's signal and the per-call deadline, whichever fires first. */
function deadline(signal: AbortSignal | undefined): AbortSignal {
  const timeout = AbortSignal.timeout(S3_CALL_DEADLINE_MS);
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}

/** An SDK error as a message: the operation, the object, the S3 code; a cancelled call says so. */
function failure(err: unknown, operation: string, loc: S3Location, signal: AbortSignal): Error {
  if (signal.aborted) return abortError(signal, `S3 ${operation} ${s3Url(loc)}`);
  const name = awsErrorName(err);
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(String(err))) {
    return new Error(
      `S3 ${operation} ${s3Url(loc)}: no AWS credentials (IRSA, AWS_PROFILE, AWS_ACCESS_KEY_ID, an instance role)`,
    );
  }
  if (/Region is missing/i.test(String(err))) {
    return new Error(`S3 ${operation} ${s3Url(loc)}: no AWS region: give --s3-region or set AWS_REGION`);
  }
  return new Error(`S3 ${operation} ${s3Url(loc)}: ${describeAwsFailure(err)}`);
}

/** The key is missing (HeadObject's 404 has no body, so there a missing bucket looks the same). */
const isNotFound = (err: unknown) =>
  awsErrorName(err) !== 'NoSuchBucket' &&
  (awsErrorName(err) === 'NoSuchKey' || awsErrorName(err) === 'NotFound' || httpStatusOf(err) === 404);

/** The SDK client behind BackupObjectStore, region and endpoint from the settings or the environment. */
export function sdkBackupObjectStore(settings: S3Settings): BackupObjectStore {
  if (settings.endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(settings.endpoint)) {
    throw new Error(`--s3-endpoint must be an http(s) URL, got ${JSON.stringify(settings.endpoint.slice(0, 100))}`);
  }
  let loaded: Promise<{ client: S3Client; sdk: typeof import('@aws-sdk/client-s3') }> | undefined;
  let client: S3Client | undefined;
  const sdk = () =>
    (loaded ??= import('@aws-sdk/client-s3').then((mod) => {
      const config: S3ClientConfig = {
        retryMode: 'adaptive',
        maxAttempts: MAX_ATTEMPTS,
        requestHandler: S3_HTTP_TIMEOUTS,
      };
      const region = settings.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
      if (region) config.region = region;
      if (settings.endpoint) {
        config.endpoint = settings.endpoint;
        // MinIO and moto serve buckets under the path, not as host names.
        config.forcePathStyle = true;
      }
      client = new mod.S3Client(config);
      return { client, sdk: mod };
    }));
  return {
    async exists(loc, signal) {
      const { client, sdk: s3 } = await sdk();
      const abortSignal = deadline(signal);
      try {
        await client.send(new s3.HeadObjectCommand({ Bucket: loc.bucket, Key: loc.key }), { abortSignal });
        return true;
      } catch (err) {
        if (!abortSignal.aborted && isNotFound(err)) return false;
        if (!abortSignal.aborted && httpStatusOf(err) === 403) return undefined;
        throw failure(err, 'HeadObject', loc, abortSignal);
      }
    },
    async put(loc, bytes, { force, signal }) {
      const { client, sdk: s3 } = await sdk();
      const abortSignal = deadline(signal);
      try {
        await client.send(
          new s3.PutObjectCommand({
            Bucket: loc.bucket,
            Key: loc.key,
            Body: bytes,
            ContentType: 'application/octet-stream',
            ...(force ? {} : { IfNoneMatch: '*' }),
          }),
          { abortSignal },
        );
      } catch (err) {
        const name = awsErrorName(err);
        // 412: the key exists; 409: another upload to it is under way (S3's ConditionalRequestConflict).
        if (!force && !abortSignal.aborted && (name === 'PreconditionFailed' || httpStatusOf(err) === 412)) {
          throw new BackupObjectExistsError(loc);
        }
        if (!force && !abortSignal.aborted && name === 'ConditionalRequestConflict') {
          throw new Error(`${s3Url(loc)}: another upload to this key is under way; nothing was written`);
        }
        throw failure(err, 'PutObject', loc, abortSignal);
      }
    },
    async get(loc, { maxBytes, signal }) {
      const { client, sdk: s3 } = await sdk();
      const abortSignal = deadline(signal);
      try {
        const out = await client.send(new s3.GetObjectCommand({ Bucket: loc.bucket, Key: loc.key }), {
          abortSignal,
        });
        if (out.ContentLength !== undefined && out.ContentLength > maxBytes) {
          (out.Body as { destroy?: () => void } | undefined)?.destroy?.();
          throw new Error(`${s3Url(loc)} is larger than ${maxBytes} bytes`);
        }
        if (!out.Body) throw new Error(`${s3Url(loc)}: S3 GetObject returned no body`);
        const bytes = Buffer.from(await out.Body.transformToByteArray());
        if (bytes.length > maxBytes) throw new Error(`${s3Url(loc)} is larger than ${maxBytes} bytes`);
        return bytes;
      } catch (err) {
        if (err instanceof Error && err.message.startsWith(s3Url(loc))) throw err;
        if (!abortSignal.aborted && isNotFound(err)) {
          throw new Error(`${s3Url(loc)} does not exist (no such object in bucket ${loc.bucket})`);
        }
        if (!abortSignal.aborted && awsErrorName(err) === 'NoSuchBucket') {
          throw new Error(`${s3Url(loc)} does not exist (no bucket ${loc.bucket} here)`);
        }
        throw failure(err, 'GetObject', loc, abortSignal);
      }
    },
    close() {
      client?.destroy();
    },
  };
}
