import { createServer, type Server } from 'node:http';
import type { Metrics } from './metrics.js';

export interface HealthSources {
  /** Alive: the event loop answers and the process is not wedged. */
  healthy(): boolean;
  /** Ready: caches synced (a standby replica is ready too: it serves as a hot spare). */
  ready(): boolean;
}

/** `/healthz`, `/readyz` and `/metrics` (all families, or `?name=…` ones) on one port. */
export async function startObservabilityServer(
  address: string,
  metrics: Metrics,
  health: HealthSources,
): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const [host, portText] = splitHostPort(address);
  const server = createServer((req, res) => {
    const [path, query] = (req.url ?? '/').split('?', 2);
    if (path === '/healthz' || path === '/readyz') {
      const ok = path === '/healthz' ? health.healthy() : health.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'ok\n' : 'not ready\n');
      return;
    }
    if (path === '/metrics') {
      // `?name=FAMILY` (repeatable): only those families. A poller that wants a few counters then does not make
      // the process serialise one series per ManagedSecret each time (tens of thousands of lines at scale).
      const names = new URLSearchParams(query ?? '').getAll('name');
      const perObject = metrics.perObjectGauges.filter((g) => names.length === 0 || names.includes(g.name));
      const registryPart =
        names.length === 0
          ? metrics.registry.metrics()
          : Promise.all(
              names
                .filter((n) => metrics.registry.getSingleMetric(n) !== undefined)
                .map((n) => metrics.registry.getSingleMetricAsString(n)),
            ).then((parts) => parts.map((p) => `${p}\n`).join(''));
      // The per-ManagedSecret families are written in slices (per-object-gauge.ts), after the registry's.
      const body = registryPart.then(async (text) => {
        const rest: string[] = [];
        for (const g of perObject) rest.push(await g.text());
        return rest.length === 0 ? text : `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}${rest.join('')}`;
      });
      body
        .then((body) => {
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          res.end(body);
        })
        .catch(() => {
          res.writeHead(500);
          res.end();
        });
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(portText), host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : Number(portText);
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function splitHostPort(address: string): [string, string] {
  const idx = address.lastIndexOf(':');
  if (idx < 0) throw new Error(`metrics address "${address}" must be HOST:PORT (e.g. :8080 or 127.0.0.1:0)`);
  const host = address.slice(0, idx) || '0.0.0.0';
  return [host.replace(/^\[|\]$/g, ''), address.slice(idx + 1)];
}
