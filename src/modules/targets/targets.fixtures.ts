/**
 * Shared by the targets API test files (targets.crud, .validation, .endpoint, .listing): the
 * response shape of a target and request helpers over a fresh test app.
 */
import assert from 'node:assert/strict';

import { apiFixture } from '../../../test/api-fixture.ts';
import { unique } from '../../../test/app.ts';

/** The keys of a target in every response, sorted. */
export const TARGET_KEYS = [
  'created_at',
  'credential_id',
  'description',
  'group_ids',
  'host',
  'host_key_fingerprint',
  'id',
  'last_checked_at',
  'name',
  'os_type',
  'port',
  'protocol',
  'response_time_ms',
  'status',
  'tags',
  'tls_fingerprint',
  'tls_verify',
  'updated_at',
  'use_tls',
];

/** A target as the API returns it. */
export interface Target {
  id: number;
  name: string;
  host: string;
  port: number;
  os_type: string;
  protocol: string;
  use_tls: boolean;
  credential_id: number | null;
  tags: string[];
  description: string;
  status: string;
  last_checked_at: string | null;
  response_time_ms: number | null;
  host_key_fingerprint: string | null;
  group_ids: number[];
  created_at: string;
  updated_at: string;
}

/** An audit entry as `GET /audit` returns it. */
export interface AuditEntry {
  action: string;
  actor_id: number | null;
  resource_type: string | null;
  resource_id: string | null;
  details: Record<string, unknown>;
}

/**
 * Request helpers for /targets over an `apiFixture` (see test/api-fixture.ts) with one credential
 * of each type: `creds.password`, `.ssh`, `.winrm` and `.api_token`. Tokens default to the admin's.
 */
export function targetsFixture() {
  const fixture = apiFixture({
    password: { type: 'password', username: 'u', password: 'p' },
    ssh: { type: 'ssh', username: 'u', password: 'p' },
    winrm: { type: 'winrm', username: 'u', password: 'p' },
    api_token: { type: 'api_token', token: 't' },
  });
  const { ctx } = fixture;

  const post = (payload: unknown, token = ctx.adminToken) => ctx.request({ method: 'POST', url: '/targets', token, payload: payload as object });
  const put = (id: number, payload: unknown, token = ctx.adminToken) => ctx.request({ method: 'PUT', url: `/targets/${id}`, token, payload: payload as object });
  const get = (id: number, token = ctx.adminToken) => ctx.request({ method: 'GET', url: `/targets/${id}`, token });
  /** GET /targets`query`; fails unless 200. */
  const list = async (query: string, token = ctx.adminToken): Promise<{ targets: Target[]; total: number; page: number; limit: number }> => {
    const res = await ctx.request({ method: 'GET', url: `/targets${query}`, token });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  /** Creates a target (ssh/linux by default) and returns it; fails unless 200. */
  const create = async (overrides: Record<string, unknown> = {}, token = ctx.adminToken): Promise<Target> => {
    const res = await post({ name: unique('t-'), host: '10.0.0.1', os_type: 'linux', protocol: 'ssh', ...overrides }, token);
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  const names = (rows: Target[]) => rows.map((t) => t.name);
  /** Stores a pinned host key and status online directly in the database. */
  const pinKey = async (id: number, fingerprint = 'SHA256:pinnedpinnedpinnedpinned') => {
    await ctx.deps.db.updateTable('targets').set({ host_key_fingerprint: fingerprint, status: 'online' }).where('id', '=', id).execute();
  };
  /** The audit entries with `action` about target `id`, newest first. */
  const auditFor = async (action: string, id: number): Promise<AuditEntry[]> => {
    const res = await ctx.request({ method: 'GET', url: `/audit?action=${encodeURIComponent(action)}&limit=200`, token: ctx.adminToken });
    assert.equal(res.statusCode, 200, res.body);
    return (res.json().entries as AuditEntry[]).filter((e) => e.resource_type === 'target' && e.resource_id === String(id));
  };

  return { ...fixture, post, put, get, list, create, names, pinKey, auditFor };
}
