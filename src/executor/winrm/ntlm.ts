/**
 * NTLMv2 (MS-NLMP), client side: the NEGOTIATE and AUTHENTICATE messages for a server's
 * CHALLENGE, and the session security (sealing and signing with extended session security and
 * key exchange) that WinRM over HTTP needs to encrypt its messages. Pure functions over buffers;
 * MD4 and RC4 are our own (Node 20's OpenSSL has neither by default).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

import { md4 } from './md4.ts';
import { createRc4, type Rc4 } from './rc4.ts';

/** NegotiateFlags bits used here (MS-NLMP 2.2.2.5). */
export const NTLM_FLAG = {
  unicode: 0x00000001,
  requestTarget: 0x00000004,
  sign: 0x00000010,
  seal: 0x00000020,
  ntlm: 0x00000200,
  alwaysSign: 0x00008000,
  extendedSessionSecurity: 0x00080000,
  targetInfo: 0x00800000,
  version: 0x02000000,
  bits128: 0x20000000,
  keyExchange: 0x40000000,
  bits56: 0x80000000,
} as const;

/** What a client asks for: NTLMv2 with extended session security, 128-bit keys, key exchange, sealing. */
export const CLIENT_FLAGS =
  (NTLM_FLAG.unicode |
    NTLM_FLAG.requestTarget |
    NTLM_FLAG.sign |
    NTLM_FLAG.seal |
    NTLM_FLAG.ntlm |
    NTLM_FLAG.alwaysSign |
    NTLM_FLAG.extendedSessionSecurity |
    NTLM_FLAG.bits128 |
    NTLM_FLAG.keyExchange |
    NTLM_FLAG.bits56) >>>
  0;

const SIGNATURE = Buffer.from('NTLMSSP\0', 'latin1');
/** AV_PAIR ids (MS-NLMP 2.2.2.1). */
const AV = { eol: 0, nbComputerName: 1, nbDomainName: 2, flags: 6, timestamp: 7 } as const;
const AV_FLAG_MIC_PRESENT = 0x2;

/** A thrown NTLM protocol failure (malformed message, unsupported options). */
export class NtlmError extends Error {
  override name = 'NtlmError';
}

const utf16 = (text: string) => Buffer.from(text, 'utf16le');
const hmacMd5 = (key: Buffer, ...parts: Buffer[]) => parts.reduce((h, p) => h.update(p), createHmac('md5', key)).digest();
const md5 = (...parts: Buffer[]) => parts.reduce((h, p) => h.update(p), createHash('md5')).digest();

/** NTOWFv2 (= LMOWFv2): HMAC-MD5 of the upper-cased user and the domain, keyed with MD4 of the password. */
export function ntowfv2(user: string, password: string, domain: string): Buffer {
  return hmacMd5(md4(utf16(password)), utf16(user.toUpperCase() + domain));
}

/** The NEGOTIATE_MESSAGE (no domain or workstation supplied). */
export function negotiateMessage(flags: number = CLIENT_FLAGS): Buffer {
  const message = Buffer.alloc(32);
  SIGNATURE.copy(message);
  message.writeUInt32LE(1, 8);
  message.writeUInt32LE(flags >>> 0, 12);
  // Domain and workstation fields: empty, pointing at the end of the message.
  message.writeUInt32LE(32, 20);
  message.writeUInt32LE(32, 28);
  return message;
}

/** A parsed CHALLENGE_MESSAGE. */
export interface Challenge {
  flags: number;
  serverChallenge: Buffer;
  targetInfo: Buffer;
  /** The message as received (the MIC covers it). */
  raw: Buffer;
}

function field(message: Buffer, at: number): Buffer {
  const length = message.readUInt16LE(at);
  const offset = message.readUInt32LE(at + 4);
  if (offset + length > message.length) {
    throw new NtlmError('NTLM message field points outside the message');
  }
  return message.subarray(offset, offset + length);
}

/** Parses a CHALLENGE_MESSAGE; throws {@link NtlmError} if it is not one. */
export function parseChallenge(message: Buffer): Challenge {
  if (message.length < 48 || !message.subarray(0, 8).equals(SIGNATURE) || message.readUInt32LE(8) !== 2) {
    throw new NtlmError('not an NTLM CHALLENGE message');
  }
  return { flags: message.readUInt32LE(20), serverChallenge: Buffer.from(message.subarray(24, 32)), targetInfo: Buffer.from(field(message, 40)), raw: Buffer.from(message) };
}

