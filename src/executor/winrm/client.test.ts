/**
 * Our WinRM client against the stand-in (test/winrm-server.ts, itself checked with pywinrm), over
 * Basic and over NTLM with message encryption.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startWinrmServer, WINRM_PRODUCT_VERSION, type WinrmServer } from '../../../test/winrm-server.ts';
import { identify, runWinrmCommand, WinrmError, type WinrmOptions } from './client.ts';

const USER = 'ops';
const PASSWORD = 'Wïn <rm> & "pass"';

describe('WinRM client against the stand-in', () => {
  let server: WinrmServer;
  const errors: unknown[] = [];
  before(async () => {
    server = await startWinrmServer({ users: { [USER]: PASSWORD }, maxOperationTimeoutMs: 300, onError: (err) => errors.push(err) });
  });
  after(async () => {
    assert.deepEqual(errors, [], 'the stand-in failed on no request');
    await server?.close();
  });

  const waitFor = async (check: () => boolean, what: string) => {
    const deadline = Date.now() + 5000;
    while (!check()) {
      assert.ok(Date.now() < deadline, what);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  for (const auth of ['basic', 'ntlm'] as const) {
    const options = (): WinrmOptions => ({ url: server.url, username: USER, password: PASSWORD, auth, operationTimeoutS: 1 });

    describe(auth, () => {
      test('stdout, stderr and the real exit code; the shell is deleted afterwards', async () => {
        const result = await runWinrmCommand(options(), 'echo out; echo err >&2; exit 7', []);
        assert.deepEqual(result, { stdout: 'out\n', stderr: 'err\n', exitCode: 7 });
        assert.equal(server.openShells(), 0);
      });

      test('arguments with XML special characters and non-ASCII text arrive intact and come back', async () => {
        const result = await runWinrmCommand(options(), 'printf', ["'%s|%s\\n'", `'<a href="x">&amp; ü ✓</a>'`, "'ÿ'"]);
        assert.equal(result.exitCode, 0);
        assert.equal(result.stdout, '<a href="x">&amp; ü ✓</a>|ÿ\n');
      });

      test('1 MiB of output arrives whole; maxBytes caps what is kept while callbacks see everything', async () => {
        let streamed = 0;
        const result = await runWinrmCommand(options(), 'head -c 1048576 /dev/zero | tr "\\0" x', [], { maxBytes: 1000, onStdout: (c) => (streamed += c.length) });
        assert.equal(streamed, 1_048_576);
        assert.equal(result.stdout, 'x'.repeat(1000));
        assert.equal(result.exitCode, 0);
      });

      test('a command that outlives several operation timeouts still finishes (w:TimedOut is retried)', async () => {
        const result = await runWinrmCommand(options(), 'sleep 1.2; echo done', []);
        assert.deepEqual(result, { stdout: 'done\n', stderr: '', exitCode: 0 });
      });

      test('a timeout terminates the command and deletes the shell: nothing keeps running', async () => {
        const started = Date.now();
        const result = await runWinrmCommand(options(), 'echo started; sleep 30', [], { timeoutMs: 700 });
        assert.equal(result.killed, 'timeout');
        assert.equal(result.exitCode, null);
        assert.equal(result.stdout, 'started\n');
        assert.ok(Date.now() - started < 5000);
        await waitFor(() => server.runningCommands() === 0 && server.openShells() === 0, 'the remote command and shell are gone');
      });

      test('cancel (abort) terminates the command too', async () => {
        const controller = new AbortController();
        setTimeout(() => controller.abort(), 300);
        const result = await runWinrmCommand(options(), 'sleep 30', [], { signal: controller.signal });
        assert.equal(result.killed, 'aborted');
        await waitFor(() => server.runningCommands() === 0 && server.openShells() === 0, 'the remote command and shell are gone');
      });

      test('a wrong password is auth_failed', async () => {
        await assert.rejects(runWinrmCommand({ ...options(), password: 'wrong' }, 'echo never', []), (e: unknown) => e instanceof WinrmError && e.kind === 'auth_failed');
      });

      test('Identify reports the product version the host announces', async () => {
        assert.deepEqual(await identify(options()), { productVersion: WINRM_PRODUCT_VERSION });
      });
    });
  }

  test('a closed port is offline', async () => {
    const closed = new URL(server.url);
    closed.port = '1';
    await assert.rejects(runWinrmCommand({ url: closed.toString(), username: USER, password: PASSWORD, auth: 'basic' }, 'echo', []), (e: unknown) => e instanceof WinrmError && e.kind === 'offline');
  });
});
