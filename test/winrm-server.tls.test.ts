/**
 * The WinRM stand-in over HTTPS is faithful: pywinrm runs commands against it over Basic and over
 * NTLM — which pywinrm, like Windows clients, does not seal over TLS, so the stand-in must take
 * plain SOAP on the NTLM-authenticated connection — and validates or refuses its certificate the
 * way our client does.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { pywinrmSkip, runPeer } from './peers/python.ts';
import { makeSelfSignedCert } from './tls.ts';
import { startWinrmServer, type WinrmServer } from './winrm-server.ts';

const USER = 'winrm-user';
const PASSWORD = 'Winrm pässword <&>';

type Result = Array<{ status: number; stdout: string; stderr: string }> | { error: string };

describe('WinRM stand-in over HTTPS, driven by pywinrm', { skip: pywinrmSkip() }, () => {
  const cert = makeSelfSignedCert('IP:127.0.0.1');
  let server: WinrmServer;
  const errors: unknown[] = [];
  before(async () => {
    server = await startWinrmServer({ users: { [USER]: PASSWORD }, maxOperationTimeoutMs: 400, onError: (err) => errors.push(err), tls: { key: cert.key, cert: cert.cert } });
  });
  after(() => server?.close());

  const run = (transport: 'basic' | 'ntlm', trust: { cert_validation: 'validate' | 'ignore'; ca_trust_path?: string }, commands: string[][]): Promise<Result> =>
    // message_encryption 'auto': pywinrm seals NTLM messages over http only.
    runPeer<Result>('pywinrm_run.py', { url: server.url, transport, user: USER, password: PASSWORD, encryption: 'auto', commands, ...trust });
  const decode = (b64: string) => Buffer.from(b64, 'base64').toString('utf8');

  for (const transport of ['basic', 'ntlm'] as const) {
    test(`${transport}, validation off: commands run, over plain SOAP only`, async () => {
      const seen = { ...server.messages };
      const results = await run(transport, { cert_validation: 'ignore' }, [['echo out; echo err >&2; exit 3'], ['sleep 1; echo late']]);
      assert.deepEqual(errors, [], 'the stand-in failed on no request');
      assert.ok(Array.isArray(results), JSON.stringify(results));
      assert.deepEqual(
        results.map((r) => [r.status, decode(r.stdout), decode(r.stderr)]),
        [
          [3, 'out\n', 'err\n'],
          [0, 'late\n', ''],
        ],
      );
      assert.equal(server.messages.encrypted, seen.encrypted, 'pywinrm sealed nothing over TLS');
      assert.ok(server.messages.plain - seen.plain >= 10);
      assert.equal(server.openShells(), 0);
    });
  }

  test('pywinrm refuses the self-signed certificate when validating, and accepts it once it trusts it', async () => {
    const refused = await run('ntlm', { cert_validation: 'validate' }, [['echo', 'never']]);
    assert.ok(!Array.isArray(refused) && /SSL|certificate/i.test(refused.error), JSON.stringify(refused));
    const trusted = await run('ntlm', { cert_validation: 'validate', ca_trust_path: cert.certPath }, [['echo', 'trusted']]);
    assert.ok(Array.isArray(trusted), JSON.stringify(trusted));
    assert.equal(decode(trusted[0]?.stdout ?? ''), 'trusted\n');
  });
});
