/**
 * Service identification against real listeners on loopback: the test sshd, http.sys-like and IIS-like
 * HTTP(S) servers, an SMTP greeting, RDP and SMB stand-ins on their own ports (each on a random
 * 127.x.y.z, skipped when the port is taken), a port that accepts and never speaks, a closed one.
 * The classification rules themselves are checked on crafted answers.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';

import { freePort, type Sshd, sshdSkip, startSshd } from '../../test/sshd.ts';
import { makeSelfSignedCert } from '../../test/tls.ts';
import { classifyBanner, classifyHttp, classifyRdpReply, classifySmbReply, identifyHost, identifyHosts, resolveOs, smbNegotiateRequest, sshOsClue } from './identify.ts';
import { findOpenPorts } from './scanner.ts';

const servers: Server[] = [];
const sockets = new Set<Socket>();
after(async () => {
  sockets.forEach((s) => s.destroy());
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

/** Listens on `host:port` (0: any port); undefined when that address is taken or not permitted. */
async function listen(server: Server, port = 0, host = '127.0.0.1'): Promise<number | undefined> {
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    // The prober hangs up as soon as it has its answer, often with a reset: not a failure here.
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, host, () => resolve(true));
  });
  if (ok) {
    servers.push(server);
  }
  return ok ? (server.address() as { port: number }).port : undefined;
}

/** A random 127.x.y.z, so a well-known port there is very unlikely to be in use by another test. */
const randomLoopback = () => `127.${1 + Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.${1 + Math.floor(Math.random() * 250)}`;

/** Answers like http.sys: `Server: Microsoft-HTTPAPI/2.0`, 404 — and 401 Negotiate on POST /wsman when `wsman`. */
function httpApi(wsman: boolean) {
  return (req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('Server', 'Microsoft-HTTPAPI/2.0');
    if (wsman && req.method === 'POST' && req.url === '/wsman') {
      res.writeHead(401, { 'WWW-Authenticate': 'Negotiate' }).end();
    } else {
      res.writeHead(404).end();
    }
  };
}

const silent = () => createServer(() => {});

