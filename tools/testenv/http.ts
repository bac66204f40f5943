import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface TlsClient {
  ca: string;
  /** A client certificate and key (absent: no client certificate). */
  cert?: string;
  key?: string;
}

export interface SimpleResponse {
  status: number;
  body: string;
}

/** One small HTTP(S) request for readiness probes, with no client library in between. */
export async function simpleRequest(
  url: string,
  options: {
    method?: string;
    tls?: TlsClient;
    timeoutMs?: number;
    body?: string;
    contentType?: string;
    headers?: Record<string, string>;
  } = {},
): Promise<SimpleResponse> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolveResponse, reject) => {
    const req = send(
      target,
      {
        method: options.method ?? 'GET',
        timeout: options.timeoutMs ?? 5_000,
        headers: { ...options.headers, ...(options.contentType ? { 'content-type': options.contentType } : {}) },
        ...(options.tls
          ? {
              ca: options.tls.ca,
              ...(options.tls.cert && options.tls.key ? { cert: options.tls.cert, key: options.tls.key } : {}),
            }
          : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => resolveResponse({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`request to ${url} timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}
