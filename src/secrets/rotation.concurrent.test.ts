import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import type { KyselyPlugin } from 'kysely';

import { unique } from '../../test/app.ts';
import { createKeyring } from '../shared/crypto-box.ts';
import { credentialRows, credentialsServiceWith, rotationApp, type StoredRow, storeCredentials } from './rotation.fixtures.ts';
import { planRotation } from './rotation.ts';
import { createSecretSettings } from './secret-settings.ts';

describe('a secret changed while a rotation runs', () => {
  const app = rotationApp();

  test('a credential updated between the rotation reading and re-wrapping it keeps the new value', async () => {
    const { ctx } = app;
    const [id] = await storeCredentials(ctx, 1);
    const credentialId = id as number;
    const oldId = ctx.deps.keyring.current.id;
    const plan = planRotation(ctx.config);
    const newPassword = `changed-${unique()}`;
    let fired = false;
    // Right after the rotation has read its batch, an admin changes the password through the API
    // (whose process still seals under the old key).
    const interleave: KyselyPlugin = {
      transformQuery: (args) => args.node,
      async transformResult(args) {
        if (!fired && args.result.rows.some((r) => (r as { id?: unknown }).id === credentialId && 'secret_ciphertext' in (r as object))) {
          fired = true;
          const res = await ctx.request({ method: 'PUT', url: `/credentials/${credentialId}`, token: ctx.adminToken, payload: { password: newPassword } });
          assert.equal(res.statusCode, 200, res.body);
        }
        return args.result;
      },
    };
    const db = ctx.deps.db.withPlugin(interleave);
    const rotating = credentialsServiceWith(ctx, db, plan.keyring);
    await rotating.rewrapAll();
    assert.ok(fired, 'the concurrent update happened mid-rotation');
    const row = (await credentialRows(ctx)).find((r) => r.id === credentialId) as StoredRow;
    assert.notEqual(oldId, plan.keyring.current.id);
    assert.equal(row.key_id, plan.keyring.current.id, 'the updated row was re-wrapped too');
    const onlyNew = credentialsServiceWith(ctx, ctx.deps.db, createKeyring(plan.keyring.current));
    assert.equal((await onlyNew.resolve(credentialId)).password, newPassword, 'the update is not lost');
  });

  test('a secret setting changed between the rotation reading and re-wrapping it keeps the new value', async () => {
    const { ctx } = app;
    await ctx.deps.secretSettings.set('smtp_password', { password: 'old-smtp-password' });
    const plan = planRotation(ctx.config);
    let fired = false;
    const interleave: KyselyPlugin = {
      transformQuery: (args) => args.node,
      async transformResult(args) {
        if (!fired && args.result.rows.some((r) => (r as { key?: unknown }).key === 'smtp_password')) {
          fired = true;
          await ctx.deps.secretSettings.set('smtp_password', { password: 'new-smtp-password' });
        }
        return args.result;
      },
    };
    await createSecretSettings(ctx.deps.db.withPlugin(interleave), plan.keyring).rewrapAll();
    assert.ok(fired);
    assert.deepEqual(await createSecretSettings(ctx.deps.db, plan.keyring).get('smtp_password'), { password: 'new-smtp-password' });
  });
});