describe('identifyHost against live listeners', () => {
  test('the test sshd on a non-standard port is ssh on linux, with its banner', { skip: sshdSkip() }, async () => {
    const sshd: Sshd = await startSshd();
    try {
      const scan = await findOpenPorts([sshd.host], [sshd.port]);
      assert.deepEqual(scan.open, [{ host: sshd.host, port: sshd.port }]);
      const [identity] = await identifyHosts(scan.open);
      assert.equal(identity?.ports[0]?.service, 'ssh');
      assert.match(identity?.ports[0]?.banner ?? '', /^SSH-2\.0-OpenSSH/);
      assert.equal(identity?.os, 'linux');
      assert.deepEqual(identity?.services, ['ssh']);
    } finally {
      await sshd.stop();
    }
  });

  test('http.sys answering /wsman on a random port is winrm on windows; one that does not is http', async () => {
    const winrm = await listen(createHttpServer(httpApi(true)));
    const other = await listen(createHttpServer(httpApi(false)));
    const identity = await identifyHost('127.0.0.1', [winrm as number, other as number]);
    assert.deepEqual(identity.ports, [
      { port: winrm, service: 'winrm', banner: 'Microsoft-HTTPAPI/2.0' },
      { port: other, service: 'http', banner: 'Microsoft-HTTPAPI/2.0' },
    ].sort((a, b) => (a.port as number) - (b.port as number)));
    assert.equal(identity.os, 'windows');
  });

  test('http.sys on 5985 is winrm by the port rule (no /wsman needed)', async (t) => {
    const host = randomLoopback();
    if ((await listen(createHttpServer(httpApi(false)), 5985, host)) === undefined) {
      return t.skip(`cannot listen on ${host}:5985`);
    }
    const identity = await identifyHost(host, [5985]);
    assert.deepEqual(identity.ports, [{ port: 5985, service: 'winrm', banner: 'Microsoft-HTTPAPI/2.0' }]);
    assert.equal(identity.os, 'windows');
  });

  test('HTTPS on a random port: plain HEAD is dropped, TLS is tried, IIS says windows', async () => {
    const { key, cert } = makeSelfSignedCert();
    const port = await listen(createHttpsServer({ key, cert }, (_req, res) => res.writeHead(200, { Server: 'Microsoft-IIS/10.0' }).end()));
    const identity = await identifyHost('127.0.0.1', [port as number]);
    assert.deepEqual(identity.ports, [{ port, service: 'https', banner: 'Microsoft-IIS/10.0' }]);
    assert.deepEqual([identity.os, identity.osHint], ['windows', 'IIS 10.0']);
  });

  test('an SMTP greeting, reached through the name localhost', async () => {
    const port = await listen(createServer((s) => s.write('220 mail.example.test ESMTP Postfix (Debian/GNU)\r\n')));
    const identity = await identifyHost('localhost', [port as number]);
    assert.equal(identity.host, 'localhost');
    assert.deepEqual(identity.ports, [{ port, service: 'smtp', banner: '220 mail.example.test ESMTP Postfix (Debian/GNU)' }]);
    assert.deepEqual([identity.os, identity.osHint], ['linux', 'Debian']);
  });

  test('RDP on 3389 answers the X.224 Connection Request; SMB on 445 answers NEGOTIATE', async (t) => {
    const host = randomLoopback();
    const requests: Buffer[] = [];
    const answer = (reply: Buffer) =>
      createServer((s) =>
        s.once('data', (d: Buffer) => {
          requests.push(d);
          s.write(reply);
        }),
      );
    // TPKT, X.224 Connection Confirm, RDP_NEG_RSP selecting CredSSP (2).
    const rdp = await listen(answer(Buffer.from('03000013' + '0ed00000123400' + '0200080002000000', 'hex')), 3389, host);
    const smbReply = Buffer.alloc(4 + 64 + 8);
    smbReply.writeUInt32BE(72, 0);
    smbReply.write('\xfeSMB', 4, 'latin1');
    smbReply.writeUInt16LE(0x0302, 72);
    const smb = await listen(answer(smbReply), 445, host);
    if (rdp === undefined || smb === undefined) {
      return t.skip(`cannot listen on ${host}:3389 and :445`);
    }
    const identity = await identifyHost(host, [445, 3389]);
    assert.deepEqual(identity.ports, [
      { port: 445, service: 'smb', banner: 'SMB2, dialect 3.0.2' },
      { port: 3389, service: 'rdp', banner: 'RDP, CredSSP (NLA)' },
    ]);
    assert.equal(identity.os, 'windows');
    const sent = requests.map((r) => r.toString('hex')).sort();
    assert.deepEqual(sent, [smbNegotiateRequest().toString('hex'), '030000130ee000000000000100080003000000'].sort());
  });

  test('a port that accepts and never speaks falls back to its number, within the timeout', async (t) => {
    const host = randomLoopback();
    const quiet = await listen(silent(), 0, host);
    const smb = await listen(silent(), 445, host);
    const ports = smb === undefined ? [quiet as number] : [quiet as number, 445];
    if (smb === undefined) {
      t.diagnostic(`${host}:445 is taken: only the unknown port is checked`);
    }
    const started = Date.now();
    const identity = await identifyHost(host, ports, { timeoutMs: 800 });
    assert.ok(Date.now() - started < 800 + 400, `took ${Date.now() - started} ms`);
    assert.deepEqual(identity.ports, [...(smb ? [{ port: 445, service: 'smb', banner: null }] : []), { port: quiet, service: 'unknown', banner: null }]);
    assert.deepEqual([identity.os, identity.services], ['unknown', smb ? ['smb'] : []]);
  });

  test('a closed port is named by its number at once', async () => {
    const port = await freePort();
    const started = Date.now();
    const identity = await identifyHost('127.0.0.1', [port]);
    assert.ok(Date.now() - started < 500);
    assert.deepEqual(identity.ports, [{ port, service: 'unknown', banner: null }]);
  });

  test('an abort destroys the sockets and resolves with fallbacks', async () => {
    const ports = [(await listen(silent())) as number, (await listen(silent())) as number];
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const [identity] = await identifyHosts(
      ports.map((port) => ({ host: '127.0.0.1', port })),
      { timeoutMs: 10_000, concurrency: 1, signal: controller.signal },
    );
    assert.ok(Date.now() - started < 1_000, `took ${Date.now() - started} ms`);
    assert.deepEqual(identity?.ports.map((p) => p.service), ['unknown', 'unknown']);
  });
});