/** AV pairs of a TargetInfo block, without the terminating MsvAvEOL. */
function avPairs(targetInfo: Buffer): Array<{ id: number; value: Buffer }> {
  const pairs: Array<{ id: number; value: Buffer }> = [];
  for (let at = 0; at + 4 <= targetInfo.length; ) {
    const id = targetInfo.readUInt16LE(at);
    const length = targetInfo.readUInt16LE(at + 2);
    if (id === AV.eol) {
      break;
    }
    pairs.push({ id, value: targetInfo.subarray(at + 4, at + 4 + length) });
    at += 4 + length;
  }
  return pairs;
}

function encodeAvPairs(pairs: Array<{ id: number; value: Buffer }>): Buffer {
  const parts = pairs.map(({ id, value }) => {
    const head = Buffer.alloc(4);
    head.writeUInt16LE(id);
    head.writeUInt16LE(value.length, 2);
    return Buffer.concat([head, value]);
  });
  return Buffer.concat([...parts, Buffer.alloc(4)]);
}

/** A server's TargetInfo: NetBIOS domain and computer names, and a timestamp when given. */
export function targetInfo(options: { domain: string; computer: string; timestamp?: Buffer }): Buffer {
  return encodeAvPairs([
    { id: AV.nbDomainName, value: utf16(options.domain) },
    { id: AV.nbComputerName, value: utf16(options.computer) },
    ...(options.timestamp ? [{ id: AV.timestamp, value: options.timestamp }] : []),
  ]);
}

/** A CHALLENGE_MESSAGE (the server's side of the exchange), target name = the domain. */
export function challengeMessage(options: { flags: number; serverChallenge: Buffer; domain: string; targetInfo: Buffer }): Buffer {
  const name = utf16(options.domain);
  const header = Buffer.alloc(48);
  SIGNATURE.copy(header);
  header.writeUInt32LE(2, 8);
  header.writeUInt16LE(name.length, 12);
  header.writeUInt16LE(name.length, 14);
  header.writeUInt32LE(48, 16);
  header.writeUInt32LE((options.flags | NTLM_FLAG.targetInfo) >>> 0, 20);
  options.serverChallenge.copy(header, 24);
  header.writeUInt16LE(options.targetInfo.length, 40);
  header.writeUInt16LE(options.targetInfo.length, 42);
  header.writeUInt32LE(48 + name.length, 44);
  return Buffer.concat([header, name, options.targetInfo]);
}

/** Windows FILETIME now: 100 ns ticks since 1601-01-01, little-endian. */
function fileTimeNow(): Buffer {
  const time = Buffer.alloc(8);
  time.writeBigUInt64LE((BigInt(Date.now()) + 11_644_473_600_000n) * 10_000n);
  return time;
}

/** The NTLMv2 responses and session base key for one challenge (MS-NLMP 3.3.2). */
export function ntlmv2Response(options: { responseKey: Buffer; serverChallenge: Buffer; clientChallenge: Buffer; time: Buffer; targetInfo: Buffer; omitLm: boolean }) {
  const { responseKey, serverChallenge, clientChallenge, time, targetInfo } = options;
  const temp = Buffer.concat([Buffer.from([1, 1, 0, 0, 0, 0, 0, 0]), time, clientChallenge, Buffer.alloc(4), targetInfo, Buffer.alloc(4)]);
  const ntProofStr = hmacMd5(responseKey, serverChallenge, temp);
  return {
    ntProofStr,
    ntChallengeResponse: Buffer.concat([ntProofStr, temp]),
    lmChallengeResponse: options.omitLm ? Buffer.alloc(24) : Buffer.concat([hmacMd5(responseKey, serverChallenge, clientChallenge), clientChallenge]),
    sessionBaseKey: hmacMd5(responseKey, ntProofStr),
  };
}

/** Who the session keys are for: a client seals with the client-to-server keys, a server with the others. */
export type NtlmSide = 'client' | 'server';

/** Credentials and the exchange so far, for the AUTHENTICATE_MESSAGE. */
export interface AuthenticateInput {
  user: string;
  password: string;
  domain: string;
  workstation?: string;
  negotiate: Buffer;
  challenge: Challenge;
  /** Fixed only by tests: the spec's examples use known values. */
  clientChallenge?: Buffer;
  exportedSessionKey?: Buffer;
  time?: Buffer;
}

/**
 * The TargetInfo the client answers with, and the server's timestamp if it sent one. With a
 * timestamp the client will send a MIC, so it says so in MsvAvFlags (adding the pair if missing).
 */
