/**
 * Every catalog library through its whole life via the API: install from the catalog, signed
 * download (the bytes' SHA-256 is the one reported at install), upgrade by re-uploading the
 * downloaded bundle as a newer version, uninstall.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext } from '../app.ts';
import { writeBundle } from '../../src/libraries/bundle.ts';
import { downloadCatalog, uploadBundle } from '../../src/modules/libraries/libraries.fixtures.ts';
import { loadCatalog } from './catalog.ts';

describe('catalog libraries: install, download, upgrade, uninstall', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await createTestContext();
  });
  after(async () => {
    await ctx?.close();
  });

  const ids = loadCatalog().map((l) => l.manifest.id);
  test('the catalog holds four libraries', () => {
    assert.deepEqual(ids, ['linux-core', 'network-tools', 'web-http', 'windows-core']);
  });

  for (const id of ids) {
    test(id, async () => {
      const call = (method: 'GET' | 'POST' | 'DELETE', url: string) => ctx.request({ method, url, token: ctx.adminToken, ...(method === 'POST' ? { payload: {} } : {}) });
      const installed = await call('POST', `/libraries/${id}/install`);
      assert.equal(installed.statusCode, 200, installed.body);
      const { version, sha256 } = installed.json() as { version: string; sha256: string };

      const download = await downloadCatalog(ctx, id);
      assert.equal(download.sha256, sha256, 'the downloaded bytes are the installed bundle');
      assert.deepEqual([download.bundle.manifest.id, download.bundle.manifest.version], [id, version]);

      const [major, minor, patch] = version.split('.').map(Number) as [number, number, number];
      const next = `${major}.${minor}.${patch + 1}`;
      const bumped = await writeBundle({ ...download.bundle.manifest, version: next }, download.bundle.files);
      const upgraded = await uploadBundle(ctx, bumped);
      assert.equal(upgraded.statusCode, 200, upgraded.body);
      assert.equal(upgraded.json().message, `Upgraded ${id} ${next} (was ${version})`);
      const shown = (await call('GET', `/libraries/${id}`)).json();
      assert.deepEqual([shown.version, shown.sha256, shown.steps.length], [next, upgraded.json().sha256, download.bundle.manifest.steps.length]);

      const removed = await call('DELETE', `/libraries/${id}`);
      assert.equal(removed.statusCode, 200, removed.body);
      assert.equal((await call('GET', `/libraries/${id}`)).statusCode, 404);
      const entry = ((await call('GET', '/catalog')).json().available_libraries as Array<{ id: string; installed: boolean }>).find((l) => l.id === id);
      assert.equal(entry?.installed, false);
    });
  }
});
