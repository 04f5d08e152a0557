/**
 * Shared by the executor test files (executor.*.test.ts): a recording loopback HTTP server and
 * request helpers over a test context (credentials, targets, posting, polling executions).
 */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';

import { type TestContext, unique } from '../../../test/app.ts';
import { listenHttp } from '../../../test/http-sink.ts';

/** Statuses in which an execution (or job run) has finished. */
export const FINISHED = new Set(['completed', 'failed', 'canceled', 'timed_out']);

/** An execution as `GET /executions/{id}` answers it. */
export interface Execution {
  id: string;
  status: string;
  output: string;
  exit_code: number | null;
  steps: Array<{ step_index: number; name: string; status: string; exit_code: number | null; stdout: string; stderr: string; error: string | null }>;
}

/** One request the sink received. */
export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A loopback HTTP server that records requests and answers with `respond`. */
export async function startSink(respond: (req: Received) => { status: number; body: string; type?: string }) {
  const received: Received[] = [];
  const { url, close } = await listenHttp((req, body, res) => {
    const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: body.toString('utf8') };
    received.push(entry);
    const answer = respond(entry);
    res.writeHead(answer.status, { 'content-type': answer.type ?? 'application/json' });
    res.end(answer.body);
  });
  return { url, received, close };
}

/** Shared helpers over a test context. */
export function helpers(getCtx: () => TestContext) {
  const ctx = () => getCtx();
  const helper = {
    async credential(payload: Record<string, unknown>): Promise<number> {
      const res = await ctx().request({ method: 'POST', url: '/credentials', token: ctx().adminToken, payload: { name: unique('cred'), ...payload } });
      assert.equal(res.statusCode, 200, res.body);
      return res.json().id;
    },
    async target(payload: Record<string, unknown>): Promise<number> {
      const res = await ctx().request({ method: 'POST', url: '/targets', token: ctx().adminToken, payload: { name: unique('host'), host: '127.0.0.1', os_type: 'linux', protocol: 'ssh', ...payload } });
      assert.equal(res.statusCode, 200, res.body);
      return res.json().id;
    },
    post: (url: string, payload: Record<string, unknown>, token?: string) => ctx().request({ method: 'POST', url, token: token ?? ctx().adminToken, payload }),
    async execution(id: string, token?: string): Promise<Execution> {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const res = await ctx().request({ method: 'GET', url: `/executions/${id}`, token: token ?? ctx().adminToken });
        assert.equal(res.statusCode, 200, res.body);
        const body = res.json() as Execution;
        if (FINISHED.has(body.status)) {
          return body;
        }
        assert.ok(Date.now() < deadline, `execution ${id} still ${body.status}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async execute(targetId: number, steps: unknown[]): Promise<Execution> {
      const res = await helper.post('/execute', { target_id: targetId, steps });
      assert.equal(res.statusCode, 200, res.body);
      assert.match(res.json().execution_id, /^exec_[0-9]+$/);
      assert.equal(res.json().status, 'running');
      return helper.execution(res.json().execution_id);
    },
  };
  return helper;
}