function answerTargetInfo(challenge: Challenge): { targetInfo: Buffer; serverTime?: Buffer } {
  const pairs = avPairs(challenge.targetInfo);
  const serverTime = pairs.find((p) => p.id === AV.timestamp)?.value;
  if (serverTime === undefined) {
    return { targetInfo: challenge.targetInfo };
  }
  const avFlags = pairs.find((p) => p.id === AV.flags);
  const value = Buffer.alloc(4);
  value.writeUInt32LE(((avFlags ? avFlags.value.readUInt32LE(0) : 0) | AV_FLAG_MIC_PRESENT) >>> 0);
  if (avFlags) {
    avFlags.value = value;
  } else {
    pairs.push({ id: AV.flags, value });
  }
  return { targetInfo: encodeAvPairs(pairs), serverTime };
}

/** Lays out an AUTHENTICATE_MESSAGE with a zero MIC. */
function encodeAuthenticate(
  flags: number,
  fields: Pick<AuthenticateInput, 'domain' | 'user' | 'workstation'> & { lmChallengeResponse: Buffer; ntChallengeResponse: Buffer; encryptedKey: Buffer },
): Buffer {
  // Header: signature, type, then (length, max length, offset) of each payload field at these
  // positions, the flags at 60, a zero version at 64 and the MIC at 72; the payload follows.
  const HEADER = 88;
  const header = Buffer.alloc(HEADER);
  SIGNATURE.copy(header);
  header.writeUInt32LE(3, 8);
  const payload: Array<[number, Buffer]> = [
    [28, utf16(fields.domain)],
    [36, utf16(fields.user)],
    [44, utf16(fields.workstation ?? '')],
    [12, fields.lmChallengeResponse],
    [20, fields.ntChallengeResponse],
    [52, fields.encryptedKey],
  ];
  let offset = HEADER;
  for (const [at, part] of payload) {
    header.writeUInt16LE(part.length, at);
    header.writeUInt16LE(part.length, at + 2);
    header.writeUInt32LE(offset, at + 4);
    offset += part.length;
  }
  header.writeUInt32LE(flags, 60);
  return Buffer.concat([header, ...payload.map(([, part]) => part)]);
}

/**
 * The AUTHENTICATE_MESSAGE answering `challenge`, and the client's session security for the
 * negotiated flags. When the server sent a timestamp, the LM response is empty and the message
 * carries a MIC over all three messages, as Windows expects.
 */
export function authenticateMessage(input: AuthenticateInput): { message: Buffer; session: NtlmSession } {
  const { challenge } = input;
  const flags = (challenge.flags & CLIENT_FLAGS) >>> 0;
  if (!(flags & NTLM_FLAG.extendedSessionSecurity)) {
    throw new NtlmError('the server does not offer NTLMv2 extended session security');
  }
  const answer = answerTargetInfo(challenge);
  const withMic = answer.serverTime !== undefined;
  const response = ntlmv2Response({
    responseKey: ntowfv2(input.user, input.password, input.domain),
    serverChallenge: challenge.serverChallenge,
    clientChallenge: input.clientChallenge ?? randomBytes(8),
    time: input.time ?? answer.serverTime ?? fileTimeNow(),
    targetInfo: answer.targetInfo,
    omitLm: withMic,
  });
  const keyExchange = (flags & NTLM_FLAG.keyExchange) !== 0;
  const exportedSessionKey = keyExchange ? (input.exportedSessionKey ?? randomBytes(16)) : response.sessionBaseKey;
  const encryptedKey = keyExchange ? createRc4(response.sessionBaseKey).update(exportedSessionKey) : Buffer.alloc(0);
  const message = encodeAuthenticate(flags, { ...input, ...response, encryptedKey });
  if (withMic) {
    hmacMd5(exportedSessionKey, input.negotiate, challenge.raw, message).copy(message, 72);
  }
  return { message, session: createNtlmSession(flags, exportedSessionKey, 'client') };
}

const MAGIC = {
  sign: { client: 'session key to client-to-server signing key magic constant\0', server: 'session key to server-to-client signing key magic constant\0' },
  seal: { client: 'session key to client-to-server sealing key magic constant\0', server: 'session key to server-to-client sealing key magic constant\0' },
} as const;

/** The signing and sealing keys of one direction (MS-NLMP 3.4.5.2–3, extended session security). */
export function sessionKeys(flags: number, exportedSessionKey: Buffer, direction: NtlmSide): { signKey: Buffer; sealKey: Buffer } {
  const sealBase = flags & NTLM_FLAG.bits128 ? exportedSessionKey : exportedSessionKey.subarray(0, flags & NTLM_FLAG.bits56 ? 7 : 5);
  return {
    signKey: md5(exportedSessionKey, Buffer.from(MAGIC.sign[direction], 'latin1')),
    sealKey: md5(sealBase, Buffer.from(MAGIC.seal[direction], 'latin1')),
  };
}

