// Misbehaving endpoints on 127.0.0.1 for the provider fault tests: one that
// accepts connections and never answers, one that answers whatever a test
// says (throttling, an HTML error page), one that refuses every connection.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';

export interface FakeEndpoint {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** Requests (or connections, for a hanging endpoint) seen so far. */
  hits: number;
  close(): Promise<void>;
}

async function listen(server: Server | ReturnType<typeof createHttpServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

/** Accepts every connection, reads the request, never writes a byte. */
export async function hangingEndpoint(): Promise<FakeEndpoint> {
  const sockets = new Set<Socket>();
  const endpoint: FakeEndpoint = { url: '', hits: 0, close: async () => undefined };
  const server = createTcpServer((socket) => {
    endpoint.hits++;
    sockets.add(socket);
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
  });
  endpoint.url = `http://127.0.0.1:${await listen(server)}`;
  endpoint.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return endpoint;
}

/** Answers every request with `respond` (after reading the body). */
export async function answeringEndpoint(
  respond: (req: IncomingMessage, res: ServerResponse, body: string) => void,
): Promise<FakeEndpoint> {
  const endpoint: FakeEndpoint = { url: '', hits: 0, close: async () => undefined };
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      endpoint.hits++;
      respond(req, res, Buffer.concat(chunks).toString('utf8'));
    });
  });
  endpoint.url = `http://127.0.0.1:${await listen(server)}`;
  endpoint.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return endpoint;
}

/** Closes every connection as soon as it opens (a target that is down, without waiting). */
export async function refusingEndpoint(): Promise<FakeEndpoint> {
  const endpoint: FakeEndpoint = { url: '', hits: 0, close: async () => undefined };
  const server = createTcpServer((socket) => {
    endpoint.hits++;
    socket.destroy();
  });
  endpoint.url = `http://127.0.0.1:${await listen(server)}`;
  endpoint.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return endpoint;
}

/** The time a promise took to settle, and how (never rejects). */
export async function timed<T>(work: Promise<T>): Promise<{ ms: number; value?: T; error?: Error }> {
  const started = Date.now();
  try {
    const value = await work;
    return { ms: Date.now() - started, value };
  } catch (err) {
    return { ms: Date.now() - started, error: err instanceof Error ? err : new Error(String(err)) };
  }
}

/** Settles with the work, or with a "still waiting" error after `ms` (the work is left running). */
export function within<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms);
  });
  return Promise.race([work, guard]).finally(() => clearTimeout(timer));
}
