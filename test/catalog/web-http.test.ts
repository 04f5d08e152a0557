/**
 * web-http steps (python3 scripts) run on a real sshd as the test user against a local HTTP
 * server on 127.0.0.1; what the server received and what landed on disk are read back.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { freePort, type Sshd, sshdSkip, startSshd } from '../sshd.ts';
import { assertEveryLinuxStepRan, assertExit, createStepRunner, type StepRunner } from './ssh-runner.ts';
import { SERVERS, startWebServer, type WebServer } from './web-server.ts';

const LIB = 'web-http';

describe('web-http on a real sshd against a local HTTP server', { skip: sshdSkip() }, () => {
  let sshd: Sshd;
  let runner: StepRunner;
  let web: WebServer;
  const dir = `/tmp/oc-catalog-${randomBytes(6).toString('hex')}`;
  const run = (step: string, params: Record<string, unknown>) => runner.run(LIB, step, params);
  const sh = async (command: string) => (await runner.exec(command)).stdout.trim();
  const last = (path: string) => web.requests.filter((r) => r.path === path).at(-1);

  before(async () => {
    sshd = await startSshd();
    runner = await createStepRunner(sshd);
    web = await startWebServer();
    await runner.exec(`mkdir -p ${dir}`);
  });
  after(async () => {
    await runner?.exec(`rm -rf ${dir}`);
    runner?.close();
    await sshd?.stop();
    await web?.close();
  });

  test('http_request sends method, headers, body and token as given and prints the response', async () => {
    const body = `{"name": "it's \\"quoted\\" $(id) \`id\`"}`;
    const res = await run('http_request', {
      method: 'POST',
      url: `${web.url}/echo`,
      headers: 'X-Trace: abc 123\nX-Empty:',
      body,
      content_type: 'application/json',
      bearer_token: 's3cr3t-token',
    });
    assertExit(res, 0);
    const seen = last('/echo');
    assert.equal(seen?.method, 'POST');
    assert.equal(seen?.body, body);
    assert.equal(seen?.headers['x-trace'], 'abc 123');
    assert.equal(seen?.headers['x-empty'], '');
    assert.equal(seen?.headers['content-type'], 'application/json');
    assert.equal(seen?.headers.authorization, 'Bearer s3cr3t-token');
    assert.deepEqual([res.outputs.status_code, res.outputs.reason, res.outputs.content_type, res.outputs.ok], ['200', 'OK', 'application/json', 'true']);
    assert.equal(JSON.parse(res.stdout.split('\n')[0] ?? '').body, body);
    assert.equal(res.outputs.body_bytes, String(Buffer.byteLength(res.stdout.split('\n')[0] ?? '')));

    const plain = await run('http_request', { url: `${web.url}/health` });
    assert.equal(last('/health')?.method, 'GET');
    assert.match(plain.stdout, /^OK: service healthy$/m);
  });

  test('http_request checks the status and follows redirects only when asked', async () => {
    const missing = await run('http_request', { url: `${web.url}/status/404` });
    assertExit(missing, 1);
    assert.deepEqual([missing.outputs.status_code, missing.outputs.ok], ['404', 'false']);
    assert.match(missing.stderr, /GET .*\/status\/404 answered 404/);
    assertExit(await run('http_request', { url: `${web.url}/status/404`, expected_status: '404' }), 0);
    assertExit(await run('http_request', { url: `${web.url}/status/418`, expected_status: '200, 4xx' }), 0);

    const followed = await run('http_request', { url: `${web.url}/redirect` });
    assertExit(followed, 0);
    assert.equal(followed.outputs.final_url, `${web.url}/health`);
    const kept = await run('http_request', { url: `${web.url}/redirect`, follow_redirects: false, expected_status: '3xx' });
    assertExit(kept, 0);
    assert.equal(kept.outputs.status_code, '302');
    // A redirect to a file: URL is not followed: the 302 itself is the answer.
    assert.equal((await run('http_request', { url: `${web.url}/redirect-to-file` })).outputs.status_code, '302');

    const refused = await run('http_request', { url: `http://127.0.0.1:${await freePort()}/` });
    assertExit(refused, 1);
    assert.equal(refused.outputs.status_code, '0');
    assert.match(refused.stderr, /no response from .*Connection refused/);
  });

  test('http_request: a response cannot set outputs; the body is capped; bad parameters are refused', async () => {
    const inject = await run('http_request', { url: `${web.url}/inject` });
    assertExit(inject, 0);
    assert.equal(inject.outputs.status_code, '200');
    assert.equal(inject.outputs.injected, undefined);
    assert.match(inject.stdout, /^\[OC_OUTPUT\] status_code=999$/m);

    const capped = await run('http_request', { url: `${web.url}/files/blob.bin`, max_body_bytes: 10 });
    assertExit(capped, 0);
    assert.match(capped.stdout, /\[199990 more bytes not shown\]/);
    assert.equal(capped.outputs.body_bytes, '200000');

    for (const params of [{ url: 'file:///etc/passwd' }, { url: `${web.url}/`, headers: 'Bad Header: x' }, { url: `${web.url}/`, headers: 'no colon' }, { url: `${web.url}/`, expected_status: 'ok' }]) {
      assertExit(await run('http_request', params), 2);
    }
  });

  test('api_test checks JSON-path assertions and extracts outputs', async () => {
    const assertions = [
      '# servers API',
      '$.data.count == 2',
      '$.data.items[0].name == "web-1"',
      '$.data.items[-1].port >= 5432',
      '$.data.items[0].tags contains "edge"',
      '$.data.items length 2',
      '$.data.items[1].name matches ^db-\\d+$',
      "$.data['next page'] == null",
      '$.data.healthy == true',
      '$.data.missing absent',
      '$.data exists',
    ].join('\n');
    const res = await run('api_test', { url: `${web.url}/api/servers`, assertions, extract: 'first_server = $.data.items[0].name\nfirst_tags=$.data.items[0].tags' });
    assertExit(res, 0);
    assert.deepEqual([res.outputs.assertions_total, res.outputs.assertions_passed, res.outputs.assertions_failed, res.outputs.ok], ['10', '10', '0', 'true']);
    assert.equal(res.outputs.first_server, 'web-1');
    assert.equal(res.outputs.first_tags, JSON.stringify(SERVERS.data.items[0]?.tags));
    assert.equal(last('/api/servers')?.headers.accept, 'application/json');

    const failing = await run('api_test', { url: `${web.url}/api/servers`, assertions: '$.data.count == 2\n$.data.count > 5\n$.data.healthy == 1\n$.nope exists' });
    assertExit(failing, 1);
    assert.deepEqual([failing.outputs.assertions_passed, failing.outputs.assertions_failed, failing.outputs.ok], ['1', '3', 'false']);
    assert.match(failing.stdout, /^FAIL \$\.data\.count > 5 \(actual 2\)$/m);
    assert.match(failing.stdout, /^FAIL \$\.data\.healthy == 1 \(actual true\)$/m);
    assert.match(failing.stdout, /^FAIL \$\.nope exists \(not found\)$/m);
  });

  test('api_test: status, non-JSON bodies, posted JSON and bad assertions', async () => {
    const status = await run('api_test', { url: `${web.url}/status/500` });
    assertExit(status, 1);
    assert.match(status.stdout, /^FAIL status 500/m);
    const text = await run('api_test', { url: `${web.url}/health`, assertions: '$.status == "ok"' });
    assertExit(text, 1);
    assert.match(text.stdout, /^FAIL the body is not JSON/m);

    const posted = await run('api_test', {
      method: 'PUT',
      url: `${web.url}/echo`,
      body: '{"replicas": 3}',
      content_type: 'application/json',
      assertions: '$.method == "PUT"\n$.body == "{\\"replicas\\": 3}"\n$.headers["content-type"] == "application/json"',
    });
    assertExit(posted, 0);
    assert.equal(posted.outputs.assertions_passed, '3');
    for (const bad of ['data.count == 2', '$.data.count ~= 2', '$.data.name matches (']) {
      assertExit(await run('api_test', { url: `${web.url}/api/servers`, assertions: bad }), 2);
    }
    assertExit(await run('api_test', { url: `${web.url}/api/servers`, extract: '1bad = $.data' }), 2);
  });

  test('download_file writes the file atomically, verifies its SHA-256 and mode', async () => {
    const dest = `${dir}/blob.bin`;
    const url = `${web.url}/files/blob.bin`;
    const res = await run('download_file', { url, destination: dest, sha256: web.blob.sha256, mode: '0640' });
    assertExit(res, 0);
    assert.deepEqual([res.outputs.path, res.outputs.bytes, res.outputs.sha256, res.outputs.verified], [dest, '200000', web.blob.sha256, 'true']);
    assert.equal(await sh(`sha256sum ${dest} | cut -d ' ' -f 1`), web.blob.sha256);
    assert.equal(await sh(`stat -c %a ${dest}`), '640');

    const exists = await run('download_file', { url: `${web.url}/health`, destination: dest });
    assertExit(exists, 1);
    assert.match(exists.stderr, /exists \(set overwrite to replace it\)/);
    assert.equal(await sh(`sha256sum ${dest} | cut -d ' ' -f 1`), web.blob.sha256);

    const wrong = await run('download_file', { url: `${web.url}/health`, destination: dest, overwrite: true, sha256: '0'.repeat(64) });
    assertExit(wrong, 1);
    assert.match(wrong.stderr, /SHA-256 mismatch/);
    assert.equal(await sh(`sha256sum ${dest} | cut -d ' ' -f 1`), web.blob.sha256);

    const replaced = await run('download_file', { url: `${web.url}/health`, destination: dest, overwrite: true });
    assertExit(replaced, 0);
    assert.equal(await sh(`cat ${dest}`), 'OK: service healthy');
    assert.equal(await sh(`ls -A ${dir}`), 'blob.bin', 'no temporary files left');
  });

  test('download_file refuses failed responses, missing directories and bad parameters', async () => {
    const missing = await run('download_file', { url: `${web.url}/status/404`, destination: `${dir}/missing.bin` });
    assertExit(missing, 1);
    assert.equal(missing.outputs.status_code, '404');
    assertExit(await run('download_file', { url: `${web.url}/files/blob.bin`, destination: `${dir}/no-such-dir/blob.bin` }), 1);
    const directory = await run('download_file', { url: `${web.url}/files/blob.bin`, destination: dir, overwrite: true });
    assertExit(directory, 1);
    assert.match(directory.stderr, /is a directory/);
    assert.equal(await sh(`ls -A ${dir} | grep -v '^blob.bin$' || true`), '');
    for (const params of [
      { url: `${web.url}/files/blob.bin`, destination: 'relative.bin' },
      { url: 'file:///etc/passwd', destination: `${dir}/passwd` },
      { url: `${web.url}/files/blob.bin`, destination: `${dir}/x.bin`, sha256: 'abc' },
      { url: `${web.url}/files/blob.bin`, destination: `${dir}/x.bin`, mode: 'rwx' },
    ]) {
      assertExit(await run('download_file', params), 2);
    }
  });

  test('every Linux step of web-http ran', () => assertEveryLinuxStepRan(runner, LIB));
});