/** Sealing (encrypt + sign) and unsealing (decrypt + verify) of messages after authentication. */
export interface NtlmSession {
  seal(message: Buffer): { sealed: Buffer; signature: Buffer };
  /** Decrypts and checks the signature and sequence number; throws {@link NtlmError} on a mismatch. */
  unseal(sealed: Buffer, signature: Buffer): Buffer;
}

function signer(flags: number, keys: { signKey: Buffer; sealKey: Buffer }) {
  const rc4: Rc4 = createRc4(keys.sealKey);
  let sequence = 0;
  const keyExchange = (flags & NTLM_FLAG.keyExchange) !== 0;
  return {
    rc4,
    /** The signature of `message` at the next sequence number (the RC4 stream advances). */
    sign(message: Buffer): Buffer {
      const seq = Buffer.alloc(4);
      seq.writeUInt32LE(sequence++);
      const checksum = hmacMd5(keys.signKey, seq, message).subarray(0, 8);
      return Buffer.concat([Buffer.from([1, 0, 0, 0]), keyExchange ? rc4.update(checksum) : checksum, seq]);
    },
  };
}

/** Session security for `side`, keyed with the exported session key both sides derived. */
export function createNtlmSession(flags: number, exportedSessionKey: Buffer, side: NtlmSide): NtlmSession {
  const other: NtlmSide = side === 'client' ? 'server' : 'client';
  const out = signer(flags, sessionKeys(flags, exportedSessionKey, side));
  const incoming = signer(flags, sessionKeys(flags, exportedSessionKey, other));
  return {
    seal(message) {
      const sealed = out.rc4.update(message);
      return { sealed, signature: out.sign(message) };
    },
    unseal(sealed, signature) {
      const message = incoming.rc4.update(sealed);
      const expected = incoming.sign(message);
      if (signature.length !== 16 || !timingSafeEqual(signature, expected)) {
        throw new NtlmError('NTLM message signature does not match');
      }
      return message;
    },
  };
}

/** An AUTHENTICATE_MESSAGE the server side accepted. */
export interface Accepted {
  user: string;
  domain: string;
  session: NtlmSession;
}

/**
 * The server side of the last leg (used by the WinRM test server): checks an AUTHENTICATE_MESSAGE
 * against the challenge it answers and the user's password, verifies the MIC when one is sent, and
 * returns the server's session security. Throws {@link NtlmError} when anything does not match.
 */
export function acceptAuthenticate(input: { message: Buffer; negotiate: Buffer; challenge: Buffer; passwordOf(user: string, domain: string): string | undefined }): Accepted {
  const { message } = input;
  if (message.length < 88 || !message.subarray(0, 8).equals(SIGNATURE) || message.readUInt32LE(8) !== 3) {
    throw new NtlmError('not an NTLM AUTHENTICATE message');
  }
  const challenge = parseChallenge(input.challenge);
  const flags = message.readUInt32LE(60);
  const ntResponse = field(message, 20);
  const domain = field(message, 28).toString('utf16le');
  const user = field(message, 36).toString('utf16le');
  const password = input.passwordOf(user, domain);
  if (password === undefined || ntResponse.length < 48) {
    throw new NtlmError('NTLM authentication failed');
  }
  const responseKey = ntowfv2(user, password, domain);
  const ntProofStr = hmacMd5(responseKey, challenge.serverChallenge, ntResponse.subarray(16));
  if (!timingSafeEqual(ntProofStr, ntResponse.subarray(0, 16))) {
    throw new NtlmError('NTLM authentication failed');
  }
  const sessionBaseKey = hmacMd5(responseKey, ntProofStr);
  const exportedSessionKey = flags & NTLM_FLAG.keyExchange ? createRc4(sessionBaseKey).update(field(message, 52)) : sessionBaseKey;
  const blobPairs = avPairs(ntResponse.subarray(16 + 28));
  const avFlags = blobPairs.find((p) => p.id === AV.flags)?.value;
  if (avFlags && avFlags.readUInt32LE(0) & AV_FLAG_MIC_PRESENT) {
    const zeroed = Buffer.from(message);
    Buffer.alloc(16).copy(zeroed, 72);
    if (!timingSafeEqual(hmacMd5(exportedSessionKey, input.negotiate, input.challenge, zeroed), message.subarray(72, 88))) {
      throw new NtlmError('NTLM message integrity check (MIC) failed');
    }
  }
  return { user, domain, session: createNtlmSession(flags, exportedSessionKey, 'server') };
}
