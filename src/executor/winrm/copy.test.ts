/**
 * File copy to Windows against the stand-in (its Send is checked with pywinrm; the copy script's
 * PowerShell is emulated there, see test/winrm-server.ts): bytes arrive whole, the SHA-256 check
 * catches a host that wrote something else, and a stopped copy leaves no shell behind. Over HTTPS
 * with Basic and over HTTP with NTLM message encryption.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { makeSelfSignedCert } from '../../../test/tls.ts';
import { startWinrmServer, type WinrmServer } from '../../../test/winrm-server.ts';
import type { WinrmOptions } from './client.ts';
import { copyScript, copyToWinrm, powershellQuote } from './copy.ts';

const USER = 'ops';
const PASSWORD = 'Cöpy <pass>';

describe('powershellQuote', () => {
  test('doubles every quote character PowerShell honours, so a path cannot end the string', () => {
    assert.equal(powershellQuote("C:\\it's\\‘x’"), "'C:\\it''s\\‘‘x’’'");
    assert.match(copyScript("C:\\a'; Remove-Item C:\\ -Recurse; '"), /^\$path = 'C:\\a''; Remove-Item C:\\ -Recurse; '''\r$/m);
  });
});

describe('copy to WinRM against the stand-in', () => {
  const cert = makeSelfSignedCert('IP:127.0.0.1');
  // Plain HTTP (NTLM with message encryption) and HTTPS (Basic), each with a stand-in that corrupts copies.
  let server: WinrmServer;
  let corrupting: WinrmServer;
  let tlsServer: WinrmServer;
  let tlsCorrupting: WinrmServer;
  const dir = mkdtempSync(join(tmpdir(), 'oc-winrm-copy-'));
  const errors: unknown[] = [];
  before(async () => {
    const common = { users: { [USER]: PASSWORD }, onError: (err: unknown) => errors.push(err) };
    const tls = { key: cert.key, cert: cert.cert };
    server = await startWinrmServer(common);
    corrupting = await startWinrmServer({ ...common, corruptCopies: true });
    tlsServer = await startWinrmServer({ ...common, tls });
    tlsCorrupting = await startWinrmServer({ ...common, tls, corruptCopies: true });
  });
  after(async () => {
    assert.deepEqual(errors, [], 'the stand-in failed on no request');
    await Promise.all([server, corrupting, tlsServer, tlsCorrupting].map((s) => s?.close()));
  });
  const local = (name: string, data: Buffer) => {
    const path = join(dir, name);
    writeFileSync(path, data);
    return path;
  };

  for (const auth of ['basic', 'ntlm'] as const) {
    const https = auth === 'basic';
    const main = () => (https ? tlsServer : server);
    const options = (s = main()): WinrmOptions => ({
      url: s.url,
      username: USER,
      password: PASSWORD,
      auth,
      operationTimeoutS: 2,
      ...(https ? { tls: { verify: true, fingerprint: cert.fingerprint } } : {}),
    });

    test(`${auth}: 1 MiB of random bytes arrives whole in many Sends, hash verified, nothing left behind`, async () => {
      const data = randomBytes(1024 * 1024 + 7);
      const remote = join(dir, auth, "new dir's", 'ünï.bin');
      const [sends, from] = [main().actions.length, main().exchanges.length];
      const copy = await copyToWinrm(options(), local(`${auth}.bin`, data), remote);
      assert.equal(copy.verified, true, copy.command.stderr);
      assert.equal(copy.bytes, data.length);
      assert.ok(readFileSync(remote).equals(data));
      assert.equal(existsSync(`${remote}.oc-partial`), false);
      assert.ok(main().actions.slice(sends).filter((a) => a === 'Send').length >= 17, 'about 60 KiB per Send');
      const started = main().exchanges.slice(from).find((e) => e.action === 'Command');
      assert.equal(started?.options?.WINRS_CONSOLEMODE_STDIN, 'FALSE', 'streamed stdin is a pipe, not the console');
      assert.equal(main().openShells(), 0);
    });

    test(`${auth}: an empty file is copied (one Send that only closes stdin)`, async () => {
      const remote = join(dir, auth, 'empty.txt');
      const copy = await copyToWinrm(options(), local('empty', Buffer.alloc(0)), remote);
      assert.equal(copy.verified, true, copy.command.stderr);
      assert.equal(readFileSync(remote).length, 0);
    });

    test(`${auth}: a host that wrote other bytes fails the SHA-256 check`, async () => {
      const copy = await copyToWinrm(options(https ? tlsCorrupting : corrupting), local('c.bin', Buffer.from('payload')), join(dir, auth, 'corrupt.bin'));
      assert.equal(copy.command.exitCode, 0);
      assert.equal(copy.verified, false);
      assert.notEqual(copy.command.stdout.trim(), copy.sha256);
    });
  }

  test('a copy stopped by its timeout terminates the command and deletes the shell', async () => {
    const big = local('big.bin', randomBytes(8 * 1024 * 1024));
    const copy = await copyToWinrm({ url: server.url, username: USER, password: PASSWORD, auth: 'ntlm' }, big, join(dir, 'stopped.bin'), { timeoutMs: 30 });
    assert.equal(copy.command.killed, 'timeout');
    assert.equal(copy.verified, false);
    assert.ok(copy.bytes < 8 * 1024 * 1024, 'the rest of the file was not sent');
    assert.equal(server.openShells(), 0);
    assert.equal(server.runningCommands(), 0);
  });

  test('a missing local file fails before any shell is opened', async () => {
    const before = server.actions.length;
    await assert.rejects(copyToWinrm({ url: server.url, username: USER, password: PASSWORD, auth: 'ntlm' }, join(dir, 'nope'), 'C:\\x'), { code: 'ENOENT' });
    assert.equal(server.actions.length, before);
  });
});
