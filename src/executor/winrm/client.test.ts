/**
 * Our WinRM client against the stand-in (test/winrm-server.ts, itself checked with pywinrm), over
 * every transport and authentication the client accepts: HTTPS with Basic, HTTPS with NTLM, and
 * plain HTTP with NTLM message encryption. Basic over plain HTTP is refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { makeSelfSignedCert } from '../../../test/tls.ts';
import { startWinrmServer, WINRM_PRODUCT_VERSION, type WinrmServer } from '../../../test/winrm-server.ts';
import { identify, runWinrmCommand, WinrmError, type WinrmOptions } from './client.ts';

const USER = 'ops';
const PASSWORD = 'Wïn <rm> & "pass"';

const COMBINATIONS = [
  { name: 'HTTPS + Basic', https: true, auth: 'basic' },
  { name: 'HTTPS + NTLM', https: true, auth: 'ntlm' },
  { name: 'HTTP + NTLM (encrypted)', https: false, auth: 'ntlm' },
] as const;

const isKind = (kind: string) => (e: unknown) => {
  assert.ok(e instanceof WinrmError, String(e));
  assert.equal(e.kind, kind, e.message);
  assert.ok(!e.message.includes(PASSWORD), 'the error does not carry the password');
  return true;
};

describe('WinRM client against the stand-in', () => {
  const cert = makeSelfSignedCert('IP:127.0.0.1');
  const servers: { http?: WinrmServer; https?: WinrmServer } = {};
  const errors: unknown[] = [];
  before(async () => {
    const common = { users: { [USER]: PASSWORD }, maxOperationTimeoutMs: 300, onError: (err: unknown) => errors.push(err) };
    servers.http = await startWinrmServer(common);
    servers.https = await startWinrmServer({ ...common, tls: { key: cert.key, cert: cert.cert } });
  });
  after(async () => {
    assert.deepEqual(errors, [], 'the stand-in failed on no request');
    await Promise.all([servers.http?.close(), servers.https?.close()]);
  });

  const waitFor = async (check: () => boolean, what: string) => {
    const deadline = Date.now() + 5000;
    while (!check()) {
      assert.ok(Date.now() < deadline, what);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  for (const combination of COMBINATIONS) {
    const server = () => (combination.https ? servers.https : servers.http) as WinrmServer;
    const options = (): WinrmOptions => ({
      url: server().url,
      username: USER,
      password: PASSWORD,
      auth: combination.auth,
      operationTimeoutS: 1,
      ...(combination.https ? { tls: { verify: true, fingerprint: cert.fingerprint } } : {}),
    });
    /** What the stand-in saw of the one shell created since exchange `from`. */
    const shellActions = (from: number) => {
      const recent = server().exchanges.slice(from);
      const created = recent.filter((e) => e.action === 'Create');
      assert.equal(created.length, 1, 'one shell was created');
      return recent.filter((e) => e.shellId === created[0]?.shellId);
    };
    /** The command was terminated (Signal) before its shell was deleted, and nothing of it is left. */
    const assertTerminatedThenDeleted = async (from: number) => {
      await waitFor(() => server().runningCommands() === 0 && server().openShells() === 0, 'the remote command and shell are gone');
      const actions = shellActions(from).map((e) => e.action);
      const [signal, remove] = [actions.indexOf('Signal'), actions.lastIndexOf('Delete')];
      assert.ok(signal >= 0 && signal < remove, `Signal terminate came before Delete: ${actions.join(', ')}`);
    };

    describe(combination.name, () => {
      test('stdout, stderr and the real exit code; the command is terminated and the shell deleted afterwards', async () => {
        const [from, seen] = [server().exchanges.length, { ...server().messages }];
        const result = await runWinrmCommand(options(), 'echo out; echo err >&2; exit 7', []);
        assert.deepEqual(result, { stdout: 'out\n', stderr: 'err\n', exitCode: 7 });
        await assertTerminatedThenDeleted(from);
        const sealed = server().messages.encrypted - seen.encrypted;
        assert.ok(combination.https ? sealed === 0 : sealed >= 5, `NTLM sealing only over plain HTTP (${sealed} sealed)`);
      });

      test('arguments with XML special characters and non-ASCII text arrive intact and come back', async () => {
        const from = server().exchanges.length;
        const args = ["'%s|%s\\n'", `'<a href="x">&amp; ü ✓</a>'`, "'ÿ'"];
        const result = await runWinrmCommand(options(), 'printf', args);
        assert.equal(result.exitCode, 0);
        assert.equal(result.stdout, '<a href="x">&amp; ü ✓</a>|ÿ\n');
        assert.equal(shellActions(from).find((e) => e.action === 'Command')?.commandLine, ['printf', ...args].join(' '));
      });

      test('1 MiB of output arrives whole; maxBytes caps what is kept while callbacks see everything', async () => {
        let streamed = 0;
        const result = await runWinrmCommand(options(), 'head -c 1048576 /dev/zero | tr "\\0" x', [], { maxBytes: 1000, onStdout: (c) => (streamed += c.length) });
        assert.equal(streamed, 1_048_576);
        assert.equal(result.stdout, 'x'.repeat(1000));
        assert.equal(result.exitCode, 0);
      });

      test('a command that outlives several operation timeouts still finishes (w:TimedOut is retried)', async () => {
        const from = server().exchanges.length;
        const result = await runWinrmCommand(options(), 'sleep 1.2; echo done', []);
        assert.deepEqual(result, { stdout: 'done\n', stderr: '', exitCode: 0 });
        const receives = shellActions(from).filter((e) => e.action === 'Receive');
        assert.ok(receives.some((e) => e.timedOut), `at least one Receive was answered w:TimedOut (${receives.length} Receives)`);
        assert.equal(receives.at(-1)?.timedOut, false, 'the last Receive brought the end');
      });

      test('a timeout terminates the command and deletes the shell: nothing keeps running', async () => {
        const [from, started] = [server().exchanges.length, Date.now()];
        const result = await runWinrmCommand(options(), 'echo started; sleep 30', [], { timeoutMs: 1500 });
        assert.equal(result.killed, 'timeout');
        assert.equal(result.exitCode, null);
        assert.equal(result.stdout, 'started\n');
        assert.ok(Date.now() - started < 10_000, `returned after ${Date.now() - started} ms`);
        await assertTerminatedThenDeleted(from);
      });

      test('cancel (abort) terminates the command too', async () => {
        const from = server().exchanges.length;
        const controller = new AbortController();
        // Abort once the command runs (its first output), not at a time that might fall before it starts.
        const result = await runWinrmCommand(options(), 'echo running; sleep 30', [], { signal: controller.signal, onStdout: () => controller.abort() });
        assert.equal(result.killed, 'aborted');
        assert.equal(result.stdout, 'running\n');
        await assertTerminatedThenDeleted(from);
      });

      test('a wrong password is auth_failed, for a command and for Identify', async () => {
        await assert.rejects(runWinrmCommand({ ...options(), password: 'wrong' }, 'echo never', []), isKind('auth_failed'));
        await assert.rejects(identify({ ...options(), password: 'wrong' }), isKind('auth_failed'));
      });

      test('Identify reports the product version the host announces', async () => {
        assert.deepEqual(await identify(options()), { productVersion: WINRM_PRODUCT_VERSION });
      });
    });
  }

  test('Basic over plain HTTP is refused before anything is sent: use HTTPS (port 5986) or NTLM', async () => {
    const server = servers.http as WinrmServer;
    const [actions, messages] = [server.actions.length, { ...server.messages }];
    const basic: WinrmOptions = { url: server.url, username: USER, password: PASSWORD, auth: 'basic' };
    const refusal = (e: unknown) => {
      isKind('insecure_auth')(e);
      assert.match((e as Error).message, /HTTPS \(port 5986\) or NTLM/);
      return true;
    };
    await assert.rejects(runWinrmCommand(basic, 'echo never', []), refusal);
    await assert.rejects(identify(basic), refusal);
    assert.equal(server.actions.length, actions);
    assert.deepEqual(server.messages, messages);
  });

  test('a signal aborted before the call returns killed at once, with nothing sent', async () => {
    const server = servers.http as WinrmServer;
    const actions = server.actions.length;
    const options: WinrmOptions = { url: server.url, username: USER, password: PASSWORD, auth: 'ntlm' };
    const result = await runWinrmCommand(options, 'echo never', [], { signal: AbortSignal.abort() });
    assert.deepEqual(result, { stdout: '', stderr: '', exitCode: null, killed: 'aborted' });
    assert.equal(server.actions.length, actions);
  });

  test('a closed port is offline', async () => {
    const closed = new URL((servers.http as WinrmServer).url);
    closed.port = '1';
    await assert.rejects(runWinrmCommand({ url: closed.toString(), username: USER, password: PASSWORD, auth: 'ntlm' }, 'echo', []), isKind('offline'));
  });
});
