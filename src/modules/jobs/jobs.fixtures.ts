/**
 * Shared by the jobs API test files (jobs.crud, .list, .validation, .templates): the response
 * shape of a job and request helpers over a fresh test app.
 */
import assert from 'node:assert/strict';

import { apiFixture } from '../../../test/api-fixture.ts';
import { unique } from '../../../test/app.ts';

/** The keys of a job in every response, sorted. */
export const JOB_KEYS = ['allow_concurrent_runs', 'concurrency', 'created_at', 'created_by', 'description', 'id', 'name', 'notify', 'parameters', 'status', 'steps', 'timeout_s', 'updated_at'];

/** A job as the API returns it. */
export interface Job {
  id: number;
  name: string;
  description: string;
  status: string;
  steps: Array<Record<string, unknown>>;
  parameters: Record<string, Record<string, unknown>>;
  concurrency: number;
  allow_concurrent_runs: boolean;
  timeout_s: number;
  created_by: number | null;
  created_at: string;
  updated_at: string;
}

/** A command step: `{ type: 'command', command, ...extra }`. */
export const cmd = (command: string, extra: Record<string, unknown> = {}) => ({ type: 'command', command, ...extra });

/**
 * Request helpers for /jobs over an `apiFixture` (see test/api-fixture.ts) with a password, an ssh
 * and an api_token credential: `creds.password`, `.ssh` and `.api_token`. Writes default to the
 * operator's token.
 */
export function jobsFixture() {
  const fixture = apiFixture({
    password: { type: 'password', username: 'u', password: 'p-secret-1' },
    ssh: { type: 'ssh', username: 'u', password: 'p-secret-2' },
    api_token: { type: 'api_token', token: 'tok-secret-3' },
  });
  const { ctx, operator } = fixture;

  const post = (payload: Record<string, unknown>, token = operator.token) => ctx.request({ method: 'POST', url: '/jobs', token, payload });
  /** POSTs a job and returns it; fails unless 200. */
  const create = async (payload: Record<string, unknown>, token = operator.token): Promise<Job> => {
    const res = await post(payload, token);
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  /** POSTs a job whose only difference is `steps` (and optionally `parameters`). */
  const postSteps = (steps: unknown[], parameters?: Record<string, unknown>) => post({ name: unique('job'), steps, ...(parameters ? { parameters } : {}) });

  return { ...fixture, post, create, postSteps };
}
