/**
 * WinRM message encryption: our framing and sealing round-trip, refuse tampering, and interoperate
 * with pywinrm's (a WinRM client nobody here wrote) in both directions.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';

import { pywinrmSkip, runPeer } from '../../../test/peers/python.ts';

import { decryptMessage, encryptMessage, isEncrypted, ENCRYPTED_CONTENT_TYPE } from './encryption.ts';
import { CLIENT_FLAGS, createNtlmSession, NtlmError } from './ntlm.ts';

const soap = (text: string) => Buffer.from(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>${text}</s:Body></s:Envelope>`);

describe('WinRM message encryption', () => {
  const key = randomBytes(16);

  test('a body sealed by the client opens on the server and back, in sequence', () => {
    const client = createNtlmSession(CLIENT_FLAGS, key, 'client');
    const server = createNtlmSession(CLIENT_FLAGS, key, 'server');
    for (const text of ['first', 'second ü <&>', 'x'.repeat(70_000)]) {
      const body = encryptMessage(client, soap(text));
      assert.ok(!body.includes(Buffer.from(text.slice(0, 20))), 'the SOAP text does not travel in clear');
      assert.deepEqual(decryptMessage(server, body), soap(text));
    }
    assert.deepEqual(decryptMessage(client, encryptMessage(server, soap('reply'))), soap('reply'));
    assert.ok(isEncrypted(ENCRYPTED_CONTENT_TYPE));
    assert.ok(!isEncrypted('application/soap+xml;charset=UTF-8'));
  });

  test('a changed sealed byte, a wrong length header or a body that is not encrypted is refused', () => {
    const client = createNtlmSession(CLIENT_FLAGS, key, 'client');
    const tampered = encryptMessage(client, soap('payload'));
    tampered[tampered.length - 40] = (tampered[tampered.length - 40] as number) ^ 0xff;
    assert.throws(() => decryptMessage(createNtlmSession(CLIENT_FLAGS, key, 'server'), tampered), NtlmError);
    const relabelled = Buffer.from(encryptMessage(createNtlmSession(CLIENT_FLAGS, key, 'client'), soap('payload')).toString('latin1').replace(/Length=\d+/, 'Length=3'), 'latin1');
    assert.throws(() => decryptMessage(createNtlmSession(CLIENT_FLAGS, key, 'server'), relabelled), /length/);
    assert.throws(() => decryptMessage(createNtlmSession(CLIENT_FLAGS, key, 'server'), soap('plain')), NtlmError);
  });

  test('interoperates with pywinrm: its sealed requests open here, our sealed reply opens there', { skip: pywinrmSkip() }, async () => {
    const server = createNtlmSession(CLIENT_FLAGS, key, 'server');
    const reply = soap('<rsp:Shell>reply from our side ü</rsp:Shell>');
    const messages = ['<w:Create/>', '<rsp:CommandLine><rsp:Command>echo &lt;ok&gt;</rsp:Command></rsp:CommandLine>'];
    const peer = await runPeer<{ requests: string[]; reply: string }>('pywinrm_encryption.py', {
      flags: CLIENT_FLAGS,
      key: key.toString('hex'),
      reply: encryptMessage(server, reply).toString('base64'),
      messages,
    });
    assert.equal(peer.reply, reply.toString('utf8'));
    assert.deepEqual(
      peer.requests.map((b64) => decryptMessage(server, Buffer.from(b64, 'base64')).toString('utf8')),
      messages,
    );
  });
});
