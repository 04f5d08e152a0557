/**
 * WinRM message encryption over HTTP with NTLM (MS-WSMV 2.2.9.1.1): a SOAP message travels
 * sealed inside a `multipart/encrypted` body — a header part naming the original length, then an
 * octet-stream part holding the 4-byte signature length, the signature and the sealed bytes.
 */
import { NtlmError, type NtlmSession } from './ntlm.ts';

const BOUNDARY = '--Encrypted Boundary';
const PROTOCOL = 'application/HTTP-SPNEGO-session-encrypted';
const OCTET_STREAM = Buffer.from('\tContent-Type: application/octet-stream\r\n', 'latin1');
const END = Buffer.from(`${BOUNDARY}--\r\n`, 'latin1');

/** The Content-Type of an encrypted request or response. */
export const ENCRYPTED_CONTENT_TYPE = `multipart/encrypted;protocol="${PROTOCOL}";boundary="Encrypted Boundary"`;

/** True when a response's Content-Type says its body is encrypted this way. */
export function isEncrypted(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.includes(`protocol="${PROTOCOL}"`);
}

/** Seals `soap` into an encrypted body (the session's sequence number advances). */
export function encryptMessage(session: NtlmSession, soap: Buffer): Buffer {
  const { sealed, signature } = session.seal(soap);
  const signatureLength = Buffer.alloc(4);
  signatureLength.writeUInt32LE(signature.length);
  const head =
    `${BOUNDARY}\r\n\tContent-Type: ${PROTOCOL}\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=${soap.length}\r\n` + `${BOUNDARY}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), OCTET_STREAM, signatureLength, signature, sealed, END]);
}

/** Opens an encrypted body: checks the signature, the sequence and the announced length. */
export function decryptMessage(session: NtlmSession, body: Buffer): Buffer {
  const lengthMatch = /OriginalContent: type=[^;\r\n]*;charset=[^;\r\n]*;Length=(\d+)/i.exec(body.subarray(0, 512).toString('latin1'));
  const start = body.indexOf(OCTET_STREAM);
  const end = body.lastIndexOf(END);
  if (!lengthMatch || start < 0 || end < start) {
    throw new NtlmError('not a WinRM encrypted message');
  }
  const payload = body.subarray(start + OCTET_STREAM.length, end);
  const signatureLength = payload.readUInt32LE(0);
  if (signatureLength !== 16 || payload.length < 4 + signatureLength) {
    throw new NtlmError('malformed encrypted WinRM message');
  }
  const message = session.unseal(payload.subarray(4 + signatureLength), payload.subarray(4, 4 + signatureLength));
  if (message.length !== Number(lengthMatch[1])) {
    throw new NtlmError('encrypted WinRM message length does not match its header');
  }
  return message;
}
