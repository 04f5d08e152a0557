import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';


import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';

const GROUP_KEYS = ['created_at', 'description', 'id', 'name', 'target_count', 'target_ids', 'updated_at'];
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

interface Group {
  id: number;
  name: string;
  description: string;
  target_count: number;
  target_ids: number[];
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

describe('target groups', () => {
  let ctx: TestContext;
  let operator: { id: number; token: string };
  let viewer: { id: number; token: string };

  before(async () => {
    ctx = await createTestContext();
    operator = await ctx.createUser('operator');
    viewer = await ctx.createUser('viewer');
  });
  after(() => ctx.close());

  const createGroup = async (overrides: Record<string, unknown> = {}, token = ctx.adminToken): Promise<Group> => {
    const res = await ctx.request({ method: 'POST', url: '/target-groups', token, payload: { name: unique('g-'), ...overrides } });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  const createTarget = async (): Promise<{ id: number; name: string }> => {
    const res = await ctx.request({ method: 'POST', url: '/targets', token: ctx.adminToken, payload: { name: unique('t-'), host: '10.0.0.1', os_type: 'linux', protocol: 'ssh' } });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  const getGroup = (id: number, token = ctx.adminToken) => ctx.request({ method: 'GET', url: `/target-groups/${id}`, token });
  const add = (groupId: number, targetId: number, token = ctx.adminToken) => ctx.request({ method: 'POST', url: `/target-groups/${groupId}/targets/${targetId}`, token });
  const remove = (groupId: number, targetId: number, token = ctx.adminToken) =>
    ctx.request({ method: 'DELETE', url: `/target-groups/${groupId}/targets/${targetId}`, token });
  const targetsInGroup = async (groupId: number): Promise<{ ids: number[]; total: number }> => {
    const res = await ctx.request({ method: 'GET', url: `/targets?group_id=${groupId}&limit=200`, token: ctx.adminToken });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    return { ids: (body.targets as Array<{ id: number }>).map((t) => t.id).sort((a, b) => a - b), total: body.total };
  };
  const auditFor = async (action: string, groupId: number): Promise<AuditEntry[]> => {
    const res = await ctx.request({ method: 'GET', url: `/audit?action=${encodeURIComponent(action)}&limit=200`, token: ctx.adminToken });
    assert.equal(res.statusCode, 200, res.body);
    return (res.json().entries as AuditEntry[]).filter((e) => e.resource_type === 'target_group' && e.resource_id === String(groupId));
  };

  test('create returns the group with no members; GET returns the same', async () => {
    const name = unique('Web Servers ');
    const res = await ctx.request({ method: 'POST', url: '/target-groups', token: ctx.adminToken, payload: { name, description: 'All web servers' } });
    assert.equal(res.statusCode, 200, res.body);
    const group = res.json() as Group;
    assert.deepEqual(Object.keys(group).sort(), GROUP_KEYS);
    assert.ok(Number.isInteger(group.id) && group.id > 0);
    assert.equal(group.name, name);
    assert.equal(group.description, 'All web servers');
    assert.equal(group.target_count, 0);
    assert.deepEqual(group.target_ids, []);
    assert.match(group.created_at, ISO_UTC);
    assert.match(group.updated_at, ISO_UTC);
    const fetched = await getGroup(group.id);
    assert.equal(fetched.statusCode, 200);
    assert.deepEqual(fetched.json(), group);
    assert.equal((await createGroup()).description, '');
  });

  test('list has {groups, total, page, limit}, is ordered by name and pages', async () => {
    const prefix = unique('lg');
    const made = [];
    for (const suffix of ['c', 'a', 'b']) {
      made.push(await createGroup({ name: `${prefix}-${suffix}` }));
    }
    const target = await createTarget();
    await add(made[0]?.id as number, target.id);
    const res = await ctx.request({ method: 'GET', url: `/target-groups?search=${prefix}`, token: ctx.adminToken });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), ['groups', 'limit', 'page', 'total']);
    assert.equal(body.total, 3);
    assert.equal(body.page, 1);
    assert.equal(body.limit, 20);
    assert.deepEqual(
      (body.groups as Group[]).map((g) => g.name),
      ['a', 'b', 'c'].map((s) => `${prefix}-${s}`),
    );
    for (const group of body.groups as Group[]) {
      assert.deepEqual(Object.keys(group).sort(), GROUP_KEYS);
    }
    const withMember = (body.groups as Group[]).find((g) => g.name === `${prefix}-c`);
    assert.equal(withMember?.target_count, 1);
    assert.deepEqual(withMember?.target_ids, [target.id]);

    const page2 = (await ctx.request({ method: 'GET', url: `/target-groups?search=${prefix}&limit=2&page=2`, token: ctx.adminToken })).json();
    assert.equal(page2.total, 3);
    assert.deepEqual(
      (page2.groups as Group[]).map((g) => g.name),
      [`${prefix}-c`],
    );
    assertError(await ctx.request({ method: 'GET', url: '/target-groups?limit=500', token: ctx.adminToken }), 400, 'validation_error', 'limit');
  });

  test('validation: name required, no unknown fields, limits', async () => {
    assertError(await ctx.request({ method: 'POST', url: '/target-groups', token: ctx.adminToken, payload: {} }), 400, 'validation_error', 'name');
    assertError(await ctx.request({ method: 'POST', url: '/target-groups', token: ctx.adminToken, payload: { name: '' } }), 400, 'validation_error', 'name');
    assertError(await ctx.request({ method: 'POST', url: '/target-groups', token: ctx.adminToken, payload: { name: unique(), targets: [1] } }), 400, 'validation_error', 'targets');
    assertError(
      await ctx.request({ method: 'POST', url: '/target-groups', token: ctx.adminToken, payload: { name: unique(), description: 'x'.repeat(1001) } }),
      400,
      'validation_error',
      'description',
    );
    const group = await createGroup();
    assertError(await ctx.request({ method: 'PUT', url: `/target-groups/${group.id}`, token: ctx.adminToken, payload: { colour: 'red' } }), 400, 'validation_error', 'colour');
  });

  test('duplicate names are 409 naming name, case-insensitively, on create and rename', async () => {
    const name = unique('Prod-');
    await createGroup({ name });
    const dup = await ctx.request({ method: 'POST', url: '/target-groups', token: ctx.adminToken, payload: { name: name.toLowerCase() } });
    assertError(dup, 409, 'conflict', 'name');
    const other = await createGroup();
    assertError(await ctx.request({ method: 'PUT', url: `/target-groups/${other.id}`, token: ctx.adminToken, payload: { name: name.toUpperCase() } }), 409, 'conflict', 'name');
    assert.equal((await getGroup(other.id)).json().name, other.name);
  });

  test('PUT renames and describes; unknown ids are 404', async () => {
    const group = await createGroup({ description: 'before' });
    const target = await createTarget();
    await add(group.id, target.id);
    const newName = unique('renamed-');
    const res = await ctx.request({ method: 'PUT', url: `/target-groups/${group.id}`, token: ctx.adminToken, payload: { name: newName } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().name, newName);
    assert.equal(res.json().description, 'before');
    assert.deepEqual(res.json().target_ids, [target.id]);
    const described = await ctx.request({ method: 'PUT', url: `/target-groups/${group.id}`, token: ctx.adminToken, payload: { description: 'after' } });
    assert.equal(described.json().name, newName);
    assert.equal(described.json().description, 'after');

    const missing = 2_000_000_000;
    assertError(await getGroup(missing), 404, 'not_found');
    assertError(await ctx.request({ method: 'PUT', url: `/target-groups/${missing}`, token: ctx.adminToken, payload: { name: unique() } }), 404, 'not_found');
    assertError(await ctx.request({ method: 'DELETE', url: `/target-groups/${missing}`, token: ctx.adminToken }), 404, 'not_found');
  });

  test('membership: add, add again (no-op), remove; counts and ids follow', async () => {
    const group = await createGroup();
    const [t1, t2, t3] = [await createTarget(), await createTarget(), await createTarget()];
    for (const target of [t2, t1]) {
      const res = await add(group.id, target.id);
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { message: 'Target added to group successfully' });
    }
    const again = await add(group.id, t1.id);
    assert.equal(again.statusCode, 200, again.body);
    assert.deepEqual(again.json(), { message: 'Target is already in the group' });

    let fetched = (await getGroup(group.id)).json() as Group;
    assert.equal(fetched.target_count, 2);
    assert.deepEqual(fetched.target_ids, [t1.id, t2.id]);
    const t1Now = (await ctx.request({ method: 'GET', url: `/targets/${t1.id}`, token: ctx.adminToken })).json();
    assert.deepEqual(t1Now.group_ids, [group.id]);
    assert.deepEqual((await ctx.request({ method: 'GET', url: `/targets/${t3.id}`, token: ctx.adminToken })).json().group_ids, []);
    assert.deepEqual(await targetsInGroup(group.id), { ids: [t1.id, t2.id], total: 2 });

    const removed = await remove(group.id, t2.id);
    assert.equal(removed.statusCode, 200, removed.body);
    assert.deepEqual(removed.json(), { message: 'Target removed from group successfully' });
    fetched = (await getGroup(group.id)).json() as Group;
    assert.equal(fetched.target_count, 1);
    assert.deepEqual(fetched.target_ids, [t1.id]);
    assert.deepEqual(await targetsInGroup(group.id), { ids: [t1.id], total: 1 });

    const notMember = await remove(group.id, t3.id);
    assert.equal(notMember.statusCode, 200, notMember.body);
    assert.notEqual(notMember.json().message, 'Target removed from group successfully');
    assert.equal((await getGroup(group.id)).json().target_count, 1);
  });

  test('a target can be in several groups', async () => {
    const [g1, g2] = [await createGroup(), await createGroup()];
    const target = await createTarget();
    await add(g2.id, target.id);
    await add(g1.id, target.id);
    const fetched = (await ctx.request({ method: 'GET', url: `/targets/${target.id}`, token: ctx.adminToken })).json();
    assert.deepEqual(fetched.group_ids, [g1.id, g2.id].sort((a, b) => a - b));
    assert.deepEqual((await targetsInGroup(g1.id)).ids, [target.id]);
    assert.deepEqual((await targetsInGroup(g2.id)).ids, [target.id]);
  });

  test('membership with an unknown group or target is 404 and changes nothing', async () => {
    const group = await createGroup();
    const target = await createTarget();
    const missing = 2_000_000_000;
    assertError(await add(missing, target.id), 404, 'not_found');
    assertError(await add(group.id, missing), 404, 'not_found');
    assertError(await remove(missing, target.id), 404, 'not_found');
    assertError(await remove(group.id, missing), 404, 'not_found');
    assertError(await add(group.id, 0), 400, 'validation_error', 'target_id');
    assert.deepEqual((await getGroup(group.id)).json().target_ids, []);
  });

  test('deleting a group leaves its targets (without that group id)', async () => {
    const group = await createGroup();
    const keep = await createGroup();
    const [t1, t2] = [await createTarget(), await createTarget()];
    for (const target of [t1, t2]) {
      await add(group.id, target.id);
    }
    await add(keep.id, t1.id);
    const res = await ctx.request({ method: 'DELETE', url: `/target-groups/${group.id}`, token: ctx.adminToken });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { message: 'Target group deleted successfully' });
    assertError(await getGroup(group.id), 404, 'not_found');
    for (const target of [t1, t2]) {
      const fetched = await ctx.request({ method: 'GET', url: `/targets/${target.id}`, token: ctx.adminToken });
      assert.equal(fetched.statusCode, 200, fetched.body);
      assert.deepEqual(fetched.json().group_ids, target === t1 ? [keep.id] : []);
    }
    assert.deepEqual(await targetsInGroup(group.id), { ids: [], total: 0 });
    assert.deepEqual((await getGroup(keep.id)).json().target_ids, [t1.id]);
  });

  test('GET /targets?group_id stays consistent with membership through changes', async () => {
    const group = await createGroup();
    const targets = [];
    for (let i = 0; i < 4; i++) {
      targets.push(await createTarget());
    }
    const expected = new Set<number>();
    const check = async () => {
      const ids = [...expected].sort((a, b) => a - b);
      assert.deepEqual(await targetsInGroup(group.id), { ids, total: ids.length });
      const fetched = (await getGroup(group.id)).json() as Group;
      assert.deepEqual(fetched.target_ids, ids);
      assert.equal(fetched.target_count, ids.length);
    };
    await check();
    for (const target of targets) {
      await add(group.id, target.id);
      expected.add(target.id);
    }
    await check();
    await remove(group.id, targets[1]?.id as number);
    expected.delete(targets[1]?.id as number);
    await check();
    await ctx.request({ method: 'DELETE', url: `/targets/${targets[2]?.id}`, token: ctx.adminToken });
    expected.delete(targets[2]?.id as number);
    await check();
    const paged = (await ctx.request({ method: 'GET', url: `/targets?group_id=${group.id}&limit=1&page=2`, token: ctx.adminToken })).json();
    assert.equal(paged.total, 2);
    assert.equal(paged.targets.length, 1);
  });

  test('every change is audited with the actor', async () => {
    const group = await createGroup({}, operator.token);
    const target = await createTarget();
    await ctx.request({ method: 'PUT', url: `/target-groups/${group.id}`, token: operator.token, payload: { description: 'audited' } });
    await add(group.id, target.id, operator.token);
    await add(group.id, target.id, operator.token);
    await remove(group.id, target.id, operator.token);
    await ctx.request({ method: 'DELETE', url: `/target-groups/${group.id}`, token: operator.token });

    const created = await auditFor('target_group.create', group.id);
    assert.equal(created.length, 1);
    assert.equal(created[0]?.actor_id, operator.id);
    assert.equal(created[0]?.details.name, group.name);
    const updated = await auditFor('target_group.update', group.id);
    assert.equal(updated.length, 1);
    assert.deepEqual(updated[0]?.details.fields, ['description']);
    const added = await auditFor('target_group.add_target', group.id);
    assert.equal(added.length, 1, 'adding twice records one add_target');
    assert.equal(added[0]?.details.target_id, target.id);
    const removed = await auditFor('target_group.remove_target', group.id);
    assert.equal(removed.length, 1);
    assert.equal(removed[0]?.details.target_id, target.id);
    const deleted = await auditFor('target_group.delete', group.id);
    assert.equal(deleted.length, 1);
    assert.equal(deleted[0]?.actor_id, operator.id);
  });

  test('viewers read (200) but every write is 403; operators may write', async () => {
    const group = await createGroup();
    const target = await createTarget();
    assert.equal((await ctx.request({ method: 'GET', url: '/target-groups', token: viewer.token })).statusCode, 200);
    assert.equal((await getGroup(group.id, viewer.token)).statusCode, 200);
    assertError(await ctx.request({ method: 'POST', url: '/target-groups', token: viewer.token, payload: { name: unique() } }), 403, 'permission_error');
    assertError(await ctx.request({ method: 'PUT', url: `/target-groups/${group.id}`, token: viewer.token, payload: { description: 'x' } }), 403, 'permission_error');
    assertError(await ctx.request({ method: 'DELETE', url: `/target-groups/${group.id}`, token: viewer.token }), 403, 'permission_error');
    assertError(await add(group.id, target.id, viewer.token), 403, 'permission_error');
    assertError(await remove(group.id, target.id, viewer.token), 403, 'permission_error');
    assert.deepEqual((await getGroup(group.id)).json(), group);

    const byOperator = await createGroup({}, operator.token);
    assert.equal((await add(byOperator.id, target.id, operator.token)).statusCode, 200);
    assert.equal((await remove(byOperator.id, target.id, operator.token)).statusCode, 200);
    assert.equal((await ctx.request({ method: 'PUT', url: `/target-groups/${byOperator.id}`, token: operator.token, payload: { description: 'op' } })).statusCode, 200);
    assert.equal((await ctx.request({ method: 'DELETE', url: `/target-groups/${byOperator.id}`, token: operator.token })).statusCode, 200);
    assertError(await ctx.request({ method: 'GET', url: '/target-groups' }), 401, 'auth_error');
  });
});
