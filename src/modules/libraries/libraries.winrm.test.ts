/**
 * windows-core and library script steps on a winrm target, through POST .../execute, against the
 * WinRM stand-in (test/winrm-server.ts). There is no PowerShell here: the stand-in runs a decoded
 * -EncodedCommand script with `sh`. So these tests assert what reaches the host — read off the wire
 * by a recording HTTPS proxy in front of the stand-in (Basic auth over TLS, so the SOAP inside is
 * plain; the target pins the proxy's certificate) — and that the
 * host's exit code and output come back through the API: the same as `sh` gives for that script.
 * They do not show that PowerShell runs the step correctly.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { makeSelfSignedCert } from '../../../test/tls.ts';
import { startWinrmServer, type WinrmServer } from '../../../test/winrm-server.ts';
import { createTemplateEngine } from '../../shared/templating.ts';
import { ownLibrary, ownStep, uploadBundle } from './libraries.fixtures.ts';

const USER = 'Administrator';
const PASSWORD = 'Library-Step-Secret 1';

/** Command lines (command + arguments) in the SOAP bodies the proxy saw. */
const commandLines = (bodies: string[]) =>
  bodies.flatMap((b) => {
    const command = /<rsp:Command>([^<]*)<\/rsp:Command>/.exec(b)?.[1];
    return command === undefined ? [] : [[command, ...[...b.matchAll(/<rsp:Arguments>([^<]*)<\/rsp:Arguments>/g)].map((m) => m[1] ?? '')]];
  });
const decode = (line: string[]) => Buffer.from(line.at(-1) ?? '', 'base64').toString('utf16le');

describe('library steps over WinRM (stand-in)', () => {
  let ctx: TestContext;
  let winrm: WinrmServer;
  let proxy: ReturnType<typeof createServer>;
  let target: number;
  let cwd: string;
  const bodies: string[] = [];
  const lib = unique('win-');

  before(async () => {
    // The stand-in's emulated copy writes C:\Windows\Temp\… relative to the working directory.
    cwd = mkdtempSync(join(tmpdir(), 'oc-winrm-lib-'));
    process.chdir(cwd);
    ctx = await createTestContext();
    const cert = makeSelfSignedCert();
    winrm = await startWinrmServer({ users: { [USER]: PASSWORD }, tls: { key: cert.key, cert: cert.cert } });
    proxy = createServer({ key: cert.key, cert: cert.cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        bodies.push(body.toString());
        const forward = httpsRequest(`${winrm.url}${req.url ?? '/'}`, { method: req.method, headers: req.headers, rejectUnauthorized: false }, (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        });
        forward.end(body);
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const credential = await ctx.request({ method: 'POST', url: '/credentials', token: ctx.adminToken, payload: { name: unique('c'), type: 'winrm', username: USER, password: PASSWORD, auth: 'basic' } });
    const port = (proxy.address() as AddressInfo).port;
    const created = await ctx.request({ method: 'POST', url: '/targets', token: ctx.adminToken, payload: { name: unique('win'), host: '127.0.0.1', port, os_type: 'windows', protocol: 'winrm', use_tls: true, tls_fingerprint: cert.fingerprint, credential_id: credential.json().id } });
    assert.equal(created.statusCode, 200, created.body);
    target = created.json().id;
    assert.equal((await ctx.request({ method: 'POST', url: '/libraries/windows-core/install', token: ctx.adminToken, payload: {} })).statusCode, 200);
    const script = ownStep('ps_script', { type: 'script', shell: 'powershell', file: 'scripts/hello.ps1' }, ['windows'], { name: { type: 'string', description: 'who', default: "O'Brien" } });
    const up = await uploadBundle(ctx, await ownLibrary(lib, '1.0.0', [script], { 'scripts/hello.ps1': 'echo hello-from-script\n' }));
    assert.equal(up.statusCode, 200, up.body);
  });
  after(async () => {
    await ctx?.close();
    proxy?.closeAllConnections();
    await new Promise((r) => proxy?.close(r));
    await winrm?.close();
    rmSync(cwd, { recursive: true, force: true });
  });

  test('windows-core run_powershell: the rendered step reaches the host as powershell -EncodedCommand; exit code and output come back', async () => {
    bodies.length = 0;
    const userScript = 'echo from-user-script';
    const res = await ctx.request({ method: 'POST', url: '/libraries/windows-core/steps/run_powershell/execute', token: ctx.adminToken, payload: { parameters: { target_id: target, script: userScript } } });
    assert.equal(res.statusCode, 200, res.body);
    const lines = commandLines(bodies);
    assert.equal(lines.length, 1, JSON.stringify(lines));
    const line = lines[0] ?? [];
    assert.deepEqual(line.slice(0, 4), ['powershell', '-NoProfile', '-NonInteractive', '-EncodedCommand']);
    const manifest = JSON.parse(readFileSync(join(import.meta.dirname, '../../../catalog/windows-core/manifest.json'), 'utf8'));
    const step = manifest.steps.find((s: { name: string }) => s.name === 'run_powershell');
    const params = Object.fromEntries(Object.entries(step.parameters as Record<string, { default?: unknown }>).flatMap(([k, d]) => (d.default === undefined ? [] : [[k, d.default]])));
    const expected = createTemplateEngine().render(step.implementation.command, { params: { ...params, script: userScript }, target: {} });
    assert.equal(decode(line), expected);
    assert.ok(decode(line).includes(`ConvertFrom-OcParam '${Buffer.from(userScript).toString('base64')}'`), 'the parameter as a base64 literal');
    // What the stand-in's sh made of that PowerShell, as the API reports it.
    const local = spawnSync('sh', ['-c', expected], { encoding: 'utf8' });
    const { result } = res.json();
    assert.deepEqual([result.exit_code, result.stdout], [local.status, local.stdout]);
    assert.equal(result.status, local.status === 0 ? 'succeeded' : 'failed');
  });

  test('a library script step: the script is copied whole, then run and removed by one PowerShell line', async () => {
    bodies.length = 0;
    const res = await ctx.request({ method: 'POST', url: `/libraries/${lib}/steps/ps_script/execute`, token: ctx.adminToken, payload: { parameters: { target_id: target } } });
    assert.equal(res.statusCode, 200, res.body);
    const lines = commandLines(bodies);
    assert.equal(lines.length, 2, 'the copy, then the run');
    const run = decode(lines[1] ?? []);
    const path = /& '(C:\\Windows\\Temp\\oc-lib-[0-9a-f]{12}-hello\.ps1)'/.exec(run)?.[1];
    assert.ok(path, run);
    assert.equal(run, `$env:OC_PARAM_NAME = 'O''Brien'; try { & '${path}'  } finally { Remove-Item -LiteralPath '${path}' -Force -ErrorAction SilentlyContinue }; exit $LASTEXITCODE`);
    // The emulated copy wrote the exact bytes (sh cannot run the PowerShell line that removes it).
    assert.deepEqual(readdirSync(cwd), [path]);
    assert.equal(readFileSync(join(cwd, path), 'utf8'), 'echo hello-from-script\n');
    const local = spawnSync('sh', ['-c', run], { encoding: 'utf8', cwd: mkdtempSync(join(tmpdir(), 'oc-sh-')) });
    assert.deepEqual([res.json().result.exit_code, res.json().result.stdout], [local.status, local.stdout]);
  });
});
