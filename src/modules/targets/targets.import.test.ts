import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import type { LightMyRequestResponse } from 'fastify';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import type { Target } from './targets.fixtures.ts';

interface Report {
  created: number;
  skipped: number;
  errors: Array<{ line: number; message: string; field?: string }>;
  target_ids: number[];
}

interface Group {
  id: number;
  name: string;
  target_ids: number[];
  target_count: number;
}

const HEADER = 'name,host,os_type,protocol,port,tags,group';

describe('bulk target import', () => {
  let ctx: TestContext;
  let operator: { id: number; token: string };
  let viewer: { id: number; token: string };
  let apiToken: number;
  let sshCred: number;

  before(async () => {
    ctx = await createTestContext();
    operator = await ctx.createUser('operator');
    viewer = await ctx.createUser('viewer');
    const token = await ctx.request({ method: 'POST', url: '/credentials', token: ctx.adminToken, payload: { name: unique('tok-'), type: 'api_token', token: 't' } });
    assert.equal(token.statusCode, 200, token.body);
    apiToken = token.json().id;
    const ssh = await ctx.request({ method: 'POST', url: '/credentials', token: ctx.adminToken, payload: { name: unique('ssh-'), type: 'password', username: 'u', password: 'p' } });
    assert.equal(ssh.statusCode, 200, ssh.body);
    sshCred = ssh.json().id;
  });
  after(() => ctx.close());

  const importJson = (payload: unknown, token = ctx.adminToken) => ctx.request({ method: 'POST', url: '/targets/import', token, payload: payload as object });
  const importCsv = (text: string, token = ctx.adminToken) =>
    ctx.request({ method: 'POST', url: '/targets/import', token, headers: { 'content-type': 'text/csv' }, payload: text });
  const report = (res: LightMyRequestResponse): Report => {
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as Report;
    assert.deepEqual(Object.keys(body).sort(), ['created', 'errors', 'skipped', 'target_ids']);
    return body;
  };
  const byName = async (name: string): Promise<Target | undefined> => {
    const res = await ctx.request({ method: 'GET', url: `/targets?search=${encodeURIComponent(name)}&limit=200`, token: ctx.adminToken });
    assert.equal(res.statusCode, 200, res.body);
    return (res.json().targets as Target[]).find((t) => t.name === name);
  };
  const groupByName = async (name: string): Promise<Group | undefined> => {
    const res = await ctx.request({ method: 'GET', url: `/target-groups?search=${encodeURIComponent(name)}&limit=200`, token: ctx.adminToken });
    assert.equal(res.statusCode, 200, res.body);
    return (res.json().groups as Group[]).find((g) => g.name.toLowerCase() === name.toLowerCase());
  };
  const row = (overrides: Record<string, unknown> = {}) => ({ name: unique('imp-'), host: '10.2.0.1', os_type: 'linux', protocol: 'ssh', ...overrides });

  describe('JSON', () => {
    test('valid rows are created with defaults and their ids reported in order', async () => {
      const rows = [
        row({ host: 'app-1.example.com', tags: ['web'] }),
        row({ protocol: 'winrm', os_type: 'windows', use_tls: true }),
        row({ protocol: 'http', os_type: 'network', port: 8443, credential_id: apiToken, description: 'switch' }),
      ];
      const body = report(await importJson(rows));
      assert.equal(body.created, 3);
      assert.equal(body.skipped, 0);
      assert.deepEqual(body.errors, []);
      assert.equal(body.target_ids.length, 3);
      const created = await Promise.all(rows.map((r) => byName(r.name)));
      assert.deepEqual(
        created.map((t) => t?.id),
        body.target_ids,
      );
      assert.equal(created[0]?.host, 'app-1.example.com');
      assert.equal(created[0]?.port, 22);
      assert.deepEqual(created[0]?.tags, ['web']);
      assert.equal(created[1]?.port, 5986);
      assert.equal(created[1]?.use_tls, true);
      assert.equal(created[2]?.port, 8443);
      assert.equal(created[2]?.credential_id, apiToken);
      assert.equal(created[2]?.description, 'switch');
    });

    test('invalid rows are reported by index+1 with the field; valid rows around them are created', async () => {
      const good1 = row();
      const good2 = row();
      const rows = [
        good1,
        row({ host: 'not a host' }),
        { host: '10.0.0.1', os_type: 'linux', protocol: 'ssh' },
        row({ protocol: 'ssh', use_tls: true }),
        row({ port: 70000 }),
        row({ os: 'linux' }),
        good2,
        row({ os_type: 'Linux' }),
        42,
      ];
      const body = report(await importJson(rows));
      assert.equal(body.created, 2);
      assert.equal(body.skipped, 0);
      assert.deepEqual(
        body.errors.map((e) => [e.line, e.field]),
        [
          [2, 'host'],
          [3, 'name'],
          [4, 'use_tls'],
          [5, 'port'],
          [6, 'os'],
          [8, 'os_type'],
          [9, 'row'],
        ],
      );
      for (const error of body.errors) {
        assert.equal(typeof error.message, 'string');
        assert.ok(error.message.length > 0);
      }
      assert.ok(await byName(good1.name));
      assert.ok(await byName(good2.name));
      for (const bad of rows.slice(1, 6)) {
        const name = (bad as { name?: string }).name;
        if (name) {
          assert.equal(await byName(name), undefined, `${name} must not exist`);
        }
      }
    });

    test('rows whose name already exists (any case, or earlier in the same import) are skipped', async () => {
      const existing = row();
      report(await importJson([existing]));
      const before = await byName(existing.name);
      const again = row();
      const body = report(await importJson([{ ...existing, name: existing.name.toUpperCase(), host: '10.9.9.9' }, again, { ...again, host: '10.8.8.8' }]));
      assert.equal(body.created, 1);
      assert.equal(body.skipped, 2);
      assert.deepEqual(body.errors, []);
      assert.equal((await byName(existing.name))?.host, before?.host);
      assert.equal((await byName(again.name))?.host, '10.2.0.1');
    });

    test('group is created if missing, reused if present (any case), and membership set', async () => {
      const groupName = unique('imp-grp-');
      const rows = [row({ group: groupName }), row({ group: groupName }), row()];
      const body = report(await importJson(rows));
      assert.equal(body.created, 3);
      const group = await groupByName(groupName);
      assert.ok(group, 'group created');
      assert.equal(group.name, groupName);
      assert.deepEqual(group.target_ids, body.target_ids.slice(0, 2).sort((a, b) => a - b));
      assert.deepEqual((await byName(rows[0]?.name as string))?.group_ids, [group.id]);
      assert.deepEqual((await byName(rows[2]?.name as string))?.group_ids, []);

      const more = report(await importJson([row({ group: groupName.toUpperCase() })]));
      assert.equal(more.created, 1);
      const list = (await ctx.request({ method: 'GET', url: `/target-groups?search=${encodeURIComponent(groupName)}`, token: ctx.adminToken })).json();
      assert.equal(list.total, 1, 'no second group with another case');
      assert.equal((await groupByName(groupName))?.target_count, 3);
    });

    test('a row with an unknown credential fails alone and creates nothing (no target, no group)', async () => {
      const groupName = unique('ghost-grp-');
      const ok = row({ credential_id: sshCred });
      const bad = row({ credential_id: 999_999, group: groupName });
      const misfit = row({ protocol: 'ssh', credential_id: apiToken, group: groupName });
      const body = report(await importJson([ok, bad, misfit]));
      assert.equal(body.created, 1);
      assert.deepEqual(
        body.errors.map((e) => [e.line, e.field]),
        [
          [2, 'credential_id'],
          [3, 'credential_id'],
        ],
      );
      assert.equal((await byName(ok.name))?.credential_id, sshCred);
      assert.equal(await byName(bad.name), undefined);
      assert.equal(await byName(misfit.name), undefined);
      assert.equal(await groupByName(groupName), undefined, 'the failed rows created no group');
    });

    test('an empty array imports nothing', async () => {
      assert.deepEqual(report(await importJson([])), { created: 0, skipped: 0, errors: [], target_ids: [] });
    });

    test('imports are audited as target.create by the importing user', async () => {
      const body = report(await importJson([row()], operator.token));
      const id = body.target_ids[0];
      const res = await ctx.request({ method: 'GET', url: '/audit?action=target.create&limit=200', token: ctx.adminToken });
      const entries = (res.json().entries as Array<{ resource_id: string; actor_id: number; details: Record<string, unknown> }>).filter((e) => e.resource_id === String(id));
      assert.equal(entries.length, 1);
      assert.equal(entries[0]?.actor_id, operator.id);
      assert.equal(entries[0]?.details.imported, true);
    });
  });

  describe('CSV', () => {
    test('a row with more fields than the header is that row\'s error, not silently truncated', async () => {
      const [ok, shifted] = [unique('csv-'), unique('csv-')];
      const text = [HEADER, `${ok},10.9.0.1,linux,ssh,22,,`, `${shifted},10.9.0.2,linux,ssh,22,,,unquoted, comma`].join('\n');
      const body = report(await importCsv(text));
      assert.equal(body.created, 1);
      assert.equal(body.errors.length, 1);
      assert.equal(body.errors[0]?.line, 3);
      assert.match(body.errors[0]?.field ?? '', /^column_\d+$/);
      assert.equal(await byName(shifted), undefined);
    });

    test('header row, quoted fields with commas, tags split on ; or spaces, CRLF line ends, group membership', async () => {
      const [n1, n2, n3] = [unique('csv-'), unique('csv-'), unique('csv-')];
      const groupName = unique('csv-grp-');
      const text = [
        `${HEADER},description`,
        `${n1},web-1.example.com,linux,ssh,2222,web;prod,${groupName},"Web, primary"`,
        `${n2},10.3.0.2,windows,winrm,,"db prod  eu",${groupName},"He said ""hi"""`,
        `"${n3}",2001:db8::9,network,http,,,,`,
        '',
      ].join('\r\n');
      const body = report(await importCsv(text));
      assert.deepEqual(body.errors, []);
      assert.equal(body.created, 3);
      const [t1, t2, t3] = [await byName(n1), await byName(n2), await byName(n3)];
      assert.equal(t1?.host, 'web-1.example.com');
      assert.equal(t1?.port, 2222);
      assert.deepEqual(t1?.tags, ['web', 'prod']);
      assert.equal(t1?.description, 'Web, primary');
      assert.equal(t2?.os_type, 'windows');
      assert.equal(t2?.port, 5985);
      assert.deepEqual(t2?.tags, ['db', 'prod', 'eu']);
      assert.equal(t2?.description, 'He said "hi"');
      assert.equal(t3?.host, '2001:db8::9');
      assert.equal(t3?.port, 80);
      assert.deepEqual(t3?.tags, []);
      assert.deepEqual(t3?.group_ids, []);
      const group = await groupByName(groupName);
      assert.ok(group);
      assert.deepEqual(group.target_ids, [t1?.id, t2?.id].sort((a, b) => (a ?? 0) - (b ?? 0)));
      assert.deepEqual(body.target_ids, [t1?.id, t2?.id, t3?.id]);
    });

    test('optional use_tls and credential_id columns, in any order and case', async () => {
      const name = unique('csv-tls-');
      const text = `Protocol,NAME,host,os_type,use_tls,credential_id\nhttp,${name},api.example.com,other,true,${apiToken}\n`;
      const body = report(await importCsv(text));
      assert.deepEqual(body.errors, []);
      const target = await byName(name);
      assert.equal(target?.use_tls, true);
      assert.equal(target?.port, 443);
      assert.equal(target?.credential_id, apiToken);
    });

    test('errors are reported by file line (header = 1, quoted newlines and blank lines counted) with the field', async () => {
      const good = unique('csv-ok-');
      const skippedName = unique('csv-exists-');
      report(await importJson([row({ name: skippedName })]));
      const lines = [
        HEADER, // 1
        `${unique('csv-')},bad host!,linux,ssh,,,`, // 2
        `${good},10.4.0.1,linux,ssh,,"multi`, // 3: tags field spans lines 3-4
        `line",`, // 4
        '', // 5 (blank)
        `${unique('csv-')},10.4.0.2,solaris,ssh,,,`, // 6
        `${unique('csv-')},10.4.0.3,linux,ssh,abc,,`, // 7
        `,10.4.0.4,linux,ssh,,,`, // 8
        `${skippedName},10.4.0.5,linux,ssh,,,`, // 9
        `${unique('csv-')},10.4.0.6,linux,ssh,0,,`, // 10
        `${unique('csv-')},10.4.0.7,linux,telnet,,,`, // 11
        `${unique('csv-')},10.4.0.8,linux,ssh,,bad!tag,`, // 12
      ];
      const body = report(await importCsv(lines.join('\n')));
      assert.equal(body.created, 1);
      assert.equal(body.skipped, 1);
      assert.deepEqual(
        body.errors.map((e) => [e.line, e.field]),
        [
          [2, 'host'],
          [6, 'os_type'],
          [7, 'port'],
          [8, 'name'],
          [10, 'port'],
          [11, 'protocol'],
          [12, 'tags.0'],
        ],
      );
      const created = await byName(good);
      assert.deepEqual(created?.tags, ['multi', 'line']);
    });

    test('a CSV row with an unknown credential creates neither target nor group', async () => {
      const groupName = unique('csv-ghost-');
      const name = unique('csv-cred-');
      const body = report(await importCsv(`${HEADER},credential_id\n${name},10.5.0.1,linux,ssh,,,${groupName},424242\n`));
      assert.equal(body.created, 0);
      assert.deepEqual(
        body.errors.map((e) => [e.line, e.field]),
        [[2, 'credential_id']],
      );
      assert.equal(await byName(name), undefined);
      assert.equal(await groupByName(groupName), undefined);
    });

    test('an unknown column is a 400 naming it and imports nothing', async () => {
      const name = unique('csv-col-');
      const res = await importCsv(`name,host,os_type,protocol,colour\n${name},10.6.0.1,linux,ssh,red\n`);
      assertError(res, 400, 'validation_error');
      assert.match(res.json().error.message, /colour/);
      assert.equal(await byName(name), undefined);
    });

    test('an empty CSV or an unterminated quote is a 400', async () => {
      assertError(await importCsv(''), 400, 'validation_error');
      assertError(await importCsv('\r\n\n'), 400, 'validation_error', 'body');
      const res = await importCsv(`${HEADER}\n"unterminated,10.0.0.1,linux,ssh,,,\n`);
      assertError(res, 400, 'validation_error', 'body');
      assert.match(res.json().error.message, /line 2/);
    });

    test('a header-only CSV imports nothing', async () => {
      assert.deepEqual(report(await importCsv(`${HEADER}\r\n`)), { created: 0, skipped: 0, errors: [], target_ids: [] });
    });
  });

  describe('request checks', () => {
    test('a JSON object, number or null body is a 400', async () => {
      assertError(await importJson(row()), 400, 'validation_error');
      assertError(await importJson({ targets: [row()] }), 400, 'validation_error');
      assertError(await ctx.request({ method: 'POST', url: '/targets/import', token: ctx.adminToken, headers: { 'content-type': 'application/json' }, payload: '42' }), 400, 'validation_error');
      assertError(await ctx.request({ method: 'POST', url: '/targets/import', token: ctx.adminToken, headers: { 'content-type': 'application/json' }, payload: 'null' }), 400, 'validation_error');
      assertError(await ctx.request({ method: 'POST', url: '/targets/import', token: ctx.adminToken, headers: { 'content-type': 'application/json' }, payload: '[{' }), 400, 'validation_error');
    });

    test('viewers get 403 (JSON and CSV) and nothing is created; operators may import', async () => {
      const name = unique('viewer-');
      assertError(await importJson([row({ name })], viewer.token), 403, 'permission_error');
      assertError(await importCsv(`${HEADER}\n${name},10.7.0.1,linux,ssh,,,\n`, viewer.token), 403, 'permission_error');
      assert.equal(await byName(name), undefined);
      const byOperator = report(await importJson([row({ name })], operator.token));
      assert.equal(byOperator.created, 1);
      assert.equal((await byName(name))?.id, byOperator.target_ids[0]);
    });
  });
});
