import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';


import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const MAX_UPLOAD = 64 * 1024;
const OUTSIDE_SECRET = `outside-the-store-${randomBytes(8).toString('hex')}`;

/** Every file below `dir` (relative paths), including hidden temp files. */
function filesOnDisk(dir: string): string[] {
  if (!existsSync(dir)) {
    return [];
  }
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe('file store (/files)', () => {
  let ctx: TestContext;
  let root: string;
  let operator: { token: string };
  let viewer: { token: string };

  const put = (path: string, payload: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/octet-stream' }, token = operator.token) =>
    ctx.request({ method: 'PUT', url: `/files/${path}`, token, payload, headers });
  const get = (path: string, token = operator.token) => ctx.request({ method: 'GET', url: `/files/${path}`, token });
  const del = (path: string, token = operator.token) => ctx.request({ method: 'DELETE', url: `/files/${path}`, token });
  const list = async () => {
    const res = await ctx.request({ method: 'GET', url: '/files', token: operator.token });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as { files: Array<{ path: string; size: number; modified_at: string }>; total: number };
  };

  before(async () => {
    ctx = await createTestContext({ env: { OPSCONDUCTOR_MAX_UPLOAD_BYTES: String(MAX_UPLOAD) } });
    root = ctx.deps.files.root;
    operator = await ctx.createUser('operator');
    viewer = await ctx.createUser('viewer');
    // a secret right next to the store, and one a level higher: neither may ever be served
    mkdirSync(root, { recursive: true });
    writeFileSync(join(dirname(root), 'secret.txt'), OUTSIDE_SECRET);
    writeFileSync(join(ctx.dataDir, 'top-secret.txt'), OUTSIDE_SECRET);
  });
  after(async () => {
    await ctx?.close();
  });

  test('PUT stores the raw bytes and answers {path, size, modified_at}; GET returns them', async () => {
    const bytes = randomBytes(5000);
    const res = await put('bin/blob.bin', bytes);
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), ['modified_at', 'path', 'size']);
    assert.equal(body.path, 'bin/blob.bin');
    assert.equal(body.size, 5000);
    assert.match(body.modified_at, ISO_UTC);
    assert.deepEqual(readFileSync(join(root, 'bin/blob.bin')), bytes, 'stored on disk inside the store');

    const got = await get('bin/blob.bin');
    assert.equal(got.statusCode, 200);
    assert.equal(got.headers['content-type'], 'application/octet-stream');
    assert.equal(Number(got.headers['content-length']), 5000);
    assert.deepEqual(got.rawPayload, bytes);
  });

  test('any content type is taken as raw bytes (JSON is not parsed, text not re-encoded)', async () => {
    const cases: Array<[string, string | undefined, string]> = [
      ['ct/data.json', 'application/json', '{"not": "parsed",   "spacing": "kept"}'],
      ['ct/readme.txt', 'text/plain; charset=utf-8', 'héllo wörld\r\n'],
      ['ct/form.txt', 'application/x-www-form-urlencoded', 'a=1&b=2'],
      ['ct/script.sh', 'application/x-sh', '#!/bin/sh\necho hi\n'],
      ['ct/none.txt', undefined, 'no content type at all'],
    ];
    for (const [path, type, text] of cases) {
      const res = await ctx.request({ method: 'PUT', url: `/files/${path}`, token: operator.token, payload: text, headers: type ? { 'content-type': type } : {} });
      assert.equal(res.statusCode, 200, `${path}: ${res.body}`);
      assert.equal(res.json().size, Buffer.byteLength(text), path);
      assert.equal((await get(path)).body, text, path);
    }
  });

  test('an empty file can be stored', async () => {
    const res = await put('empty.txt', '');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().size, 0);
    const got = await get('empty.txt');
    assert.equal(got.statusCode, 200);
    assert.equal(got.body, '');
  });

  test('PUT replaces an existing file', async () => {
    assert.equal((await put('replace/me.txt', 'the first version, which is longer')).statusCode, 200);
    const res = await put('replace/me.txt', 'v2');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().size, 2);
    assert.equal((await get('replace/me.txt')).body, 'v2');
    assert.equal((await list()).files.filter((f) => f.path === 'replace/me.txt').length, 1);
    assert.deepEqual(filesOnDisk(join(root, 'replace')), ['me.txt'], 'no temp file left behind');
  });

  test('GET /files lists every file with path, size and modified_at, sorted by path', async () => {
    const dir = unique('lst');
    await put(`${dir}/b.txt`, 'bb');
    await put(`${dir}/a/deep/c.txt`, 'ccc');
    await put(`${dir}/a.txt`, 'a');
    const { files, total } = await list();
    assert.equal(total, files.length);
    const mine = files.filter((f) => f.path.startsWith(`${dir}/`));
    assert.deepEqual(
      mine.map((f) => [f.path, f.size]),
      [
        [`${dir}/a.txt`, 1],
        [`${dir}/a/deep/c.txt`, 3],
        [`${dir}/b.txt`, 2],
      ],
    );
    for (const f of mine) {
      assert.match(f.modified_at, ISO_UTC);
      assert.deepEqual(Object.keys(f).sort(), ['modified_at', 'path', 'size']);
    }
    const paths = files.map((f) => f.path);
    assert.deepEqual(paths, [...paths].sort((a, b) => a.localeCompare(b)));
    assert.ok(!paths.some((p) => p.includes('secret')), 'nothing outside the store is listed');
  });

  test('DELETE removes a file; deleting or getting a missing file is 404', async () => {
    await put('del/gone.txt', 'bye');
    const res = await del('del/gone.txt');
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(typeof res.json().message, 'string');
    assert.equal(existsSync(join(root, 'del/gone.txt')), false);
    assertError(await get('del/gone.txt'), 404, 'not_found');
    assertError(await del('del/gone.txt'), 404, 'not_found');
    assert.ok(!(await list()).files.some((f) => f.path === 'del/gone.txt'));
  });

  test('a directory is not a file: GET and DELETE of it are 404 and it survives', async () => {
    await put('adir/inner.txt', 'x');
    assertError(await get('adir'), 404, 'not_found');
    assertError(await del('adir'), 404, 'not_found');
    assert.equal((await get('adir/inner.txt')).body, 'x');
  });

  // BUG (src/modules/files/files.service.ts put): filesystem errors from mkdir/rename (EISDIR,
  // ENOTDIR, ENAMETOOLONG) escape as 500 internal_error instead of a 4xx naming the path.
  test('a PUT that cannot be stored at that path is a client error, not a 500', async () => {
    await put('clash/file.txt', 'x');
    for (const path of ['clash', 'clash/file.txt/child', 'clash/', 'a'.repeat(300)]) {
      const res = await put(path, 'y');
      assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${path}: ${res.statusCode} ${res.body}`);
      assert.equal(res.json().error.field, 'path', res.body);
    }
    assert.equal((await get('clash/file.txt')).body, 'x');
  });

  test('uploads are audited with the path and size', async () => {
    await put('audited.txt', '12345');
    await del('audited.txt');
    const rows = await ctx.deps.db.selectFrom('audit_log').select(['action', 'details']).where('resource_type', '=', 'file').where('resource_id', '=', 'audited.txt').orderBy('id').execute();
    assert.deepEqual(
      rows.map((r) => r.action),
      ['file.put', 'file.delete'],
    );
    assert.equal((rows[0]?.details as { size: number }).size, 5);
  });

  // BUG (src/modules/files/files.service.ts put): the temp name `.upload-${pid}-${Date.now()}` is
  // shared by uploads into one directory within the same millisecond: one upload's bytes land in
  // another's file (f1.txt gets f2.txt's content) and the losers' rename fails with ENOENT → 500.
  test('concurrent uploads into one directory each keep their own content', async () => {
    const dir = unique('conc');
    const bodies = Array.from({ length: 12 }, (_, i) => `file ${i} `.repeat(200 + i));
    const results = await Promise.all(bodies.map((body, i) => put(`${dir}/f${i}.txt`, body)));
    results.forEach((res, i) => assert.equal(res.statusCode, 200, `upload ${i}: ${res.body}`));
    for (const [i, body] of bodies.entries()) {
      assert.equal((await get(`${dir}/f${i}.txt`)).body, body, `f${i}.txt has its own content`);
    }
    assert.deepEqual(filesOnDisk(join(root, dir)), bodies.map((_, i) => `f${i}.txt`).sort(), 'no temp file left behind');
  });

  test('concurrent uploads to one path leave one complete version', async () => {
    const bodies = Array.from({ length: 8 }, (_, i) => String(i).repeat(3000 + i));
    const results = await Promise.all(bodies.map((body) => put('race/same.txt', body)));
    results.forEach((res, i) => assert.equal(res.statusCode, 200, `upload ${i}: ${res.body}`));
    assert.ok(bodies.includes((await get('race/same.txt')).body), 'the file is exactly one of the uploads');
    assert.deepEqual(filesOnDisk(join(root, 'race')), ['same.txt']);
  });

  describe('size cap (OPSCONDUCTOR_MAX_UPLOAD_BYTES)', () => {
    test('exactly the cap is accepted', async () => {
      const res = await put('cap/exact.bin', randomBytes(MAX_UPLOAD));
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().size, MAX_UPLOAD);
    });

    test('one byte over is 413 payload_too_large and leaves no file (nor temp file) behind', async () => {
      const res = await put('cap/over.bin', randomBytes(MAX_UPLOAD + 1));
      assertError(res, 413, 'payload_too_large');
      assert.equal(existsSync(join(root, 'cap/over.bin')), false);
      assert.deepEqual(filesOnDisk(join(root, 'cap')), ['exact.bin'], 'no partial or temp file');
      assertError(await get('cap/over.bin'), 404, 'not_found');
      assert.ok(!(await list()).files.some((f) => f.path === 'cap/over.bin'));
    });

    test('a large upload over the cap is refused too (streamed, not buffered whole)', async () => {
      const res = await put('cap/huge.bin', Buffer.alloc(MAX_UPLOAD * 20, 1), { 'content-type': 'application/json' });
      assertError(res, 413, 'payload_too_large');
      assert.equal(existsSync(join(root, 'cap/huge.bin')), false);
    });

    test('an oversized replacement keeps the old file intact', async () => {
      assert.equal((await put('cap/keep.txt', 'original')).statusCode, 200);
      assertError(await put('cap/keep.txt', randomBytes(MAX_UPLOAD + 10)), 413, 'payload_too_large');
      assert.equal((await get('cap/keep.txt')).body, 'original');
      assert.deepEqual(filesOnDisk(join(root, 'cap')), ['exact.bin', 'keep.txt']);
    });
  });

  describe('path confinement', () => {
    const traversals = [
      '..%2Fsecret.txt',
      '..%2F..%2Ftop-secret.txt',
      'a%2F..%2F..%2Fsecret.txt',
      'a/..%2F..%2Fsecret.txt',
      '%2E%2E/secret.txt',
      '%2e%2e%2fsecret.txt',
      '%2Fetc%2Fpasswd',
      '%2F%2Fetc%2Fpasswd',
      '..%5Csecret.txt',
      'C:%5Cwindows%5Cwin.ini',
      'a%00b',
      '.',
      '..',
    ];

    test('GET never reads outside the store: traversal and absolute paths are 400 or 404', async () => {
      for (const path of traversals) {
        const res = await get(path);
        assert.ok([400, 404].includes(res.statusCode), `${path}: ${res.statusCode} ${res.body}`);
        assert.ok(!res.body.includes(OUTSIDE_SECRET), `${path} leaked a file outside the store`);
        assert.ok(!res.body.includes('root:x:0:0'), `${path} leaked /etc/passwd`);
      }
      // the raw (unencoded) forms too, as a client that does not normalise would send them
      for (const url of ['/files/../secret.txt', '/files/a/../../secret.txt', '/files//etc/passwd', '/files/./../secret.txt']) {
        const res = await ctx.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${operator.token}` } });
        assert.ok([400, 404].includes(res.statusCode), `${url}: ${res.statusCode} ${res.body}`);
        assert.ok(!res.body.includes(OUTSIDE_SECRET) && !res.body.includes('root:x:0:0'), `${url} leaked`);
      }
    });

    test('the confinement error names the path', async () => {
      assertError(await get('..%2Fsecret.txt'), 400, 'validation_error', 'path');
      assertError(await get('%2Fetc%2Fpasswd'), 400, 'validation_error', 'path');
    });

    test('PUT never writes outside the store', async () => {
      const marker = `written-${randomBytes(4).toString('hex')}`;
      for (const path of ['..%2Fescaped.txt', 'a%2F..%2F..%2Fescaped.txt', '%2Ftmp%2Foc-escaped.txt', '..%5Cescaped.txt']) {
        const res = await put(path, marker);
        assert.ok([400, 404].includes(res.statusCode), `${path}: ${res.statusCode} ${res.body}`);
      }
      assert.equal(existsSync(join(dirname(root), 'escaped.txt')), false);
      assert.equal(existsSync('/tmp/oc-escaped.txt'), false);
      assert.equal(readFileSync(join(dirname(root), 'secret.txt'), 'utf8'), OUTSIDE_SECRET);
    });

    test('DELETE never removes outside the store', async () => {
      for (const path of ['..%2Fsecret.txt', '..%2F..%2Ftop-secret.txt', '%2Ftmp%2Fnothing']) {
        const res = await del(path);
        assert.ok([400, 404].includes(res.statusCode), `${path}: ${res.statusCode} ${res.body}`);
      }
      assert.equal(readFileSync(join(dirname(root), 'secret.txt'), 'utf8'), OUTSIDE_SECRET);
      assert.equal(readFileSync(join(ctx.dataDir, 'top-secret.txt'), 'utf8'), OUTSIDE_SECRET);
    });

    test('a path that only looks like traversal but stays inside works', async () => {
      assert.equal((await put('in%2F..%2Fside.txt', 'fine')).statusCode, 200);
      assert.equal((await get('side.txt')).body, 'fine');
      assert.equal((await put('dir.with..dots%2Fa..b.txt', 'dots')).statusCode, 200);
      assert.equal((await get('dir.with..dots/a..b.txt')).body, 'dots');
    });

    // BUG (src/shared/safe-path.ts resolveInside): `rel.startsWith('..')` also refuses names that
    // merely begin with two dots, such as "..side.txt" or "..hidden/x", which stay inside the store.
    test('a file name that starts with ".." is just a name', async () => {
      assert.equal((await put('..side.txt', 'dots')).statusCode, 200);
      assert.equal((await get('..side.txt')).body, 'dots');
    });
  });

  describe('access', () => {
    test('viewers get 403 on every /files route', async () => {
      await put('acl.txt', 'operators only');
      assertError(await ctx.request({ method: 'GET', url: '/files', token: viewer.token }), 403, 'permission_error');
      assertError(await get('acl.txt', viewer.token), 403, 'permission_error');
      assertError(await put('acl.txt', 'overwritten', undefined, viewer.token), 403, 'permission_error');
      assertError(await put('viewer-new.txt', 'x', undefined, viewer.token), 403, 'permission_error');
      assertError(await del('acl.txt', viewer.token), 403, 'permission_error');
      assert.equal((await get('acl.txt')).body, 'operators only');
      assert.equal(existsSync(join(root, 'viewer-new.txt')), false);
    });

    test('no token is 401 on every /files route', async () => {
      assertError(await ctx.request({ method: 'GET', url: '/files' }), 401, 'auth_error');
      assertError(await ctx.request({ method: 'GET', url: '/files/acl.txt' }), 401, 'auth_error');
      assertError(await ctx.request({ method: 'PUT', url: '/files/anon.txt', payload: 'x', headers: { 'content-type': 'text/plain' } }), 401, 'auth_error');
      assertError(await ctx.request({ method: 'DELETE', url: '/files/acl.txt' }), 401, 'auth_error');
      assert.equal(existsSync(join(root, 'anon.txt')), false);
      assert.equal((await get('acl.txt')).body, 'operators only');
    });

    test('admins have operator rights', async () => {
      const res = await put('admin.txt', 'by admin', undefined, ctx.adminToken);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal((await get('admin.txt', ctx.adminToken)).body, 'by admin');
      assert.equal((await del('admin.txt', ctx.adminToken)).statusCode, 200);
    });
  });
});
