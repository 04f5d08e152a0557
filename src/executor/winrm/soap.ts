/**
 * WS-Management SOAP for the Windows remote shell (MS-WSMV): envelopes built with an XML library
 * (every value escaped by it, never spliced into markup) and responses read back into plain values.
 */
import { randomUUID } from 'node:crypto';

import { XMLBuilder, XMLParser } from 'fast-xml-parser';

const NS = {
  s: 'http://www.w3.org/2003/05/soap-envelope',
  a: 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
  w: 'http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd',
  rsp: 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell',
  wsmid: 'http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd',
};
const SHELL_URI = `${NS.rsp}/cmd`;
const ACTION = {
  create: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Create',
  delete: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete',
  command: `${NS.rsp}/Command`,
  receive: `${NS.rsp}/Receive`,
  send: `${NS.rsp}/Send`,
  signal: `${NS.rsp}/Signal`,
};
const TERMINATE = `${NS.rsp}/signal/terminate`;
/** The WS-Management fault code of a Receive that waited its whole OperationTimeout. */
export const TIMED_OUT_CODE = '2150858793';

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@', textNodeName: '#text', suppressEmptyNode: true, suppressBooleanAttributes: false });
const parser = new XMLParser({ ignoreAttributes: false, removeNSPrefix: true, attributeNamePrefix: '@', textNodeName: '#text', parseTagValue: false, parseAttributeValue: false });

/** Where requests go and how long a Receive may wait on the server. */
export interface SoapTarget {
  url: string;
  operationTimeoutS: number;
}

function envelope(target: SoapTarget, action: string, body: Record<string, unknown>, extra: { shellId?: string; options?: Record<string, string> } = {}): string {
  const header: Record<string, unknown> = {
    'a:To': target.url,
    'a:ReplyTo': { 'a:Address': { '@s:mustUnderstand': 'true', '#text': 'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous' } },
    'a:Action': { '@s:mustUnderstand': 'true', '#text': action },
    'a:MessageID': `uuid:${randomUUID()}`,
    'w:ResourceURI': { '@s:mustUnderstand': 'true', '#text': SHELL_URI },
    'w:MaxEnvelopeSize': { '@s:mustUnderstand': 'true', '#text': '153600' },
    'w:Locale': { '@xml:lang': 'en-US', '@s:mustUnderstand': 'false' },
    'w:OperationTimeout': `PT${target.operationTimeoutS}S`,
  };
  if (extra.shellId) {
    header['w:SelectorSet'] = { 'w:Selector': { '@Name': 'ShellId', '#text': extra.shellId } };
  }
  if (extra.options) {
    header['w:OptionSet'] = { 'w:Option': Object.entries(extra.options).map(([name, value]) => ({ '@Name': name, '#text': value })) };
  }
  return builder.build({
    's:Envelope': { '@xmlns:s': NS.s, '@xmlns:a': NS.a, '@xmlns:w': NS.w, '@xmlns:rsp': NS.rsp, 's:Header': header, 's:Body': body },
  }) as string;
}

