/**
 * A host that accepts the connection and then never answers: a step's timeout and a cancel must
 * end the call while it is still connecting or starting the command, not after undici's own
 * timeouts; without either, the answer bound (operation timeout + 15 s) ends it.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createServer as createTlsServer } from 'node:tls';

import { makeSelfSignedCert } from '../../../test/tls.ts';
import { startWinrmServer } from '../../../test/winrm-server.ts';
import { identify, runWinrmCommand, WinrmError, type WinrmOptions } from './client.ts';

/** Listens on loopback, keeps every connection open and never writes a byte (over TLS: after the handshake). */
async function silent(server: Server, event: 'connection' | 'secureConnection'): Promise<{ port: number; received: () => number; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  let received = 0;
  server.on(event, (socket: Socket) => {
    sockets.add(socket);
    socket.on('data', (c: Buffer) => (received += c.length));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    received: () => received,
    close: async () => {
      sockets.forEach((s) => s.destroy());
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('WinRM client against a host that never answers', () => {
  const cert = makeSelfSignedCert('IP:127.0.0.1');
  let plain: Awaited<ReturnType<typeof silent>>;
  let tls: Awaited<ReturnType<typeof silent>>;
  before(async () => {
    plain = await silent(createServer(), 'connection');
    tls = await silent(createTlsServer({ key: cert.key, cert: cert.cert }), 'secureConnection');
  });
  after(async () => {
    await Promise.all([plain?.close(), tls?.close()]);
  });

  const ntlmOverHttp = (): WinrmOptions => ({ url: `http://127.0.0.1:${plain.port}/wsman`, username: 'ops', password: 'pw', auth: 'ntlm', operationTimeoutS: 1 });
  // Basic over HTTPS: the first request is the shell's Create, so this stops that send.
  const basicOverHttps = (): WinrmOptions => ({
    url: `https://127.0.0.1:${tls.port}/wsman`,
    username: 'ops',
    password: 'pw',
    auth: 'basic',
    operationTimeoutS: 1,
    tls: { verify: true, fingerprint: cert.fingerprint },
  });
  const within = async <T>(ms: number, call: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const result = await call();
    assert.ok(Date.now() - started < ms, `returned after ${Date.now() - started} ms (bound ${ms})`);
    return result;
  };

  for (const [name, options] of [
    ['NTLM over HTTP, stopped in the handshake', ntlmOverHttp],
    ['Basic over HTTPS, stopped in the Create send', basicOverHttps],
  ] as const) {
    test(`${name}: a 500 ms timeout returns killed 'timeout' promptly, with nothing run`, async () => {
      const before = (name.startsWith('NTLM') ? plain : tls).received();
      const result = await within(5000, () => runWinrmCommand(options(), 'echo never', [], { timeoutMs: 500 }));
      assert.deepEqual(result, { stdout: '', stderr: '', exitCode: null, killed: 'timeout' });
      assert.ok((name.startsWith('NTLM') ? plain : tls).received() > before, 'the request did reach the host');
    });

    test(`${name}: an abort returns killed 'aborted' promptly`, async () => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 300);
      const result = await within(5000, () => runWinrmCommand(options(), 'echo never', [], { signal: controller.signal }));
      assert.deepEqual(result, { stdout: '', stderr: '', exitCode: null, killed: 'aborted' });
    });
  }

  test('identify with a 500 ms bound rejects as offline promptly; an abort rejects with the abort error', async () => {
    await within(5000, () =>
      assert.rejects(identify(ntlmOverHttp(), { timeoutMs: 500 }), (e: unknown) => {
        assert.ok(e instanceof WinrmError && e.kind === 'offline', String(e));
        assert.match(e.message, /did not answer an Identify within 500 ms/);
        return true;
      }),
    );
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    await within(5000, () => assert.rejects(identify(basicOverHttps(), { signal: controller.signal }), { name: 'AbortError' }));
  });

  test('without a timeout, the answer bound (operation timeout + 15 s) ends the wait as offline', async () => {
    await within(30_000, () =>
      assert.rejects(identify(ntlmOverHttp()), (e: unknown) => {
        assert.ok(e instanceof WinrmError && e.kind === 'offline', String(e));
        assert.match(e.message, /did not answer in time/);
        return true;
      }),
    );
  });

  test('a host that goes silent once the command is sent: the stop returns within the clean-up bound, not the answer bound', async () => {
    const stand = await startWinrmServer({ users: { ops: 'pw' }, silentFrom: 'Command' });
    try {
      // operationTimeoutS 20 (the default): unbounded, the clean-up would wait 35 s for each answer.
      const options: WinrmOptions = { url: stand.url, username: 'ops', password: 'pw', auth: 'ntlm' };
      const result = await within(10_000, () => runWinrmCommand(options, 'echo never', [], { timeoutMs: 500 }));
      assert.deepEqual(result, { stdout: '', stderr: '', exitCode: null, killed: 'timeout' });
      assert.deepEqual(stand.actions, ['Create', 'Command', 'Delete'], 'the clean-up tried to delete the shell');
    } finally {
      await stand.close();
    }
  });
});
