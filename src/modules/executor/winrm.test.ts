/**
 * WinRM wired in: POST /execute/winrm, and job command steps on winrm targets next to SSH targets
 * in one run, against the WinRM stand-in (test/winrm-server.ts, checked with pywinrm) and a real
 * OpenSSH server. NTLM targets speak plain HTTP (message encryption), Basic ones HTTPS (pinned).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { SSH_TEST_USER, type Sshd, sshdSkip, startSshd } from '../../../test/sshd.ts';
import { makeSelfSignedCert } from '../../../test/tls.ts';
import { startWinrmServer, type WinrmServer } from '../../../test/winrm-server.ts';

interface Run {
  status: string;
  targets: Array<{ target_id: number; status: string }>;
  steps: Array<{ target_id: number; step_index: number; status: string; stdout: string; exit_code: number | null; error: string | null }>;
}

const WIN_USER = 'Administrator';
const WIN_PASSWORD = 'Wïnrm-Secret <&> 1';

describe('WinRM execution', { skip: sshdSkip() }, () => {
  let ctx: TestContext;
  const cert = makeSelfSignedCert('IP:127.0.0.1');
  let winrm: WinrmServer;
  let winrmTls: WinrmServer;
  let sshd: Sshd;
  const ids = { ntlm: 0, basic: 0, wrong: 0, linux: 0, none: 0 };
  const creds = { ntlm: 0, basic: 0 };

  const post = (url: string, payload: Record<string, unknown>) => ctx.request({ method: 'POST', url, token: ctx.adminToken, payload });
  const created = async (url: string, payload: Record<string, unknown>) => {
    const res = await post(url, payload);
    assert.equal(res.statusCode, 200, res.body);
    return res.json().id as number;
  };
  const finished = async (runId: number): Promise<Run> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const run = (await ctx.request({ method: 'GET', url: `/job-runs/${runId}`, token: ctx.adminToken })).json() as Run;
      if (['completed', 'failed'].includes(run.status) || Date.now() > deadline) {
        return run;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const windowsTarget = async (credential: number | null, https = false) =>
    created('/targets', {
      name: unique('win'),
      host: '127.0.0.1',
      os_type: 'windows',
      protocol: 'winrm',
      credential_id: credential,
      ...(https ? { port: winrmTls.port, use_tls: true, tls_fingerprint: cert.fingerprint } : { port: winrm.port }),
    });
  /** The Command the stand-in saw last. */
  const lastCommand = (server = winrm) => server.exchanges.filter((e) => e.action === 'Command').at(-1);

  before(async () => {
    ctx = await createTestContext({ worker: true });
    winrm = await startWinrmServer({ users: { [WIN_USER]: WIN_PASSWORD } });
    winrmTls = await startWinrmServer({ users: { [WIN_USER]: WIN_PASSWORD }, tls: { key: cert.key, cert: cert.cert } });
    sshd = await startSshd();
    creds.ntlm = await created('/credentials', { name: unique('c'), type: 'winrm', username: WIN_USER, password: WIN_PASSWORD, auth: 'ntlm' });
    creds.basic = await created('/credentials', { name: unique('c'), type: 'winrm', username: WIN_USER, password: WIN_PASSWORD, auth: 'basic' });
    ids.ntlm = await windowsTarget(creds.ntlm);
    ids.basic = await windowsTarget(creds.basic, true);
    ids.none = await windowsTarget(null);
    ids.wrong = await windowsTarget(await created('/credentials', { name: unique('c'), type: 'winrm', username: WIN_USER, password: 'wrong-password', auth: 'ntlm' }));
    const sshCredential = await created('/credentials', { name: unique('c'), type: 'ssh', username: SSH_TEST_USER, private_key: sshd.clientKey });
    ids.linux = await created('/targets', { name: unique('linux'), host: sshd.host, port: sshd.port, os_type: 'linux', protocol: 'ssh', credential_id: sshCredential });
  });
  after(async () => {
    await ctx?.close();
    await winrm?.close();
    await winrmTls?.close();
    await sshd?.stop();
  });

  describe('POST /execute/winrm', () => {
    for (const auth of ['ntlm', 'basic'] as const) {
      test(`${auth}: PowerShell (the default) and cmd; output, stderr and the exit code come back`, async () => {
        const ps = await post('/execute/winrm', { target_id: ids[auth], command: "echo 'ünïcode <&>'; echo oops >&2; exit 4" });
        assert.equal(ps.statusCode, 200, ps.body);
        assert.equal(ps.json().output, 'ünïcode <&>\n');
        assert.equal(ps.json().stderr, 'oops\n');
        assert.equal(ps.json().exit_code, 4);
        assert.equal(ps.json().success, false);
        assert.equal(typeof ps.json().execution_time_ms, 'number');
        const cmd = await post('/execute/winrm', { target_id: ids[auth], command: 'echo from-cmd', shell: 'cmd' });
        assert.deepEqual([cmd.json().output, cmd.json().exit_code, cmd.json().success], ['from-cmd\n', 0, true]);
      });
    }

    test('PowerShell runs as powershell -NoProfile -NonInteractive -EncodedCommand <UTF-16LE base64>; cmd runs as given', async () => {
      const script = "Get-Service | Where-Object { $_.Name -eq 'wïn <&>' }; echo \"done\"";
      await post('/execute/winrm', { target_id: ids.ntlm, command: script });
      const encoded = Buffer.from(script, 'utf16le').toString('base64');
      assert.equal(lastCommand()?.commandLine, `powershell -NoProfile -NonInteractive -EncodedCommand ${encoded}`);
      assert.equal(lastCommand()?.options?.WINRS_CONSOLEMODE_STDIN, 'TRUE', 'no stdin: console mode');
      await post('/execute/winrm', { target_id: ids.ntlm, command: 'dir "C:\\Program Files" & echo <x>', shell: 'cmd' });
      assert.equal(lastCommand()?.commandLine, 'dir "C:\\Program Files" & echo <x>');
    });

    test('credential_id overrides the target credential, and a target without one can be used with it', async () => {
      const over = await post('/execute/winrm', { target_id: ids.wrong, command: 'echo via-override', credential_id: creds.ntlm });
      assert.deepEqual([over.statusCode, over.json().output, over.json().success], [200, 'via-override\n', true]);
      const none = await post('/execute/winrm', { target_id: ids.none, command: 'echo via-given', credential_id: creds.ntlm });
      assert.equal(none.json().output, 'via-given\n');
      const without = await post('/execute/winrm', { target_id: ids.none, command: 'echo never' });
      assert.equal(without.statusCode, 400, without.body);
      assert.equal(without.json().error.field, 'credential_id');
      // A Basic credential given for a plain-HTTP target is refused before anything is sent.
      const actions = winrm.actions.length;
      const basic = await post('/execute/winrm', { target_id: ids.ntlm, command: 'echo never', credential_id: creds.basic });
      assert.equal(basic.json().success, false);
      assert.match(basic.json().error, /^insecure_auth: .*HTTPS \(port 5986\) or NTLM/);
      assert.equal(winrm.actions.length, actions);
    });

    test('the password never reaches the output; a wrong one is reported as auth_failed', async () => {
      const echoed = await post('/execute/winrm', { target_id: ids.ntlm, command: `echo '${WIN_PASSWORD}'` });
      assert.equal(echoed.json().output, '***\n');
      const refused = await post('/execute/winrm', { target_id: ids.wrong, command: 'echo never' });
      assert.equal(refused.statusCode, 200, refused.body);
      assert.equal(refused.json().success, false);
      assert.match(refused.json().error, /^auth_failed/);
      assert.doesNotMatch(refused.body, /wrong-password/);
    });

    test('a timeout kills the remote command and deletes its shell', async () => {
      const res = await post('/execute/winrm', { target_id: ids.ntlm, command: 'sleep 30', timeout_s: 1 });
      assert.equal(res.json().success, false);
      assert.match(res.json().error, /timed_out/);
      assert.equal(winrm.runningCommands(), 0);
      assert.equal(winrm.openShells(), 0);
    });

    test('PowerShell error records (CLIXML on stderr) come back as readable text', async () => {
      const record = '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><S S="Error">Stop-Service : access &lt;denied&gt;_x000D__x000A_</S></Objs>';
      const res = await post('/execute/winrm', { target_id: ids.ntlm, command: `printf '%s' '${record}' >&2; exit 1` });
      assert.equal(res.json().stderr, 'Stop-Service : access <denied>\n');
      assert.equal(res.json().exit_code, 1);
    });

    test('an SSH target or an unknown shell is a 400 naming the field', async () => {
      const ssh = await post('/execute/winrm', { target_id: ids.linux, command: 'echo' });
      assert.equal(ssh.statusCode, 400, ssh.body);
      assert.equal(ssh.json().error.field, 'target_id');
      const bash = await post('/execute/winrm', { target_id: ids.ntlm, command: 'echo', shell: 'bash' });
      assert.equal(bash.statusCode, 400, bash.body);
    });
  });

  describe('file copy to WinRM targets', () => {
    const payload = Buffer.concat([Buffer.from('ünï <&> '), randomBytes(200_000)]);
    const remoteDir = mkdtempSync(join(tmpdir(), 'oc-winrm-files-'));
    before(async () => {
      chmodSync(remoteDir, 0o777); // the SSH target's user writes here too
      const put = await ctx.request({ method: 'PUT', url: '/files/win/setup.bin', token: ctx.adminToken, payload, headers: { 'content-type': 'application/octet-stream' } });
      assert.ok(put.statusCode < 300, put.body);
    });

    test('POST /execute/sftp uploads to a winrm target and verifies it; download is refused with a reason', async () => {
      for (const auth of ['ntlm', 'basic'] as const) {
        const remote = join(remoteDir, auth, 'setup.bin');
        const res = await post('/execute/sftp', { target_id: ids[auth], operation: 'upload', local_path: 'win/setup.bin', remote_path: remote });
        assert.equal(res.statusCode, 200, res.body);
        assert.deepEqual([res.json().success, res.json().bytes_transferred], [true, payload.length]);
        assert.ok(readFileSync(remote).equals(payload));
      }
      const down = await post('/execute/sftp', { target_id: ids.ntlm, operation: 'download', local_path: 'win/back.bin', remote_path: join(remoteDir, 'ntlm', 'setup.bin') });
      assert.equal(down.json().success, false);
      assert.match(down.json().error, /only uploads/);
      assert.equal(winrm.openShells() + winrmTls.openShells(), 0);
    });

    test('a job uploads to Windows and Linux targets alike, then runs what it uploaded', async () => {
      const job = await created('/jobs', {
        name: unique('deploy'),
        steps: [
          { type: 'sftp', name: 'copy', operation: 'upload', local_path: 'win/setup.bin', remote_path: `${remoteDir}/{{ target.name }}.bin` },
          { type: 'command', name: 'size', command: `wc -c < '${remoteDir}/{{ target.name }}.bin'` },
        ],
      });
      const queued = await post(`/jobs/${job}/run`, { target_ids: [ids.linux, ids.ntlm] });
      assert.equal(queued.statusCode, 200, queued.body);
      const run = await finished(queued.json().job_run_id as number);
      assert.equal(run.status, 'completed', JSON.stringify(run.steps.map((s) => s.error)));
      assert.deepEqual(
        run.steps.filter((s) => s.step_index === 1).map((s) => s.stdout.trim()),
        [String(payload.length), String(payload.length)],
      );
    });
  });

  test('a job on Linux (SSH) and Windows (WinRM) targets runs both, each with its own result', async () => {
    const job = await created('/jobs', {
      name: unique('mixed'),
      steps: [
        { type: 'command', name: 'hello', command: 'echo hello from {{ target.os_type }}' },
        { type: 'command', name: 'fails_on_windows', command: '{% if target.os_type == "windows" %}exit 5{% else %}true{% endif %}' },
      ],
    });
    const queued = await post(`/jobs/${job}/run`, { target_ids: [ids.linux, ids.ntlm, ids.wrong] });
    assert.equal(queued.statusCode, 200, queued.body);
    const run = await finished(queued.json().job_run_id as number);
    assert.equal(run.status, 'failed');
    const statusOf = (id: number) => run.targets.find((t) => t.target_id === id)?.status;
    assert.deepEqual([statusOf(ids.linux), statusOf(ids.ntlm), statusOf(ids.wrong)], ['succeeded', 'failed', 'unreachable']);
    const step = (id: number, index: number) => run.steps.find((s) => s.target_id === id && s.step_index === index);
    assert.equal(step(ids.linux, 0)?.stdout, 'hello from linux\n');
    assert.equal(step(ids.ntlm, 0)?.stdout, 'hello from windows\n');
    assert.deepEqual([step(ids.ntlm, 1)?.status, step(ids.ntlm, 1)?.exit_code], ['failed', 5]);
    assert.equal(winrm.openShells(), 0);
  });
});
