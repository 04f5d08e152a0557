/**
 * http and webhook steps: requests from the worker itself, with a credential's authorization or
 * an HMAC signature.
 */
import { createHmac } from 'node:crypto';

import { HttpCallError, httpCall } from '../../executor/http.ts';
import { aborted, fail, type StepEnv, type StepOutcome } from './outcome.ts';

async function authorization(step: Record<string, unknown>, env: StepEnv): Promise<Record<string, string>> {
  if (typeof step.credential_id !== 'number') {
    return {};
  }
  const cred = await env.resolveCredential(step.credential_id);
  if (step.auth === 'basic' || (!cred.token && cred.password)) {
    return { authorization: `Basic ${Buffer.from(`${cred.username ?? ''}:${cred.password ?? ''}`).toString('base64')}` };
  }
  return { authorization: `Bearer ${cred.token ?? cred.password ?? ''}` };
}

async function send(step: Record<string, unknown>, env: StepEnv, request: { method: string; headers: Record<string, string>; body?: string }, expect: (code: number) => boolean): Promise<StepOutcome> {
  try {
    const reply = await httpCall({ ...request, url: String(step.url), timeoutMs: Number(step.timeout_s) * 1000, signal: env.signal, maxBytes: env.maxOutputBytes + 1 });
    env.onOutput('stdout', Buffer.from(reply.body));
    const ok = expect(reply.statusCode);
    return { status: ok ? 'succeeded' : 'failed', exitCode: ok ? 0 : 1, stdout: reply.body, stderr: '', error: ok ? null : `unexpected HTTP status ${reply.statusCode}`, outputs: { status_code: String(reply.statusCode) } };
  } catch (e) {
    if (e instanceof HttpCallError) {
      return fail(e.message, { status: e.reason === 'timeout' ? 'timed_out' : e.reason === 'aborted' ? aborted(env.signal) : 'failed' });
    }
    throw e;
  }
}

/** An http step: the request as given; succeeds on `expect_status` (default 2xx). */
export async function runHttp(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
  const headers: Record<string, string> = { ...(step.headers as Record<string, string> | undefined), ...(await authorization(step, env)) };
  let body: string | undefined;
  if (step.body !== undefined) {
    body = typeof step.body === 'string' ? step.body : JSON.stringify(step.body);
    headers['content-type'] ??= typeof step.body === 'string' ? 'text/plain' : 'application/json';
  }
  const expected = step.expect_status as number[] | undefined;
  return send(step, env, { method: String(step.method), headers, body }, (code) => (expected ? expected.includes(code) : code >= 200 && code < 300));
}

/** A webhook step: JSON payload, signed with HMAC-SHA256 when a secret credential is named. */
export async function runWebhook(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
  const body = JSON.stringify(step.payload ?? {});
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(step.headers as Record<string, string> | undefined) };
  if (typeof step.secret_credential_id === 'number') {
    const key = (await env.resolveCredential(step.secret_credential_id)).token ?? '';
    headers['x-opsconductor-signature'] = `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
  }
  return send(step, env, { method: String(step.method ?? 'POST'), headers, body }, (code) => code >= 200 && code < 300);
}

