import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { TARGET_KEYS, targetsFixture } from './targets.fixtures.ts';

describe('targets', () => {
  const { ctx, setup, close, get, list, create, names } = targetsFixture();
  before(setup);
  after(close);

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
});
