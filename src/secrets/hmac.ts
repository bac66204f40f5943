import { createHmac, randomBytes } from 'node:crypto';
import { isAlreadyExists, isNotFound, type KubeClient } from '../kube/client.js';

/**
 * Keyed HMAC-SHA256 of a Secret's type and data (base64 values). Keyed, so that
 * the value recorded in status and annotations cannot be used to guess a
 * low-entropy secret offline, as a plain hash could.
 */
export function dataHmac(key: Buffer, type: string, data: Record<string, string>): string {
  const mac = createHmac('sha256', key);
  mac.update(type);
  mac.update('\0');
  for (const k of Object.keys(data).sort()) {
    mac.update(k);
    mac.update('\0');
    mac.update(data[k] ?? '');
    mac.update('\0');
  }
  return `hmac-sha256:${mac.digest('hex').slice(0, 32)}`;
}

interface SecretWithData {
  data?: Record<string, string>;
}

/**
 * The operator's HMAC key lives in a Secret in its own namespace, created on
 * first start, so every replica and every restart computes the same values (a
 * restart must not rewrite status).
 */
export async function loadOrCreateHmacKey(client: KubeClient, namespace: string, name: string): Promise<Buffer> {
  const path = `/api/v1/namespaces/${namespace}/secrets/${name}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const secret = await client.get<SecretWithData>(path);
      const key = secret.data?.['hmac-key'];
      if (!key) throw new Error(`Secret ${namespace}/${name} has no key "hmac-key"`);
      return Buffer.from(key, 'base64');
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      await client.request('POST', `/api/v1/namespaces/${namespace}/secrets`, {
        body: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name, namespace, labels: { 'app.kubernetes.io/managed-by': 'secretsync' } },
          type: 'Opaque',
          data: { 'hmac-key': randomBytes(32).toString('base64') },
        },
      });
    } catch (err) {
      // Another replica created it first: read theirs.
      if (!isAlreadyExists(err)) throw err;
    }
  }
  throw new Error(`could not read or create the HMAC key Secret ${namespace}/${name}`);
}
