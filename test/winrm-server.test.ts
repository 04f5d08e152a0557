/**
 * The WinRM stand-in is faithful: pywinrm — a client nobody here wrote — runs commands against it
 * over Basic and over NTLM with message encryption, and gets stdout, stderr and exit codes, and
 * sends stdin with WS-Management Send.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { pywinrmSkip, runPeer } from './peers/python.ts';
import { startWinrmServer, type WinrmServer } from './winrm-server.ts';

const USER = 'winrm-user';
const PASSWORD = 'Winrm pässword <&>';

type Result = Array<{ status: number; stdout: string; stderr: string }> | { error: string };

describe('WinRM stand-in, driven by pywinrm', { skip: pywinrmSkip() }, () => {
  let server: WinrmServer;
  const errors: unknown[] = [];
  before(async () => {
    server = await startWinrmServer({ users: { [USER]: PASSWORD }, maxOperationTimeoutMs: 400, onError: (err) => errors.push(err) });
  });
  after(() => server?.close());

  const run = (transport: 'basic' | 'ntlm', commands: string[][], password = PASSWORD): Promise<Result> =>
    runPeer<Result>('pywinrm_run.py', { url: server.url, transport, user: USER, password, encryption: transport === 'ntlm' ? 'always' : 'never', commands });
  const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

  for (const transport of ['basic', 'ntlm'] as const) {
    test(`${transport}: stdout, stderr and exit codes come back; shells are closed and nothing keeps running`, async () => {
      const before = server.actions.length;
      const results = await run(transport, [
        ['echo', "'hello <&> ü'"],
        ['echo out; echo err >&2; exit 3'],
        ['sleep 1; echo late'],
      ]);
      assert.deepEqual(errors, [], 'the stand-in failed on no request');
      assert.ok(Array.isArray(results), JSON.stringify(results));
      assert.deepEqual(
        results.map((r) => [r.status, decode(r.stdout), decode(r.stderr)]),
        [
          [0, 'hello <&> ü\n', ''],
          [3, 'out\n', 'err\n'],
          [0, 'late\n', ''],
        ],
      );
      const actions = server.actions.slice(before);
      assert.deepEqual([...new Set(actions)].sort(), ['Command', 'Create', 'Delete', 'Receive', 'Signal']);
      assert.ok(actions.filter((a) => a === 'Receive').length > 3, 'the 1 s command outlived Receive’s 0.4 s operation timeout: pywinrm retried after w:TimedOut');
      assert.equal(server.openShells(), 0);
      assert.equal(server.runningCommands(), 0);
    });

    test(`${transport}: stdin sent with WS-Management Send reaches the command, and End closes it`, async () => {
      const chunks = ['first line\n', 'ünïcode <&>\n', 'last'].map((c) => Buffer.from(c).toString('base64'));
      const result = await runPeer<{ status: number; stdout: string; stderr: string } | { error: string }>('pywinrm_stdin.py', {
        url: server.url,
        transport,
        user: USER,
        password: PASSWORD,
        encryption: transport === 'ntlm' ? 'always' : 'never',
        command: 'cat; echo " (end of input)"',
        chunks,
      });
      assert.ok('status' in result, JSON.stringify(result));
      assert.deepEqual([result.status, decode(result.stdout)], [0, 'first line\nünïcode <&>\nlast (end of input)\n']);
      assert.equal(server.openShells(), 0);
    });

    test(`${transport}: a wrong password is refused`, async () => {
      const result = await run(transport, [['echo', 'never']], 'wrong password');
      assert.ok(!Array.isArray(result) && /401|credentials|rejected|InvalidCredentials/i.test(result.error), JSON.stringify(result));
    });
  }
});
