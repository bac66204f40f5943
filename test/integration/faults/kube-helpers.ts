// Shared pieces of the Kubernetes fault tests: a bounded wait that reports a
// hang as a failure (not as a mocha timeout), and a ConfigMap that changes
// steadily so that a healthy watch is never idle.
import type { KubeClient, KubeObject } from '../../../src/kube/client.js';

/** Settles `work`, or throws once `ms` passed: a request that hangs must fail the test, visibly. */
export async function settle<T>(
  work: Promise<T>,
  ms: number,
): Promise<{ value?: T; error?: unknown; elapsed: number }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HangError(`still pending after ${ms} ms (no deadline?)`)), ms);
  });
  try {
    const value = await Promise.race([work, hung]);
    return { value, elapsed: Date.now() - started };
  } catch (error) {
    if (error instanceof HangError) throw error;
    return { error, elapsed: Date.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

class HangError extends Error {}

/** A ConfigMap whose `data.n` the admin bumps every `everyMs` (from outside any fault), until stopped. */
export class Ticker {
  n = 0;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  constructor(
    private readonly admin: KubeClient,
    readonly namespace: string,
    readonly name = 'tick',
  ) {}

  get path(): string {
    return `/api/v1/namespaces/${this.namespace}/configmaps/${this.name}`;
  }

  async create(): Promise<void> {
    await this.admin.request('POST', `/api/v1/namespaces/${this.namespace}/configmaps`, {
      body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: this.name }, data: { n: '0' } },
    });
  }

  start(everyMs: number): void {
    this.timer = setInterval(() => {
      if (this.busy) return;
      this.busy = true;
      const next = this.n + 1;
      this.admin
        .request('PATCH', this.path, {
          body: { data: { n: String(next) } },
          contentType: 'application/merge-patch+json',
        })
        .then(() => (this.n = next))
        .catch(() => undefined)
        .finally(() => (this.busy = false));
    }, everyMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    while (this.busy) await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The `data.n` of a cached ticker ConfigMap. */
export const tickOf = (obj: KubeObject | undefined): number =>
  Number((obj?.data as { n?: string } | undefined)?.n ?? -1);
