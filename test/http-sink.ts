/**
 * A local HTTP receiver standing in for Slack, Teams and webhook endpoints: records every request
 * (headers and the exact body bytes), answers 200 — or 503 for the first `failFirst` requests of a
 * path, or always `status` for a path configured so.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';

/** One received request. */
export interface SinkRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  json(): Record<string, unknown>;
}

/** A running receiver. */
export interface HttpSink {
  url: string;
  requests: SinkRequest[];
  /** Requests to `path` that were answered 2xx. */
  accepted(path: string): SinkRequest[];
  /** Answer the next `count` requests to `path` with `status` (default 503). */
  failNext(path: string, count: number, status?: number): void;
  /** Answer every request to `path` with `status`. */
  always(path: string, status: number): void;
  /** Resolves once `count` requests to `path` were accepted, or rejects after `timeoutMs`. */
  waitFor(path: string, count: number, timeoutMs?: number): Promise<SinkRequest[]>;
  close(): Promise<void>;
}

/** A loopback HTTP server that reads each request's body whole, then hands it to `handle`. */
export async function listenHttp(handle: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, Buffer.concat(chunks), res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Starts a receiver on a free loopback port. */
export async function startHttpSink(): Promise<HttpSink> {
  const requests: Array<SinkRequest & { status: number }> = [];
  const failures = new Map<string, { count: number; status: number }>();
  const { url, close } = await listenHttp((req, body, res) => {
    const path = req.url ?? '/';
    const failure = failures.get(path);
    let status = 200;
    if (failure && failure.count !== 0) {
      status = failure.status;
      failure.count -= 1;
    }
    requests.push({ method: req.method ?? 'GET', path, headers: req.headers, body, status, json: () => JSON.parse(body.toString('utf8')) as Record<string, unknown> });
    res.writeHead(status, { 'content-type': 'text/plain' });
    res.end(status === 200 ? 'ok' : `failing on purpose (${status})`);
  });
  const accepted = (path: string) => requests.filter((r) => r.path === path && r.status < 300);
  return {
    url,
    requests,
    accepted,
    failNext: (path, count, status = 503) => failures.set(path, { count, status }),
    always: (path, status) => failures.set(path, { count: -1, status }),
    async waitFor(path, count, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (accepted(path).length < count) {
        if (Date.now() > deadline) {
          throw new Error(`${path}: ${accepted(path).length} of ${count} requests within ${timeoutMs} ms (all: ${requests.map((r) => `${r.path} ${r.status}`).join(', ')})`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      return accepted(path);
    },
    close,
  };
}
