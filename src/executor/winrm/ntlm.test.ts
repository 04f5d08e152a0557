/**
 * NTLM primitives against published vectors: MD4 (RFC 1320 A.5), RC4 (the classic key/plaintext
 * triples), and NTLMv2 with extended session security from MS-NLMP §4.2.4, byte for byte.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';

import { pywinrmSkip, runPeer } from '../../../test/peers/python.ts';
import { md4 } from './md4.ts';
import {
  acceptAuthenticate,
  authenticateMessage,
  challengeMessage,
  createNtlmSession,
  negotiateMessage,
  NtlmError,
  ntlmv2Response,
  ntowfv2,
  parseChallenge,
  sessionKeys,
  targetInfo,
} from './ntlm.ts';
import { createRc4 } from './rc4.ts';

const hex = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

describe('MD4 (RFC 1320 test suite)', () => {
  const suite: Array<[string, string]> = [
    ['', '31d6cfe0d16ae931b73c59d7e0c089c0'],
    ['a', 'bde52cb31de33e46245e05fbdbd6fb24'],
    ['abc', 'a448017aaf21d8525fc10ae87aa6729d'],
    ['message digest', 'd9130a8164549fe818874806e1c7014b'],
    ['abcdefghijklmnopqrstuvwxyz', 'd79e1c308aa5bbcdeea8ed63df412da9'],
    ['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789', '043f8582f241db351ce627e153e7f0e4'],
    ['1234567890'.repeat(8), 'e33b4ddc9c38f2199c3e7b164fcc0536'],
  ];
  for (const [input, digest] of suite) {
    test(`md4(${JSON.stringify(input.slice(0, 16))}${input.length > 16 ? '…' : ''})`, () => {
      assert.equal(md4(Buffer.from(input)).toString('hex'), digest);
    });
  }
});

describe('RC4', () => {
  for (const [key, plaintext, ciphertext] of [
    ['Key', 'Plaintext', 'bbf316e8d940af0ad3'],
    ['Wiki', 'pedia', '1021bf0420'],
    ['Secret', 'Attack at dawn', '45a01f645fc35b383552544b9bf5'],
  ]) {
    test(`RC4("${key}", "${plaintext}")`, () => {
      assert.equal(createRc4(Buffer.from(key as string)).update(Buffer.from(plaintext as string)).toString('hex'), ciphertext);
    });
  }

  test('a handle keeps its keystream position across calls', () => {
    const whole = createRc4(Buffer.from('Secret')).update(Buffer.from('Attack at dawn'));
    const stream = createRc4(Buffer.from('Secret'));
    assert.deepEqual(Buffer.concat([stream.update(Buffer.from('Attack ')), stream.update(Buffer.from('at dawn'))]), whole);
  });
});

describe('NTLMv2 (MS-NLMP §4.2.4)', () => {
  // §4.2.1 common values.
  const user = 'User';
  const domain = 'Domain';
  const password = 'Password';
  const randomSessionKey = Buffer.alloc(16, 0x55);
  const time = Buffer.alloc(8);
  const clientChallenge = Buffer.alloc(8, 0xaa);
  const serverChallenge = hex('0123456789abcdef');
  const flags = 0xe2888233;
  const info = targetInfo({ domain, computer: 'Server' });
  const challenge = parseChallenge(challengeMessage({ flags, serverChallenge, domain, targetInfo: info }));

  test('the challenge as built and parsed carries the spec’s flags, server challenge and AV pairs', () => {
    assert.equal(challenge.flags, flags);
    assert.deepEqual(challenge.serverChallenge, serverChallenge);
    assert.equal(challenge.targetInfo.toString('hex'), '02000c0044006f006d00610069006e0001000c0053006500720076006500720000000000');
  });

  test('NTOWFv2 (§4.2.4.1.1)', () => {
    assert.equal(ntowfv2(user, password, domain).toString('hex'), '0c868a403bfd7a93a3001ef22ef02e3f');
  });

  test('LMv2 and NTLMv2 responses and the session base key (§4.2.4.1.2, §4.2.4.2.1–2)', () => {
    const response = ntlmv2Response({ responseKey: ntowfv2(user, password, domain), serverChallenge, clientChallenge, time, targetInfo: challenge.targetInfo, omitLm: false });
    assert.equal(response.lmChallengeResponse.toString('hex'), '86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa');
    assert.equal(response.ntProofStr.toString('hex'), '68cd0ab851e51c96aabc927bebef6a1c');
    assert.equal(response.sessionBaseKey.toString('hex'), '8de40ccadbc14a82f15cb0ad0de95ca3');
    assert.equal(
      response.ntChallengeResponse.subarray(16).toString('hex'),
      '01010000000000000000000000000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e0001000c005300650072007600650072000000000000000000',
    );
  });

  const authenticate = () => authenticateMessage({ user, password, domain, workstation: 'COMPUTER', negotiate: negotiateMessage(), challenge, clientChallenge, exportedSessionKey: randomSessionKey, time });
  const fieldOf = (message: Buffer, at: number) => message.subarray(message.readUInt32LE(at + 4), message.readUInt32LE(at + 4) + message.readUInt16LE(at));

  test('the AUTHENTICATE message carries the spec’s responses, names and encrypted session key (§4.2.4.2.3)', () => {
    const { message } = authenticate();
    assert.equal(message.subarray(0, 12).toString('hex'), '4e544c4d5353500003000000');
    assert.equal(fieldOf(message, 12).toString('hex'), '86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa');
    assert.equal(fieldOf(message, 20).subarray(0, 16).toString('hex'), '68cd0ab851e51c96aabc927bebef6a1c');
    assert.equal(fieldOf(message, 28).toString('utf16le'), 'Domain');
    assert.equal(fieldOf(message, 36).toString('utf16le'), 'User');
    assert.equal(fieldOf(message, 44).toString('utf16le'), 'COMPUTER');
    assert.equal(fieldOf(message, 52).toString('hex'), 'c5dad2544fc9799094ce1ce90bc9d03e');
    assert.deepEqual(message.subarray(72, 88), Buffer.alloc(16), 'no timestamp from the server: no MIC');
  });

  test('sealing and signing keys, and GSS_WrapEx of "Plaintext" (§4.2.4.4)', () => {
    const keys = sessionKeys(flags, randomSessionKey, 'client');
    assert.equal(keys.sealKey.toString('hex'), '59f600973cc4960a25480a7c196e4c58');
    assert.equal(keys.signKey.toString('hex'), '4788dc861b4782f35d43fd98fe1a2d39');
    const { sealed, signature } = authenticate().session.seal(Buffer.from('Plaintext', 'utf16le'));
    assert.equal(sealed.toString('hex'), '54e50165bf1936dc996020c1811b0f06fb5f');
    assert.equal(signature.toString('hex'), '010000007fb38ec5c55d497600000000');
  });

  test('the server side unseals what the client sealed, in sequence; a changed byte or a replay is refused', () => {
    const client = createNtlmSession(flags, randomSessionKey, 'client');
    const server = createNtlmSession(flags, randomSessionKey, 'server');
    const first = client.seal(Buffer.from('<Envelope>one</Envelope>'));
    const second = client.seal(Buffer.from('<Envelope>two</Envelope>'));
    assert.equal(server.unseal(first.sealed, first.signature).toString(), '<Envelope>one</Envelope>');
    const tampered = Buffer.from(second.sealed);
    tampered[3] = (tampered[3] as number) ^ 1;
    assert.throws(() => server.unseal(tampered, second.signature), NtlmError);
    const replayServer = createNtlmSession(flags, randomSessionKey, 'server');
    assert.throws(() => replayServer.unseal(second.sealed, second.signature), NtlmError, 'sequence 1 where 0 is expected');
    const reply = server.seal(Buffer.from('<Envelope>answer</Envelope>'));
    assert.equal(client.unseal(reply.sealed, reply.signature).toString(), '<Envelope>answer</Envelope>');
  });

  test('with a server timestamp: empty LM response, MIC flag in the AV pairs, MIC over all three messages', () => {
    const stamp = hex('0090d336b734c301');
    const timed = parseChallenge(challengeMessage({ flags, serverChallenge, domain, targetInfo: targetInfo({ domain, computer: 'Server', timestamp: stamp }) }));
    const negotiate = negotiateMessage();
    const { message } = authenticateMessage({ user, password, domain, negotiate, challenge: timed, clientChallenge, exportedSessionKey: randomSessionKey });
    assert.deepEqual(fieldOf(message, 12), Buffer.alloc(24));
    const blob = fieldOf(message, 20).subarray(16);
    assert.deepEqual(blob.subarray(8, 16), stamp, 'the response uses the server’s time');
    assert.ok(blob.includes(hex('06000400 02000000')), 'MsvAvFlags says a MIC is present');
    const zeroed = Buffer.from(message);
    Buffer.alloc(16).copy(zeroed, 72);
    const mic = createHmac('md5', randomSessionKey).update(negotiate).update(timed.raw).update(zeroed).digest();
    assert.deepEqual(message.subarray(72, 88), mic);
  });

  test('a message that is not a CHALLENGE, or a server without extended session security, is refused', () => {
    assert.throws(() => parseChallenge(negotiateMessage()), NtlmError);
    assert.throws(() => parseChallenge(Buffer.from('garbage')), NtlmError);
    const old = parseChallenge(challengeMessage({ flags: 0x00000201, serverChallenge, domain, targetInfo: info }));
    assert.throws(() => authenticateMessage({ user, password, domain, negotiate: negotiateMessage(), challenge: old }), /extended session security/);
  });
});

describe('NTLM server side (acceptAuthenticate)', () => {
  const serverChallenge = Buffer.from('0123456789abcdef', 'hex');
  const stamp = Buffer.from('0090d336b734c301', 'hex');
  const challenge = challengeMessage({ flags: 0xe2888233, serverChallenge, domain: 'Domain', targetInfo: targetInfo({ domain: 'Domain', computer: 'Server', timestamp: stamp }) });
  const passwordOf = (user: string, domain: string) => (user.toLowerCase() === 'user' && domain === 'Domain' ? 'Password' : undefined);

  test('accepts our client (MIC checked) and both sides then seal for each other', () => {
    const negotiate = negotiateMessage();
    const client = authenticateMessage({ user: 'User', password: 'Password', domain: 'Domain', negotiate, challenge: parseChallenge(challenge) });
    const accepted = acceptAuthenticate({ message: client.message, negotiate, challenge, passwordOf });
    assert.equal(accepted.user, 'User');
    const request = client.session.seal(Buffer.from('request'));
    assert.equal(accepted.session.unseal(request.sealed, request.signature).toString(), 'request');
    const reply = accepted.session.seal(Buffer.from('reply'));
    assert.equal(client.session.unseal(reply.sealed, reply.signature).toString(), 'reply');
  });

  test('a wrong password, an unknown user or a changed message is refused', () => {
    const negotiate = negotiateMessage();
    const answer = (password: string, user = 'User') => authenticateMessage({ user, password, domain: 'Domain', negotiate, challenge: parseChallenge(challenge) }).message;
    assert.throws(() => acceptAuthenticate({ message: answer('wrong'), negotiate, challenge, passwordOf }), /authentication failed/);
    assert.throws(() => acceptAuthenticate({ message: answer('Password', 'Mallory'), negotiate, challenge, passwordOf }), /authentication failed/);
    const renamed = answer('Password');
    renamed[60] = (renamed[60] as number) ^ 0x10; // the negotiated flags, covered only by the MIC
    assert.throws(() => acceptAuthenticate({ message: renamed, negotiate, challenge, passwordOf }), /MIC/);
  });

  test('accepts ntlm-auth (pywinrm’s NTLM client) and opens what it sealed', { skip: pywinrmSkip() }, async () => {
    const peer = await runPeer<{ negotiate: string; authenticate: string; wrapped: string }>('ntlm_client.py', {
      user: 'User',
      password: 'Password',
      domain: 'Domain',
      challenge: challenge.toString('base64'),
      message: '<s:Envelope>from the peer</s:Envelope>',
    });
    const accepted = acceptAuthenticate({ message: Buffer.from(peer.authenticate, 'base64'), negotiate: Buffer.from(peer.negotiate, 'base64'), challenge, passwordOf });
    const wrapped = Buffer.from(peer.wrapped, 'base64');
    assert.equal(accepted.session.unseal(wrapped.subarray(16), wrapped.subarray(0, 16)).toString(), '<s:Envelope>from the peer</s:Envelope>');
  });
});
