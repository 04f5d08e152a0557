import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { assertUserShape, newUser, type UserBody, usersApp } from './users.fixtures.ts';

describe('users service', () => {
  const app = usersApp();
  const { create, list } = app;

  test('GET /users returns users, total, page and limit (defaults 1 and 20), ordered by id', async () => {
    const { adminId } = app;
    await create(newUser());
    const res = await list('');
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), ['limit', 'page', 'total', 'users']);
    assert.equal(body.page, 1);
    assert.equal(body.limit, 20);
    assert.ok(body.total >= 2);
    assert.equal(body.users.length, Math.min(body.total, 20));
    const ids = body.users.map((u: UserBody) => u.id);
    assert.deepEqual(ids, [...ids].sort((a: number, b: number) => a - b));
    assert.equal(body.users[0].id, adminId);
    body.users.forEach(assertUserShape);
  });

  test('paging walks a filtered list in stable id order without overlap', async () => {
    const tag = unique('page');
    const created: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await create(newUser(`${tag}-${i}`));
      created.push(res.json().id);
    }
    const seen: number[] = [];
    for (const page of [1, 2, 3]) {
      const res = await list(`?search=${tag}&page=${page}&limit=2`);
      assert.equal(res.statusCode, 200);
      const body = res.json();
      assert.equal(body.total, 5);
      assert.equal(body.page, page);
      assert.equal(body.limit, 2);
      assert.equal(body.users.length, page < 3 ? 2 : 1);
      seen.push(...body.users.map((u: UserBody) => u.id));
    }
    assert.deepEqual(seen, created);
    const beyond = await list(`?search=${tag}&page=4&limit=2`);
    assert.equal(beyond.statusCode, 200);
    assert.deepEqual(beyond.json().users, []);
    assert.equal(beyond.json().total, 5);
    // Same query twice gives the same page.
    const again = await list(`?search=${tag}&page=2&limit=2`);
    assert.deepEqual(again.json().users.map((u: UserBody) => u.id), created.slice(2, 4));
  });

  test('search matches substrings of username or email, case-insensitively', async () => {
    const tag = unique('srch');
    const byName = await create({ ...newUser(`Alpha${tag}Name`), email: `${unique('x')}@example.test` });
    const byEmail = await create({ ...newUser(unique('plain')), email: `Beta${tag}Mail@Example.test` });
    assert.equal(byName.statusCode, 200);
    assert.equal(byEmail.statusCode, 200);

    const both = await list(`?search=${tag.toUpperCase()}`);
    assert.equal(both.statusCode, 200);
    assert.deepEqual(both.json().users.map((u: UserBody) => u.id), [byName.json().id, byEmail.json().id]);
    assert.equal(both.json().total, 2);

    const nameOnly = await list(`?search=${encodeURIComponent(`alpha${tag}`.toUpperCase())}`);
    assert.deepEqual(nameOnly.json().users.map((u: UserBody) => u.id), [byName.json().id]);
    const emailOnly = await list(`?search=${encodeURIComponent(`${tag}mail@example`)}`);
    assert.deepEqual(emailOnly.json().users.map((u: UserBody) => u.id), [byEmail.json().id]);
    const none = await list(`?search=${unique('nomatch')}`);
    assert.equal(none.json().total, 0);
    assert.deepEqual(none.json().users, []);
  });

  test('search treats % and _ literally', async () => {
    const tag = unique('lit');
    const underscore = await create(newUser(`${tag}_x`));
    const letter = await create(newUser(`${tag}ax`));
    const percent = await create({ ...newUser(unique('pc')), email: `${tag}%z@example.test` });
    const plain = await create({ ...newUser(unique('pc')), email: `${tag}zz@example.test` });
    for (const res of [underscore, letter, percent, plain]) {
      assert.equal(res.statusCode, 200, res.body);
    }
    const us = await list(`?search=${encodeURIComponent(`${tag}_`)}`);
    assert.deepEqual(us.json().users.map((u: UserBody) => u.id), [underscore.json().id]);
    const pc = await list(`?search=${encodeURIComponent(`${tag}%`)}`);
    assert.deepEqual(pc.json().users.map((u: UserBody) => u.id), [percent.json().id]);
    // A lone wildcard character matches only values containing it.
    const lonePercent = await list(`?search=${encodeURIComponent('%')}&limit=200`);
    assert.deepEqual(lonePercent.json().users.map((u: UserBody) => u.id), [percent.json().id]);
    // A backslash is literal too (no escape-character error, no match).
    const backslash = await list(`?search=${encodeURIComponent(`${tag}\\`)}`);
    assert.equal(backslash.statusCode, 200, backslash.body);
    assert.equal(backslash.json().total, 0);
    const escapedUnderscore = await list(`?search=${encodeURIComponent(`${tag}\\_`)}`);
    assert.equal(escapedUnderscore.statusCode, 200, escapedUnderscore.body);
    assert.equal(escapedUnderscore.json().total, 0);
  });

  test('paging parameters are validated: limit 1..200, page ≥ 1', async () => {
    assertError(await list('?limit=201'), 400, 'validation_error', 'limit');
    assertError(await list('?limit=0'), 400, 'validation_error', 'limit');
    assertError(await list('?page=0'), 400, 'validation_error', 'page');
    assertError(await list('?page=-1'), 400, 'validation_error', 'page');
    assertError(await list('?limit=abc'), 400, 'validation_error', 'limit');
    const max = await list('?limit=200');
    assert.equal(max.statusCode, 200);
    assert.equal(max.json().limit, 200);
  });
});