/** Request bodies for each operation. */
export const soapRequest = {
  identify: () => builder.build({ 's:Envelope': { '@xmlns:s': NS.s, '@xmlns:wsmid': NS.wsmid, 's:Header': '', 's:Body': { 'wsmid:Identify': '' } } }) as string,
  createShell: (t: SoapTarget) =>
    envelope(t, ACTION.create, { 'rsp:Shell': { 'rsp:InputStreams': 'stdin', 'rsp:OutputStreams': 'stdout stderr' } }, { options: { WINRS_NOPROFILE: 'TRUE', WINRS_CODEPAGE: '65001' } }),
  /**
   * Starts a command. With `stdin` (input will be sent), its stdin is a pipe rather than the
   * console (WINRS_CONSOLEMODE_STDIN FALSE), as Ansible does when it streams input.
   */
  command: (t: SoapTarget, shellId: string, command: string, args: string[], { stdin = false }: { stdin?: boolean } = {}) =>
    envelope(
      t,
      ACTION.command,
      { 'rsp:CommandLine': { 'rsp:Command': command, ...(args.length > 0 ? { 'rsp:Arguments': args } : {}) } },
      { shellId, options: { WINRS_CONSOLEMODE_STDIN: stdin ? 'FALSE' : 'TRUE', WINRS_SKIP_CMD_SHELL: 'FALSE' } },
    ),
  receive: (t: SoapTarget, shellId: string, commandId: string) =>
    envelope(t, ACTION.receive, { 'rsp:Receive': { 'rsp:DesiredStream': { '@CommandId': commandId, '#text': 'stdout stderr' } } }, { shellId }),
  /** Input for the command's stdin; `end` closes it. */
  send: (t: SoapTarget, shellId: string, commandId: string, data: Buffer, end: boolean) =>
    envelope(t, ACTION.send, { 'rsp:Send': { 'rsp:Stream': { '@Name': 'stdin', '@CommandId': commandId, ...(end ? { '@End': 'true' } : {}), '#text': data.toString('base64') } } }, { shellId }),
  terminate: (t: SoapTarget, shellId: string, commandId: string) => envelope(t, ACTION.signal, { 'rsp:Signal': { '@CommandId': commandId, 'rsp:Code': TERMINATE } }, { shellId }),
  deleteShell: (t: SoapTarget, shellId: string) => envelope(t, ACTION.delete, {}, { shellId }),
};

/** A SOAP fault the server answered with. */
export class WsmanFault extends Error {
  override name = 'WsmanFault';
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

type Node = Record<string, unknown>;
const asNode = (v: unknown): Node => (typeof v === 'object' && v !== null ? (v as Node) : {});
const textOf = (v: unknown): string => (typeof v === 'object' && v !== null ? String((v as Node)['#text'] ?? '') : String(v ?? ''));
const list = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

/** The body of a response; throws {@link WsmanFault} for a fault. */
function bodyOf(xml: string): Node {
  const body = asNode(asNode(asNode(parser.parse(xml)).Envelope).Body);
  if (body.Fault !== undefined) {
    const fault = asNode(body.Fault);
    const detail = asNode(asNode(fault.Detail).WSManFault);
    const text = textOf(asNode(fault.Reason).Text) || textOf(detail.Message) || 'WS-Management fault';
    throw new WsmanFault(text.trim(), detail['@Code'] === undefined ? undefined : String(detail['@Code']));
  }
  return body;
}

/** Readers of each response. */
export const soapResponse = {
  productVersion: (xml: string) => textOf(asNode(bodyOf(xml).IdentifyResponse).ProductVersion),
  shellId(xml: string): string {
    const body = bodyOf(xml);
    const fromShell = textOf(asNode(body.Shell).ShellId);
    const selectors = list(asNode(asNode(asNode(body.ResourceCreated).ReferenceParameters).SelectorSet).Selector);
    return fromShell || textOf(selectors.find((s) => asNode(s)['@Name'] === 'ShellId'));
  },
  commandId: (xml: string) => textOf(asNode(bodyOf(xml).CommandResponse).CommandId),
  /** Output chunks of a Receive, and the exit code once the command is done. */
  received(xml: string): { stdout: Buffer[]; stderr: Buffer[]; done: boolean; exitCode: number | null } {
    const response = asNode(bodyOf(xml).ReceiveResponse);
    const streams = list(response.Stream).map(asNode);
    const chunks = (name: string) => streams.filter((s) => s['@Name'] === name && textOf(s)).map((s) => Buffer.from(textOf(s), 'base64'));
    const state = asNode(response.CommandState);
    const done = String(state['@State'] ?? '').endsWith('/Done');
    const exit = textOf(state.ExitCode);
    return { stdout: chunks('stdout'), stderr: chunks('stderr'), done, exitCode: done && exit !== '' ? Number(exit) : null };
  },
  /** Checks that a response is not a fault (Signal, Delete). */
  ok: (xml: string) => void bodyOf(xml),
};
