// Node's network error codes that mean "this endpoint could not be reached or
// stopped answering", shared by every provider that decides between failing
// over (another address may answer) and reporting a refusal (every address
// would say the same). One list, so a code learnt from one backend's outage
// counts for all of them.

/** Node's `code` (core and undici) for a connection that was refused, reset, timed out or never resolved. */
export const NODE_NETWORK_ERROR_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** The message of an error some HTTP layers throw without a code when the connection broke. */
export const BARE_NETWORK_MESSAGE = /socket hang up|ECONNREFUSED|ECONNRESET/;

/**
 * Whether an error (with no HTTP answer) means the endpoint is unreachable:
 * a network code, every attempt of an AggregateError (IPv4 and IPv6 tried),
 * or a bare "socket hang up". `extraCodes` adds a backend's own names.
 */
export function isNodeNetworkError(err: unknown, extraCodes?: ReadonlySet<string>): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (NODE_NETWORK_ERROR_CODES.has(code) || extraCodes?.has(code) === true)) return true;
  if (err instanceof AggregateError && err.errors.length > 0)
    return err.errors.every((e) => isNodeNetworkError(e, extraCodes));
  return err instanceof Error && BARE_NETWORK_MESSAGE.test(err.message);
}
