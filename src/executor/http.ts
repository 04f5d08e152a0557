/**
 * Outbound HTTP for http and webhook steps and /execute/webhook (undici). Bodies are read up to a
 * cap; time limits and aborts are honoured. No database, no domain types.
 */
import { request } from 'undici';

/** One request. */
export interface HttpCall {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  timeoutMs: number;
  signal?: AbortSignal;
  /** Keep at most this many bytes of the response body. */
  maxBytes: number;
}

/** What came back. */
export interface HttpReply {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  truncated: boolean;
  durationMs: number;
}

/** Raised when no response arrived (refused, DNS, timeout, abort). */
export class HttpCallError extends Error {
  constructor(
    message: string,
    readonly reason: 'timeout' | 'aborted' | 'network',
  ) {
    super(message);
    this.name = 'HttpCallError';
  }
}

/** Performs `call`; throws {@link HttpCallError} when there is no response. */
export async function httpCall(call: HttpCall): Promise<HttpReply> {
  const started = performance.now();
  const timeout = AbortSignal.timeout(call.timeoutMs);
  const signal = call.signal ? AbortSignal.any([call.signal, timeout]) : timeout;
  try {
    const res = await request(call.url, { method: call.method as 'GET', headers: call.headers, body: call.body, signal });
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    for await (const chunk of res.body) {
      const buf = chunk as Buffer;
      if (size + buf.length > call.maxBytes) {
        chunks.push(buf.subarray(0, call.maxBytes - size));
        truncated = true;
        res.body.destroy();
        break;
      }
      chunks.push(buf);
      size += buf.length;
    }
    const headers = Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]));
    return { statusCode: res.statusCode, headers, body: Buffer.concat(chunks).toString('utf8'), truncated, durationMs: Math.round(performance.now() - started) };
  } catch (e) {
    if (call.signal?.aborted) {
      throw new HttpCallError('aborted', 'aborted');
    }
    if (timeout.aborted) {
      throw new HttpCallError(`no response within ${call.timeoutMs} ms`, 'timeout');
    }
    const err = e as { code?: string; cause?: { code?: string }; message?: string };
    throw new HttpCallError(`request failed: ${err.code ?? err.cause?.code ?? err.message}`, 'network');
  }
}