describe('classification rules', () => {
  test('classifyHttp: http.sys on the WinRM ports, or answering /wsman, is winrm', () => {
    const api = { server: 'Microsoft-HTTPAPI/2.0' };
    assert.equal(classifyHttp(5985, 'HTTP/1.1 404 Not Found', api).service, 'winrm');
    assert.equal(classifyHttp(5986, 'HTTP/1.1 404 Not Found', api).service, 'winrm');
    assert.deepEqual(classifyHttp(5986, 'HTTP/1.1 404 Not Found', api).clue, { os: 'windows', hint: null, weight: 3 });
    assert.equal(classifyHttp(8080, 'HTTP/1.1 404 Not Found', api).service, 'http');
    assert.equal(classifyHttp(8080, 'HTTP/1.1 404 Not Found', api, { wsman: true }).service, 'winrm');
    assert.equal(classifyHttp(5985, 'HTTP/1.1 200 OK', { server: 'nginx' }).service, 'http');
  });

  test('classifyHttp: Server headers that name an OS, and TLS', () => {
    assert.deepEqual(classifyHttp(80, 'HTTP/1.1 200 OK', { server: 'Microsoft-IIS/10.0' }).clue, { os: 'windows', hint: 'IIS 10.0', weight: 3 });
    assert.deepEqual(classifyHttp(80, 'HTTP/1.1 200 OK', { server: 'Apache/2.4.57 (Debian)' }).clue, { os: 'linux', hint: 'Debian', weight: 2 });
    assert.equal(classifyHttp(80, 'HTTP/1.1 200 OK', { server: 'nginx/1.22.1' }).clue, undefined);
    assert.deepEqual(classifyHttp(443, 'HTTP/1.1 200 OK', {}), { service: 'https', banner: 'HTTP/1.1 200 OK', clue: undefined });
    assert.equal(classifyHttp(8080, 'HTTP/1.1 200 OK', {}, { tls: true }).service, 'https');
  });

  test('SSH banners', () => {
    assert.deepEqual(sshOsClue('SSH-2.0-OpenSSH_9.2p1 Debian-2'), { os: 'linux', hint: 'Debian', weight: 3 });
    assert.deepEqual(sshOsClue('SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6'), { os: 'linux', hint: 'Ubuntu', weight: 3 });
    assert.deepEqual(sshOsClue('SSH-2.0-OpenSSH_7.9p1 Raspbian-10+deb10u2'), { os: 'linux', hint: 'Raspbian', weight: 3 });
    assert.deepEqual(sshOsClue('SSH-2.0-OpenSSH_for_Windows_8.1'), { os: 'windows', hint: null, weight: 3 });
    assert.deepEqual(sshOsClue('SSH-2.0-OpenSSH_9.3 FreeBSD-20230316'), { os: 'unknown', hint: 'FreeBSD', weight: 3 });
    assert.deepEqual(sshOsClue('SSH-2.0-OpenSSH_8.0'), { os: 'linux', hint: null, weight: 1 });
    assert.equal(sshOsClue('SSH-2.0-Cisco-1.25'), undefined);
    assert.equal(classifyBanner(2222, 'SSH-2.0-OpenSSH_8.0\r\n').service, 'ssh');
  });

  test('220 greetings, other banners and the printable first line', () => {
    assert.equal(classifyBanner(21, '220 (vsFTPd 3.0.3)\r\n').service, 'ftp');
    assert.equal(classifyBanner(2121, '220 ProFTPD Server ready\r\n').service, 'ftp');
    assert.equal(classifyBanner(25, '220 mx ready\r\n').service, 'smtp');
    assert.deepEqual(classifyBanner(2525, '220 host Microsoft ESMTP MAIL Service ready\r\n').clue, { os: 'windows', hint: null, weight: 2 });
    assert.deepEqual(classifyBanner(9999, Buffer.from(`\x00\x01hello\tworld ${'x'.repeat(300)}\r\nsecond line`, 'latin1')), { service: 'unknown', banner: `helloworld ${'x'.repeat(189)}` });
  });

  test('RDP and SMB replies', () => {
    assert.equal(classifyRdpReply(Buffer.from('0300000b06d00000123400', 'hex'))?.banner, 'RDP');
    assert.equal(classifyRdpReply(Buffer.from('HTTP/1.1 400 Bad Request')), undefined);
    const samba = Buffer.concat([Buffer.from('00000050', 'hex'), Buffer.from('\xfeSMB', 'latin1'), Buffer.alloc(68), Buffer.from('Samba', 'utf16le')]);
    assert.deepEqual(classifySmbReply(samba)?.clue, { os: 'linux', hint: 'Samba', weight: 2 });
    assert.equal(classifySmbReply(Buffer.from('0000001bff534d4272', 'hex'))?.banner, 'SMB1');
    assert.equal(classifySmbReply(Buffer.from('garbage here')), undefined);
  });

  test('resolveOs: the strongest clue wins, the first on a tie', () => {
    assert.deepEqual(resolveOs([]), { os: 'unknown', osHint: null });
    assert.deepEqual(resolveOs([{ os: 'windows', hint: null, weight: 1 }, { os: 'linux', hint: 'Debian', weight: 3 }]), { os: 'linux', osHint: 'Debian' });
    assert.deepEqual(resolveOs([{ os: 'windows', hint: null, weight: 3 }, undefined, { os: 'windows', hint: 'IIS 10.0', weight: 3 }]), { os: 'windows', osHint: 'IIS 10.0' });
  });
});
