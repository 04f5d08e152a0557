import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { cmd, jobsFixture } from './jobs.fixtures.ts';

describe('jobs', () => {
  const { ctx, viewer, setup, close, creds, post, create, postSteps } = jobsFixture();
  before(setup);
  after(close);

  describe('step shapes', () => {
    test('every supported step type is accepted', async () => {
      const job = await create({
        name: unique('job'),
        steps: [
          cmd('echo hi', { shell: 'sh' }),
          { type: 'sftp', operation: 'upload', local_path: 'scripts/setup.sh', remote_path: '/tmp/setup.sh' },
          { type: 'sftp', operation: 'download', local_path: 'logs/out.log', remote_path: '/var/log/syslog' },
          { type: 'http', method: 'POST', url: 'http://127.0.0.1:9/api', headers: { 'X-Trace': '1' }, body: { a: 1 }, expect_status: [200, 201], credential_id: creds.api_token, auth: 'bearer' },
          { type: 'http', method: 'GET', url: 'http://127.0.0.1:9/api', credential_id: creds.password, auth: 'basic' },
          { type: 'webhook', url: 'http://127.0.0.1:9/hook', method: 'PUT', payload: { done: true }, headers: { 'X-A': 'b' }, secret_credential_id: creds.api_token },
          { type: 'webhook', url: 'http://127.0.0.1:9/hook' },
        ],
      });
      assert.deepEqual(
        job.steps.map((s) => [s.type, s.name]),
        [
          ['command', 'step_0'],
          ['sftp', 'step_1'],
          ['sftp', 'step_2'],
          ['http', 'step_3'],
          ['http', 'step_4'],
          ['webhook', 'step_5'],
          ['webhook', 'step_6'],
        ],
      );
      assert.deepEqual(job.steps[3]?.body, { a: 1 });
      assert.deepEqual(job.steps[3]?.expect_status, [200, 201]);
      assert.equal(job.steps[5]?.secret_credential_id, creds.api_token);
      for (const shell of ['bash', 'powershell', 'cmd']) {
        assert.equal((await postSteps([cmd('x', { shell })])).statusCode, 200, shell);
      }
    });

    test('a library step names an installed library (checked when saved)', async () => {
      const res = await postSteps([cmd('true'), { type: 'library', library: 'not-installed', step: 'x' }]);
      assertError(res, 400, 'validation_error', 'steps[1].library');
      assert.match(res.json().error.message, /not-installed is not installed/);
      assertError(await postSteps([{ type: 'library' }]), 400, 'validation_error', 'steps[0].library');
    });

    test('an unknown step type is 400 naming the step type', async () => {
      const res = await postSteps([{ type: 'shell', command: 'x' }]);
      assertError(res, 400, 'validation_error');
      assert.match(res.json().error.field, /^steps\.?\[?0\]?\.type$/);
    });

    test('unknown fields in a step are 400 naming them', async () => {
      assertError(await postSteps([{ type: 'command', comand: 'ls', command: 'ls' }]), 400, 'validation_error', 'steps[0].comand');
      assertError(await postSteps([cmd('true'), { type: 'http', method: 'GET', url: 'http://127.0.0.1/', secret_credential_id: creds.api_token }]), 400, 'validation_error', 'steps[1].secret_credential_id');
      assertError(await postSteps([{ type: 'webhook', url: 'http://127.0.0.1/', body: {} }]), 400, 'validation_error', 'steps[0].body');
      assertError(await postSteps([{ type: 'sftp', operation: 'upload', local_path: 'a', remote_path: 'b', command: 'x' }]), 400, 'validation_error', 'steps[0].command');
    });

    test('missing and mistyped step fields are 400 naming them', async () => {
      assertError(await postSteps([{ type: 'command' }]), 400, 'validation_error', 'steps[0].command');
      assertError(await postSteps([cmd('')]), 400, 'validation_error', 'steps[0].command');
      assertError(await postSteps([cmd('x', { shell: 'zsh' })]), 400, 'validation_error', 'steps[0].shell');
      assertError(await postSteps([cmd('x', { timeout_s: 0 })]), 400, 'validation_error', 'steps[0].timeout_s');
      assertError(await postSteps([cmd('x', { retries: 11 })]), 400, 'validation_error', 'steps[0].retries');
      assertError(await postSteps([cmd('x', { continue_on_error: 'yes' })]), 400, 'validation_error', 'steps[0].continue_on_error');
      assertError(await postSteps([cmd('x', { name: 'Bad Name' })]), 400, 'validation_error', 'steps[0].name');
      assertError(await postSteps([{ type: 'sftp', operation: 'move', local_path: 'a', remote_path: 'b' }]), 400, 'validation_error', 'steps[0].operation');
      assertError(await postSteps([{ type: 'sftp', operation: 'upload', local_path: 'a' }]), 400, 'validation_error', 'steps[0].remote_path');
      assertError(await postSteps([{ type: 'http', method: 'FETCH', url: 'http://127.0.0.1/' }]), 400, 'validation_error', 'steps[0].method');
      assertError(await postSteps([{ type: 'http', method: 'GET' }]), 400, 'validation_error', 'steps[0].url');
      assertError(await postSteps([{ type: 'http', method: 'GET', url: 'http://127.0.0.1/', auth: 'digest' }]), 400, 'validation_error', 'steps[0].auth');
      assertError(await postSteps([{ type: 'http', method: 'GET', url: 'http://127.0.0.1/', expect_status: [99] }]), 400, 'validation_error');
      assertError(await postSteps([{ type: 'webhook' }]), 400, 'validation_error', 'steps[0].url');
    });

    test('header values must be strings', async () => {
      assertError(await postSteps([{ type: 'http', method: 'GET', url: 'http://127.0.0.1/', headers: { 'X-Num': 5 } }]), 400, 'validation_error', 'steps[0].headers.X-Num');
    });

    // BUG (src/modules/jobs/jobs.steps.ts Headers): same Type.Record pattern-key problem; a header
    // name with a space (or any non-token character) is stored, and its value is not checked.
    test('invalid header names are refused at save time', async () => {
      assertError(await postSteps([{ type: 'http', method: 'GET', url: 'http://127.0.0.1/', headers: { 'X Bad': 'v' } }]), 400, 'validation_error');
      assertError(await postSteps([{ type: 'webhook', url: 'http://127.0.0.1/', headers: { 'bad header': 5 } }]), 400, 'validation_error');
    });

    test('duplicate step names are 400 naming the later step, defaults included', async () => {
      assertError(await postSteps([cmd('a', { name: 'same' }), cmd('b', { name: 'same' })]), 400, 'validation_error', 'steps[1].name');
      // an explicit name equal to a later default
      assertError(await postSteps([cmd('a', { name: 'step_1' }), cmd('b')]), 400, 'validation_error', 'steps[1].name');
    });

    test('sftp local_path must stay inside the file store', async () => {
      for (const local of ['/etc/passwd', '../secrets', 'a/../../b', 'dir/..', '..', 'C:/x', 'a\\..\\b']) {
        const res = await postSteps([cmd('true'), { type: 'sftp', operation: 'upload', local_path: local, remote_path: '/tmp/x' }]);
        assertError(res, 400, 'validation_error', 'steps[1].local_path');
      }
      const inside = await postSteps([{ type: 'sftp', operation: 'download', local_path: 'a/./b/../c.txt', remote_path: '/tmp/x' }]);
      assert.equal(inside.statusCode, 200, inside.body);
    });

    test('http credentials must exist and be api_token or password', async () => {
      const http = (credential_id: number) => ({ type: 'http', method: 'GET', url: 'http://127.0.0.1/', credential_id, auth: 'bearer' });
      assertError(await postSteps([http(creds.ssh)]), 400, 'validation_error', 'steps[0].credential_id');
      assertError(await postSteps([cmd('true'), http(999999)]), 400, 'validation_error', 'steps[1].credential_id');
      assert.equal((await postSteps([http(creds.password)])).statusCode, 200);
      assert.equal((await postSteps([http(creds.api_token)])).statusCode, 200);
    });

    test('webhook secrets must be an existing api_token credential', async () => {
      const hook = (secret_credential_id: number) => ({ type: 'webhook', url: 'http://127.0.0.1/', secret_credential_id });
      assertError(await postSteps([hook(creds.password)]), 400, 'validation_error', 'steps[0].secret_credential_id');
      assertError(await postSteps([hook(creds.ssh)]), 400, 'validation_error', 'steps[0].secret_credential_id');
      assertError(await postSteps([hook(999999)]), 400, 'validation_error', 'steps[0].secret_credential_id');
      assert.equal((await postSteps([hook(creds.api_token)])).statusCode, 200);
    });

    test('a rejected job is not stored', async () => {
      const name = unique('rejected');
      assertError(await post({ name, steps: [cmd('true'), { type: 'notify' }] }), 400, 'validation_error');
      const list = (await ctx.request({ method: 'GET', url: `/jobs?search=${name}`, token: viewer.token })).json();
      assert.equal(list.total, 0);
    });
  });

  describe('parameters', () => {
    test('declarations of every type are stored as given', async () => {
      const parameters = {
        host: { type: 'string', required: true, description: 'where' },
        count: { type: 'number', default: 3 },
        dry_run: { type: 'boolean', default: true },
        token: { type: 'string', secret: true },
      };
      const job = await create({ name: unique('job'), steps: [cmd('echo {{ params.host }} {{ params.count }} {{ params.dry_run }} {{ params.token }}')], parameters });
      assert.deepEqual(job.parameters, parameters);
    });

    test('a default of the wrong type is 400 naming parameters.<name>.default', async () => {
      assertError(await postSteps([cmd('true')], { count: { type: 'number', default: '3' } }), 400, 'validation_error', 'parameters.count.default');
      assertError(await postSteps([cmd('true')], { flag: { type: 'boolean', default: 'true' } }), 400, 'validation_error', 'parameters.flag.default');
      assertError(await postSteps([cmd('true')], { s: { type: 'string', default: 1 } }), 400, 'validation_error', 'parameters.s.default');
    });

    test('bad declarations are 400', async () => {
      assertError(await postSteps([cmd('true')], { x: { type: 'date' } }), 400, 'validation_error');
      assertError(await postSteps([cmd('true')], { x: { type: 'string', hidden: true } }), 400, 'validation_error');
      assertError(await postSteps([cmd('true')], { x: {} }), 400, 'validation_error');
      assertError(await postSteps([cmd('true')], { x: 'string' }), 400, 'validation_error');
    });

    // BUG (src/modules/jobs/jobs.params.ts ParameterDeclarations): Type.Record with a pattern key
    // compiles to patternProperties without additionalProperties:false, so a key not matching the
    // pattern is neither refused nor validated ({"a-b": "garbage"} is stored as {"0":"g",...}).
    test('parameter names must match [A-Za-z_][A-Za-z0-9_]* and every declaration is validated', async () => {
      assertError(await postSteps([cmd('true')], { 'bad-name': { type: 'string' } }), 400, 'validation_error');
      assertError(await postSteps([cmd('true')], { 'my-param': { type: 'date', required: true } }), 400, 'validation_error');
      assertError(await postSteps([cmd('true')], { 'a b': 'garbage' }), 400, 'validation_error');
    });
  });
});
