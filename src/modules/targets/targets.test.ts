import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';


import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';

const TARGET_KEYS = [
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
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

interface Target {
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

interface AuditEntry {
  action: string;
  actor_id: number | null;
  resource_type: string | null;
  resource_id: string | null;
  details: Record<string, unknown>;
}

describe('targets', () => {
  let ctx: TestContext;
  let operator: { id: number; token: string };
  let viewer: { id: number; token: string };
  const creds: Record<'password' | 'ssh' | 'winrm' | 'api_token', number> = { password: 0, ssh: 0, winrm: 0, api_token: 0 };

  before(async () => {
    ctx = await createTestContext();
    operator = await ctx.createUser('operator');
    viewer = await ctx.createUser('viewer');
    const bodies = {
      password: { type: 'password', username: 'u', password: 'p' },
      ssh: { type: 'ssh', username: 'u', password: 'p' },
      winrm: { type: 'winrm', username: 'u', password: 'p' },
      api_token: { type: 'api_token', token: 't' },
    } as const;
    for (const [key, body] of Object.entries(bodies)) {
      const res = await ctx.request({ method: 'POST', url: '/credentials', token: ctx.adminToken, payload: { name: unique(`cred-${key}-`), ...body } });
      assert.equal(res.statusCode, 200, res.body);
      creds[key as keyof typeof creds] = res.json().id;
    }
  });
  after(() => ctx.close());

  const post = (payload: unknown, token = ctx.adminToken) => ctx.request({ method: 'POST', url: '/targets', token, payload: payload as object });
  const put = (id: number, payload: unknown, token = ctx.adminToken) => ctx.request({ method: 'PUT', url: `/targets/${id}`, token, payload: payload as object });
  const get = (id: number, token = ctx.adminToken) => ctx.request({ method: 'GET', url: `/targets/${id}`, token });
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
  const pinKey = async (id: number, fingerprint = 'SHA256:pinnedpinnedpinnedpinned') => {
    await ctx.deps.db.updateTable('targets').set({ host_key_fingerprint: fingerprint, status: 'online' }).where('id', '=', id).execute();
  };
  const auditFor = async (action: string, id: number): Promise<AuditEntry[]> => {
    const res = await ctx.request({ method: 'GET', url: `/audit?action=${encodeURIComponent(action)}&limit=200`, token: ctx.adminToken });
    assert.equal(res.statusCode, 200, res.body);
    return (res.json().entries as AuditEntry[]).filter((e) => e.resource_type === 'target' && e.resource_id === String(id));
  };

  describe('CRUD and response shape', () => {
    test('create returns the full target with defaults; GET returns the same', async () => {
      const name = unique('shape-');
      const res = await post({ name, host: 'web-1.example.com', os_type: 'linux', protocol: 'ssh' });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json() as Target;
      assert.deepEqual(Object.keys(body).sort(), TARGET_KEYS);
      assert.equal(typeof body.id, 'number');
      assert.ok(Number.isInteger(body.id) && body.id > 0);
      assert.equal(body.name, name);
      assert.equal(body.host, 'web-1.example.com');
      assert.equal(body.port, 22);
      assert.equal(body.os_type, 'linux');
      assert.equal(body.protocol, 'ssh');
      assert.equal(body.use_tls, false);
      assert.equal(body.credential_id, null);
      assert.deepEqual(body.tags, []);
      assert.equal(body.description, '');
      assert.equal(body.status, 'unknown');
      assert.equal(body.last_checked_at, null);
      assert.equal(body.response_time_ms, null);
      assert.equal(body.host_key_fingerprint, null);
      assert.deepEqual(body.group_ids, []);
      assert.match(body.created_at, ISO_UTC);
      assert.match(body.updated_at, ISO_UTC);

      const fetched = await get(body.id);
      assert.equal(fetched.statusCode, 200);
      assert.deepEqual(fetched.json(), body);
    });

    test('create keeps every given field', async () => {
      const body = await create({
        host: '192.168.1.20',
        os_type: 'windows',
        protocol: 'winrm',
        port: 15985,
        use_tls: true,
        credential_id: creds.winrm,
        tags: ['prod', 'dc:eu-1', 'role=db'],
        description: 'Primary DB, EU',
      });
      assert.equal(body.host, '192.168.1.20');
      assert.equal(body.os_type, 'windows');
      assert.equal(body.protocol, 'winrm');
      assert.equal(body.port, 15985);
      assert.equal(body.use_tls, true);
      assert.equal(body.credential_id, creds.winrm);
      assert.deepEqual(body.tags, ['prod', 'dc:eu-1', 'role=db']);
      assert.equal(body.description, 'Primary DB, EU');
    });

    test('PUT updates only the given fields and bumps updated_at', async () => {
      const before = await create({ tags: ['a'], description: 'old' });
      await new Promise((r) => setTimeout(r, 5));
      const res = await put(before.id, { description: 'new', tags: ['b', 'c'], os_type: 'unix' });
      assert.equal(res.statusCode, 200, res.body);
      const updated = res.json() as Target;
      assert.deepEqual(Object.keys(updated).sort(), TARGET_KEYS);
      assert.equal(updated.description, 'new');
      assert.deepEqual(updated.tags, ['b', 'c']);
      assert.equal(updated.os_type, 'unix');
      assert.equal(updated.name, before.name);
      assert.equal(updated.host, before.host);
      assert.equal(updated.port, before.port);
      assert.equal(updated.created_at, before.created_at);
      assert.ok(Date.parse(updated.updated_at) > Date.parse(before.updated_at), `${updated.updated_at} vs ${before.updated_at}`);
      assert.deepEqual((await get(before.id)).json(), updated);
    });

    test('PUT credential_id null detaches the credential', async () => {
      const target = await create({ credential_id: creds.ssh });
      assert.equal(target.credential_id, creds.ssh);
      const res = await put(target.id, { credential_id: null });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().credential_id, null);
    });

    test('DELETE removes the target; later reads are 404', async () => {
      const target = await create();
      const res = await ctx.request({ method: 'DELETE', url: `/targets/${target.id}`, token: ctx.adminToken });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { message: 'Target deleted successfully' });
      assertError(await get(target.id), 404, 'not_found');
      assertError(await ctx.request({ method: 'DELETE', url: `/targets/${target.id}`, token: ctx.adminToken }), 404, 'not_found');
    });

    test('unknown ids are 404 on every /targets/{id} route; non-integer ids are 400', async () => {
      const missing = 2_000_000_000;
      assertError(await get(missing), 404, 'not_found');
      assertError(await put(missing, { description: 'x' }), 404, 'not_found');
      assertError(await ctx.request({ method: 'DELETE', url: `/targets/${missing}`, token: ctx.adminToken }), 404, 'not_found');
      assertError(await ctx.request({ method: 'POST', url: `/targets/${missing}/host-key/reset`, token: ctx.adminToken }), 404, 'not_found');
      assertError(await ctx.request({ method: 'GET', url: '/targets/abc', token: ctx.adminToken }), 400, 'validation_error', 'id');
    });

    test('create, update and delete are audited with the actor', async () => {
      const target = await create({}, operator.token);
      await put(target.id, { description: 'audited' }, operator.token);
      await ctx.request({ method: 'DELETE', url: `/targets/${target.id}`, token: operator.token });
      const created = await auditFor('target.create', target.id);
      assert.equal(created.length, 1);
      assert.equal(created[0]?.actor_id, operator.id);
      assert.equal(created[0]?.details.name, target.name);
      const updated = await auditFor('target.update', target.id);
      assert.equal(updated.length, 1);
      assert.deepEqual(updated[0]?.details.fields, ['description']);
      const deleted = await auditFor('target.delete', target.id);
      assert.equal(deleted.length, 1);
      assert.equal(deleted[0]?.actor_id, operator.id);
    });
  });

  describe('validation', () => {
    const base = () => ({ name: unique('v-'), host: '10.1.1.1', os_type: 'linux', protocol: 'ssh' });

    test('host must be an IPv4/IPv6 address or a DNS name', async () => {
      for (const host of ['not a host', 'bad_host!', '-leading.example.com', 'a..b', 'http://example.com', `${'a'.repeat(64)}.example.com`, '[10.0.0.1', '1.2.3.4:22']) {
        assertError(await post({ ...base(), host }), 400, 'validation_error', 'host');
      }
      assertError(await post({ ...base(), host: '' }), 400, 'validation_error', 'host');
    });

    test('a dotted quad that is not an IPv4 address is not accepted as a host', async () => {
      // RFC 1123 §2.1: a host name never has the dotted-decimal form; 10.0.0.256 is a typo, not a name.
      assertError(await post({ ...base(), host: '10.0.0.256' }), 400, 'validation_error', 'host');
    });

    test('IPv4, DNS names, IPv6 and bracketed IPv6 are accepted (brackets dropped)', async () => {
      assert.equal((await create({ host: '8.8.4.4' })).host, '8.8.4.4');
      assert.equal((await create({ host: 'db-01.internal.example.org' })).host, 'db-01.internal.example.org');
      assert.equal((await create({ host: 'localhost' })).host, 'localhost');
      assert.equal((await create({ host: '2001:db8::10' })).host, '2001:db8::10');
      assert.equal((await create({ host: '::1' })).host, '::1');
      assert.equal((await create({ host: '[2001:db8::20]' })).host, '2001:db8::20');
      const target = await create();
      const res = await put(target.id, { host: '[fe80::1]' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().host, 'fe80::1');
      assertError(await put(target.id, { host: 'no spaces allowed' }), 400, 'validation_error', 'host');
    });

    test('port must be 1-65535 and an integer', async () => {
      for (const port of [0, 65536, -1, 22.5, '22x']) {
        assertError(await post({ ...base(), port }), 400, 'validation_error', 'port');
      }
      assert.equal((await create({ port: 1 })).port, 1);
      assert.equal((await create({ port: 65535 })).port, 65535);
      const target = await create();
      assertError(await put(target.id, { port: 70000 }), 400, 'validation_error', 'port');
    });

    test('default ports follow the protocol and use_tls', async () => {
      assert.equal((await create({ protocol: 'ssh' })).port, 22);
      assert.equal((await create({ protocol: 'winrm', os_type: 'windows' })).port, 5985);
      assert.equal((await create({ protocol: 'winrm', os_type: 'windows', use_tls: false })).port, 5985);
      assert.equal((await create({ protocol: 'winrm', os_type: 'windows', use_tls: true })).port, 5986);
      assert.equal((await create({ protocol: 'http', os_type: 'network' })).port, 80);
      assert.equal((await create({ protocol: 'http', os_type: 'network', use_tls: true })).port, 443);
      assert.equal((await create({ protocol: 'http', use_tls: true, port: 8443 })).port, 8443);
    });

    test('use_tls on ssh is a 400 naming use_tls (create and update)', async () => {
      assertError(await post({ ...base(), use_tls: true }), 400, 'validation_error', 'use_tls');
      const target = await create();
      assertError(await put(target.id, { use_tls: true }), 400, 'validation_error', 'use_tls');
      const winrm = await create({ protocol: 'winrm', use_tls: true });
      assertError(await put(winrm.id, { protocol: 'ssh', use_tls: true }), 400, 'validation_error', 'use_tls');
      assert.equal((await create({ use_tls: false })).use_tls, false);
    });

    test('os_type and protocol are lower-case enums', async () => {
      for (const os_type of ['linux', 'windows', 'unix', 'macos', 'network', 'other']) {
        assert.equal((await create({ os_type })).os_type, os_type);
      }
      for (const os_type of ['Linux', 'solaris', '', 7]) {
        assertError(await post({ ...base(), os_type }), 400, 'validation_error', 'os_type');
      }
      for (const protocol of ['SSH', 'telnet', 'https', '']) {
        assertError(await post({ ...base(), protocol }), 400, 'validation_error', 'protocol');
      }
      const target = await create();
      assertError(await put(target.id, { os_type: 'beos' }), 400, 'validation_error', 'os_type');
      assertError(await put(target.id, { protocol: 'rdp' }), 400, 'validation_error', 'protocol');
    });

    test('required fields, bad types, bad tags and unknown fields are 400s naming the field', async () => {
      for (const field of ['name', 'host', 'os_type', 'protocol']) {
        const body: Record<string, unknown> = base();
        delete body[field];
        assertError(await post(body), 400, 'validation_error', field);
      }
      assertError(await post({ ...base(), name: '' }), 400, 'validation_error', 'name');
      assertError(await post({ ...base(), name: 'x'.repeat(101) }), 400, 'validation_error', 'name');
      assertError(await post({ ...base(), os: 'linux' }), 400, 'validation_error', 'os');
      assertError(await post({ ...base(), use_tls: 'yes' }), 400, 'validation_error', 'use_tls');
      assertError(await post({ ...base(), tags: 'prod' }), 400, 'validation_error', 'tags');
      assertError(await post({ ...base(), tags: ['has space'] }), 400, 'validation_error', 'tags.0');
      assertError(await post({ ...base(), tags: ['dup', 'dup'] }), 400, 'validation_error', 'tags');
      assertError(await post({ ...base(), description: 'd'.repeat(1001) }), 400, 'validation_error', 'description');
      assertError(await post({ ...base(), credential_id: 'one' }), 400, 'validation_error', 'credential_id');
      const target = await create();
      assertError(await put(target.id, { hostname: 'x' }), 400, 'validation_error', 'hostname');
    });

    test('names are unique case-insensitively: 409 naming name on create and rename', async () => {
      const name = unique('Web-');
      await create({ name });
      const dup = await post({ ...base(), name: name.toLowerCase() });
      assertError(dup, 409, 'conflict', 'name');
      assert.deepEqual(dup.json().error.details, { field: 'name' });
      assertError(await post({ ...base(), name: name.toUpperCase() }), 409, 'conflict', 'name');
      const other = await create();
      assertError(await put(other.id, { name: name.toUpperCase() }), 409, 'conflict', 'name');
      // Renaming a target to a new case of its own name is fine.
      const self = await put(other.id, { name: other.name.toUpperCase() });
      assert.equal(self.statusCode, 200, self.body);
      assert.equal(self.json().name, other.name.toUpperCase());
    });

    test('credential_id must exist: 400 naming credential_id', async () => {
      assertError(await post({ ...base(), credential_id: 999_999 }), 400, 'validation_error', 'credential_id');
      const target = await create();
      assertError(await put(target.id, { credential_id: 999_999 }), 400, 'validation_error', 'credential_id');
      assert.equal((await get(target.id)).json().credential_id, null);
    });

    test('credential type must fit the protocol', async () => {
      const fits: Array<[string, keyof typeof creds]> = [
        ['ssh', 'ssh'],
        ['ssh', 'password'],
        ['winrm', 'winrm'],
        ['winrm', 'password'],
        ['http', 'api_token'],
        ['http', 'password'],
      ];
      for (const [protocol, type] of fits) {
        const res = await post({ ...base(), protocol, credential_id: creds[type] });
        assert.equal(res.statusCode, 200, `${protocol} with ${type}: ${res.body}`);
        assert.equal(res.json().credential_id, creds[type]);
      }
      const misfits: Array<[string, keyof typeof creds]> = [
        ['ssh', 'winrm'],
        ['ssh', 'api_token'],
        ['winrm', 'ssh'],
        ['winrm', 'api_token'],
        ['http', 'ssh'],
        ['http', 'winrm'],
      ];
      for (const [protocol, type] of misfits) {
        assertError(await post({ ...base(), protocol, credential_id: creds[type] }), 400, 'validation_error', 'credential_id');
      }
    });

    test('an update that makes the credential unfit (protocol change) is refused and changes nothing', async () => {
      const target = await create({ credential_id: creds.ssh });
      assertError(await put(target.id, { protocol: 'http' }), 400, 'validation_error', 'credential_id');
      const after = (await get(target.id)).json() as Target;
      assert.equal(after.protocol, 'ssh');
      assert.equal(after.port, 22);
      const both = await put(target.id, { protocol: 'http', credential_id: creds.api_token });
      assert.equal(both.statusCode, 200, both.body);
      assert.equal(both.json().protocol, 'http');
      assert.equal(both.json().credential_id, creds.api_token);
    });
  });

  describe('protocol moves and pinned host keys', () => {
    test('moving protocol without a port moves from the old default to the new default', async () => {
      const target = await create({ protocol: 'ssh' });
      const winrm = await put(target.id, { protocol: 'winrm' });
      assert.equal(winrm.statusCode, 200, winrm.body);
      assert.equal(winrm.json().port, 5985);
      const tls = await put(target.id, { use_tls: true });
      assert.equal(tls.json().port, 5986);
      const http = await put(target.id, { protocol: 'http' });
      assert.equal(http.json().port, 443);
      const plain = await put(target.id, { use_tls: false });
      assert.equal(plain.json().port, 80);
      const ssh = await put(target.id, { protocol: 'ssh' });
      assert.equal(ssh.statusCode, 200, ssh.body);
      assert.equal(ssh.json().port, 22);
    });

    test('a custom port is kept across a protocol move; an explicit port wins', async () => {
      const target = await create({ protocol: 'ssh', port: 2222 });
      const moved = await put(target.id, { protocol: 'winrm' });
      assert.equal(moved.json().port, 2222);
      const explicit = await put(target.id, { protocol: 'http', port: 8080 });
      assert.equal(explicit.json().port, 8080);
    });

    test('changing host, port or protocol forgets the pinned key and resets status', async () => {
      for (const change of [{ host: '10.9.9.9' }, { port: 2200 }, { protocol: 'winrm' }]) {
        const target = await create();
        await pinKey(target.id);
        const pinned = (await get(target.id)).json() as Target;
        assert.equal(pinned.host_key_fingerprint, 'SHA256:pinnedpinnedpinnedpinned');
        assert.equal(pinned.status, 'online');
        const res = await put(target.id, change);
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.json().host_key_fingerprint, null, JSON.stringify(change));
        assert.equal(res.json().status, 'unknown', JSON.stringify(change));
        const audit = await auditFor('target.update', target.id);
        assert.equal(audit[0]?.details.endpoint_changed, true);
      }
    });

    test('other changes (and a no-op host rewrite) keep the pinned key and status', async () => {
      const target = await create({ host: '2001:db8::5' });
      await pinKey(target.id);
      const res = await put(target.id, { description: 'still the same machine', tags: ['x'], os_type: 'other', name: unique('renamed-') });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().host_key_fingerprint, 'SHA256:pinnedpinnedpinnedpinned');
      assert.equal(res.json().status, 'online');
      const same = await put(target.id, { host: '[2001:db8::5]', port: 22 });
      assert.equal(same.statusCode, 200, same.body);
      assert.equal(same.json().host_key_fingerprint, 'SHA256:pinnedpinnedpinnedpinned');
      assert.equal(same.json().status, 'online');
    });

    test('POST /targets/{id}/host-key/reset clears the fingerprint, resets status and is audited', async () => {
      const target = await create();
      await pinKey(target.id, 'SHA256:oldkeyoldkeyoldkey');
      const res = await ctx.request({ method: 'POST', url: `/targets/${target.id}/host-key/reset`, token: operator.token });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json() as Target;
      assert.deepEqual(Object.keys(body).sort(), TARGET_KEYS);
      assert.equal(body.id, target.id);
      assert.equal(body.host_key_fingerprint, null);
      assert.equal(body.status, 'unknown');
      assert.equal((await get(target.id)).json().host_key_fingerprint, null);
      const audit = await auditFor('target.host_key_reset', target.id);
      assert.equal(audit.length, 1);
      assert.equal(audit[0]?.actor_id, operator.id);
      assert.equal(audit[0]?.details.previous_fingerprint, 'SHA256:oldkeyoldkeyoldkey');
    });
  });

  describe('listing', () => {
    let prefix: string;
    let ids: Record<string, number>;
    before(async () => {
      prefix = unique('lst');
      const mk = async (suffix: string, overrides: Record<string, unknown>) => (await create({ name: `${prefix}-${suffix}`, ...overrides })).id;
      ids = {
        a: await mk('a', { os_type: 'linux', protocol: 'ssh', tags: ['web', 'prod'], host: 'alpha.example.com' }),
        b: await mk('b', { os_type: 'windows', protocol: 'winrm', tags: ['db', 'prod'], description: 'disk 100% full' }),
        c: await mk('c', { os_type: 'linux', protocol: 'http', tags: ['web'], description: 'under_score here' }),
        d: await mk('d', { os_type: 'macos', protocol: 'ssh', tags: [], description: 'underXscore and 100X full' }),
        e: await mk('e', { os_type: 'network', protocol: 'http', tags: ['prod'] }),
      };
    });
    test('the list has the guide shape, defaults to page 1 limit 20 and is ordered by name', async () => {
      const body = await list(`?search=${prefix}`);
      assert.deepEqual(Object.keys(body).sort(), ['limit', 'page', 'targets', 'total']);
      assert.equal(body.page, 1);
      assert.equal(body.limit, 20);
      assert.equal(body.total, 5);
      assert.deepEqual(names(body.targets), ['a', 'b', 'c', 'd', 'e'].map((s) => `${prefix}-${s}`));
      for (const target of body.targets) {
        assert.deepEqual(Object.keys(target).sort(), TARGET_KEYS);
      }
    });

    test('paging keeps the total and returns the right slice', async () => {
      const page2 = await list(`?search=${prefix}&limit=2&page=2`);
      assert.equal(page2.total, 5);
      assert.equal(page2.page, 2);
      assert.equal(page2.limit, 2);
      assert.deepEqual(names(page2.targets), [`${prefix}-c`, `${prefix}-d`]);
      const page3 = await list(`?search=${prefix}&limit=2&page=3`);
      assert.deepEqual(names(page3.targets), [`${prefix}-e`]);
      const beyond = await list(`?search=${prefix}&limit=2&page=9`);
      assert.deepEqual(beyond.targets, []);
      assert.equal(beyond.total, 5);
      assertError(await ctx.request({ method: 'GET', url: '/targets?limit=201', token: ctx.adminToken }), 400, 'validation_error', 'limit');
      assertError(await ctx.request({ method: 'GET', url: '/targets?page=0', token: ctx.adminToken }), 400, 'validation_error', 'page');
    });

    test('os_type, protocol and tag filters combine with search', async () => {
      assert.deepEqual(names((await list(`?search=${prefix}&os_type=linux`)).targets), [`${prefix}-a`, `${prefix}-c`]);
      assert.deepEqual(names((await list(`?search=${prefix}&protocol=http`)).targets), [`${prefix}-c`, `${prefix}-e`]);
      assert.deepEqual(names((await list(`?search=${prefix}&protocol=ssh&os_type=macos`)).targets), [`${prefix}-d`]);
      const prod = await list(`?search=${prefix}&tag=prod`);
      assert.deepEqual(names(prod.targets), [`${prefix}-a`, `${prefix}-b`, `${prefix}-e`]);
      assert.equal(prod.total, 3);
      assert.deepEqual(names((await list(`?search=${prefix}&tag=web&os_type=linux&protocol=ssh`)).targets), [`${prefix}-a`]);
      assert.equal((await list(`?search=${prefix}&tag=nope`)).total, 0);
      assertError(await ctx.request({ method: 'GET', url: '/targets?os_type=Linux', token: ctx.adminToken }), 400, 'validation_error', 'os_type');
      assertError(await ctx.request({ method: 'GET', url: '/targets?protocol=ftp', token: ctx.adminToken }), 400, 'validation_error', 'protocol');
      assertError(await ctx.request({ method: 'GET', url: '/targets?colour=red', token: ctx.adminToken }), 400, 'validation_error', 'colour');
    });

    test('status filter', async () => {
      await ctx.deps.db.updateTable('targets').set({ status: 'offline' }).where('id', '=', ids.e as number).execute();
      assert.deepEqual(names((await list(`?search=${prefix}&status=offline`)).targets), [`${prefix}-e`]);
      assert.equal((await list(`?search=${prefix}&status=unknown`)).total, 4);
      assertError(await ctx.request({ method: 'GET', url: '/targets?status=down', token: ctx.adminToken }), 400, 'validation_error', 'status');
    });

    test('search matches name, host and description case-insensitively, with % and _ taken literally', async () => {
      assert.deepEqual(names((await list(`?search=ALPHA.EXAMPLE`)).targets), [`${prefix}-a`]);
      assert.deepEqual(names((await list(`?search=${prefix.toUpperCase()}-B`)).targets), [`${prefix}-b`]);
      assert.deepEqual(names((await list(`?search=${encodeURIComponent('100% full')}`)).targets), [`${prefix}-b`]);
      assert.deepEqual(names((await list(`?search=${encodeURIComponent('under_score')}`)).targets), [`${prefix}-c`]);
      // A bare % or _ would match everything if it were a wildcard.
      const percent = await list(`?search=${encodeURIComponent('%')}`);
      assert.deepEqual(names(percent.targets), [`${prefix}-b`]);
      const underscore = await list(`?search=${encodeURIComponent(`${prefix}_`)}`);
      assert.equal(underscore.total, 0);
    });

    test('group_id filter returns exactly the members', async () => {
      const group = await ctx.request({ method: 'POST', url: '/target-groups', token: ctx.adminToken, payload: { name: unique('lg-') } });
      assert.equal(group.statusCode, 200, group.body);
      const groupId = group.json().id as number;
      for (const id of [ids.b, ids.d]) {
        assert.equal((await ctx.request({ method: 'POST', url: `/target-groups/${groupId}/targets/${id}`, token: ctx.adminToken })).statusCode, 200);
      }
      const members = await list(`?group_id=${groupId}`);
      assert.deepEqual(names(members.targets), [`${prefix}-b`, `${prefix}-d`]);
      assert.equal(members.total, 2);
      for (const target of members.targets) {
        assert.deepEqual(target.group_ids, [groupId]);
      }
      assert.deepEqual(names((await list(`?group_id=${groupId}&os_type=macos`)).targets), [`${prefix}-d`]);
    });
  });

  describe('groups seen from targets', () => {
    test('deleting a target removes it from its groups', async () => {
      const target = await create();
      const other = await create();
      const groupIds: number[] = [];
      for (let i = 0; i < 2; i++) {
        const group = await ctx.request({ method: 'POST', url: '/target-groups', token: ctx.adminToken, payload: { name: unique('dg-') } });
        const groupId = group.json().id as number;
        groupIds.push(groupId);
        await ctx.request({ method: 'POST', url: `/target-groups/${groupId}/targets/${target.id}`, token: ctx.adminToken });
        await ctx.request({ method: 'POST', url: `/target-groups/${groupId}/targets/${other.id}`, token: ctx.adminToken });
      }
      assert.deepEqual((await get(target.id)).json().group_ids, [...groupIds].sort((x, y) => x - y));
      assert.equal((await ctx.request({ method: 'DELETE', url: `/targets/${target.id}`, token: ctx.adminToken })).statusCode, 200);
      for (const groupId of groupIds) {
        const group = (await ctx.request({ method: 'GET', url: `/target-groups/${groupId}`, token: ctx.adminToken })).json();
        assert.deepEqual(group.target_ids, [other.id]);
        assert.equal(group.target_count, 1);
        assert.deepEqual(names((await list(`?group_id=${groupId}`)).targets), [other.name]);
      }
    });
  });

  describe('access', () => {
    test('viewers read (200) but every write is 403', async () => {
      const target = await create();
      assert.equal((await list('', viewer.token)).total >= 1, true);
      assert.equal((await get(target.id, viewer.token)).statusCode, 200);
      const writes: Array<{ method: 'POST' | 'PUT' | 'DELETE'; url: string; payload?: unknown; headers?: Record<string, string> }> = [
        { method: 'POST', url: '/targets', payload: { name: unique('vw-'), host: '10.0.0.1', os_type: 'linux', protocol: 'ssh' } },
        { method: 'PUT', url: `/targets/${target.id}`, payload: { description: 'viewer was here' } },
        { method: 'DELETE', url: `/targets/${target.id}` },
        { method: 'POST', url: `/targets/${target.id}/host-key/reset` },
        { method: 'POST', url: `/targets/${target.id}/test` },
        { method: 'POST', url: '/targets/import', payload: [{ name: unique('vw-'), host: '10.0.0.1', os_type: 'linux', protocol: 'ssh' }] },
      ];
      for (const write of writes) {
        const res = await ctx.request({ method: write.method, url: write.url, token: viewer.token, payload: write.payload as object | undefined });
        assertError(res, 403, 'permission_error');
      }
      const unchanged = (await get(target.id)).json() as Target;
      assert.deepEqual(unchanged, target);
    });

    test('operators create, update, reset and delete targets', async () => {
      const target = await create({}, operator.token);
      assert.equal((await put(target.id, { description: 'by operator' }, operator.token)).statusCode, 200);
      assert.equal((await ctx.request({ method: 'POST', url: `/targets/${target.id}/host-key/reset`, token: operator.token })).statusCode, 200);
      assert.equal((await ctx.request({ method: 'DELETE', url: `/targets/${target.id}`, token: operator.token })).statusCode, 200);
    });

    test('no token is a 401', async () => {
      assertError(await ctx.request({ method: 'GET', url: '/targets' }), 401, 'auth_error');
      assertError(await ctx.request({ method: 'POST', url: '/targets', payload: {} }), 401, 'auth_error');
    });
  });
});
