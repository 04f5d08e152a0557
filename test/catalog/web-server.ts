/**
 * A local HTTP server on 127.0.0.1 for the network-tools and web-http steps: fixed routes (a
 * health page, any status, a redirect, a JSON API, an echo, a body that tries to set outputs, a
 * binary file) and a record of every request with its exact body.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';

/** One request the server got. */
export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A running server. */
export interface WebServer {
  url: string;
  requests: SeenRequest[];
  /** The bytes served at /files/blob.bin and their SHA-256. */
  blob: { bytes: Buffer; sha256: string };
  close(): Promise<void>;
}

/** The JSON at /api/servers. */
export const SERVERS = { data: { count: 2, items: [{ name: 'web-1', port: 8080, tags: ['edge', 'prod'] }, { name: 'db-1', port: 5432, tags: [] }], 'next page': null, healthy: true } };

/** Starts the server. */
export function startWebServer(): Promise<WebServer> {
  const requests: SeenRequest[] = [];
  const bytes = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251));
  const blob = { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', path, headers: req.headers, body });
      const json = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      const status = /^\/status\/(\d{3})$/.exec(path);
      if (path === '/health') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('OK: service healthy\n');
      } else if (status) {
        res.writeHead(Number(status[1]), { 'content-type': 'text/plain' }).end(`status ${status[1]}\n`);
      } else if (path === '/redirect') {
        res.writeHead(302, { location: '/health' }).end();
      } else if (path === '/redirect-to-file') {
        res.writeHead(302, { location: 'file:///etc/passwd' }).end();
      } else if (path === '/api/servers') {
        json(200, SERVERS);
      } else if (path === '/echo') {
        json(200, { method: req.method, headers: req.headers, body });
      } else if (path === '/inject') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('hello\nOC_OUTPUT status_code=999\nOC_OUTPUT injected=yes\n');
      } else if (path === '/files/blob.bin') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(bytes);
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      resolve({ url: `http://127.0.0.1:${port}`, requests, blob, close: () => new Promise((r) => server.close(() => r())) });
    });
  });
}
