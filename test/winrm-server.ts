/**
 * A WinRM stand-in for tests: the server side of WS-Management's shell protocol (MS-WSMV) over
 * HTTP — Create shell, Command, Receive (long-polling, with w:TimedOut when nothing happens),
 * Signal, Delete, and Send for stdin — authenticated with Basic or NTLM, NTLM with message
 * encryption. Commands run as local processes (`sh -c`), so streams and exit codes are real. There
 * is no PowerShell here: `powershell … -EncodedCommand <base64>` runs the decoded script with `sh`
 * instead (what the tests check is that the script arrives intact and its output and exit code
 * come back), except the file-copy script of src/executor/winrm/copy.ts, whose effect is emulated
 * in Node (EMULATED_COPY): that proves the transfer, not the PowerShell.
 * pywinrm runs against it in test/winrm-server.test.ts: that is what shows it is faithful.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

import { XMLParser } from 'fast-xml-parser';

import { decryptMessage, ENCRYPTED_CONTENT_TYPE, encryptMessage, isEncrypted } from '../src/executor/winrm/encryption.ts';
import { acceptAuthenticate, challengeMessage, CLIENT_FLAGS, NTLM_FLAG, type NtlmSession, targetInfo } from '../src/executor/winrm/ntlm.ts';
import { copyDestination, EMULATED_COPY } from './winrm-server.copy.ts';

const NS = {
  soap: 'http://www.w3.org/2003/05/soap-envelope',
  addressing: 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
  wsman: 'http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd',
  shell: 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell',
  identity: 'http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd',
};
const ACTION = {
  create: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Create',
  delete: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete',
  command: `${NS.shell}/Command`,
  receive: `${NS.shell}/Receive`,
  send: `${NS.shell}/Send`,
  signal: `${NS.shell}/Signal`,
};
const STATE = { running: `${NS.shell}/CommandState/Running`, done: `${NS.shell}/CommandState/Done` };
/** The product version an Identify answers with. */
export const WINRM_PRODUCT_VERSION = 'OS: 10.0.20348 SP: 0.0 Stack: 3.0';

/** What the stand-in accepts. */
export interface WinrmServerOptions {
  users: Record<string, string>;
  /** Offer Basic (plain SOAP) as well as NTLM. @defaultValue true */
  basic?: boolean;
  /** Told about a request the stand-in itself failed on (answered 500). */
  onError?(err: unknown): void;
  /** Longest a Receive waits for output before answering w:TimedOut. @defaultValue the request's OperationTimeout */
  maxOperationTimeoutMs?: number;
  /**
   * Serve HTTPS with this key and certificate (PEM). NTLM then takes plain SOAP on an authenticated
   * connection, as Windows does over HTTPS; over HTTP it insists on message encryption.
   */
  tls?: { key: string; cert: string };
  /** The emulated file copy flips the first byte it writes (to prove the client's hash check). */
  corruptCopies?: boolean;
  /** From the first SOAP action of this name on (e.g. 'Command'), answer nothing more: a host gone silent. */
  silentFrom?: string;
}

/** A running stand-in. */
export interface WinrmServer {
  /** http://… or, with `tls`, https://… */
  url: string;
  /** SOAP messages answered, by how they arrived (NTLM-sealed or plain). */
  messages: { plain: number; encrypted: number };
  port: number;
  /** Shells open right now (a client that cleans up leaves none). */
  openShells(): number;
  /** Processes of commands still running. */
  runningCommands(): number;
  /** Every SOAP action received, in order. */
  actions: string[];
  /** The same, with the shell each concerned (the new one for Create) and what it carried. */
  exchanges: Exchange[];
  close(): Promise<void>;
}

/** One SOAP exchange the stand-in answered (Identify aside). */
export interface Exchange {
  /** Create, Command, Receive, Send, Signal, Delete… */
  action: string;
  shellId: string;
  /** A Receive answered with w:TimedOut. */
  timedOut?: boolean;
  /** A Command's command line (command and arguments joined by spaces) and its WINRS options. */
  commandLine?: string;
  options?: Record<string, string>;
}

interface Command {
  process: ChildProcess;
  stdout: Buffer[];
  stderr: Buffer[];
  exitCode: number | null;
  done: boolean;
  changed: Set<() => void>;
}

interface Connection {
  negotiate?: Buffer;
  challenge?: Buffer;
  session?: NtlmSession;
  user?: string;
}

const xml = new XMLParser({ ignoreAttributes: false, removeNSPrefix: true, attributeNamePrefix: '@', textNodeName: '#text', parseTagValue: false });
const escape = (text: string) => text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** ISO 8601 duration seconds (PT20S, PT60.000S) in ms. */
function durationMs(value: unknown): number {
  const match = /PT([\d.]+)S/.exec(String(value ?? ''));
  return match ? Number(match[1]) * 1000 : 20_000;
}

function envelope(relatesTo: string, action: string, body: string): string {
  return (
    `<s:Envelope xmlns:s="${NS.soap}" xmlns:a="${NS.addressing}" xmlns:w="${NS.wsman}" xmlns:rsp="${NS.shell}">` +
    `<s:Header><a:Action>${escape(action)}</a:Action><a:MessageID>uuid:${randomUUID()}</a:MessageID>` +
    `<a:RelatesTo>${escape(relatesTo)}</a:RelatesTo><a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To></s:Header>` +
    `<s:Body>${body}</s:Body></s:Envelope>`
  );
}

function fault(relatesTo: string, subcode: string, code: string, text: string): string {
  return envelope(
    relatesTo,
    'http://schemas.dmtf.org/wbem/wsman/1/wsman/fault',
    `<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>${subcode}</s:Value></s:Subcode></s:Code>` +
      `<s:Reason><s:Text xml:lang="en-US">${escape(text)}</s:Text></s:Reason>` +
      `<s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="${code}" Machine="localhost"><f:Message>${escape(text)}</f:Message></f:WSManFault></s:Detail></s:Fault>`,
  );
}

/** Starts the stand-in on a free loopback port. */
export async function startWinrmServer(options: WinrmServerOptions): Promise<WinrmServer> {
  const shells = new Map<string, Map<string, Command>>();
  const connections = new WeakMap<Socket, Connection>();
  const actions: string[] = [];
  let silent = false;
  const exchanges: Exchange[] = [];
  const messages = { plain: 0, encrypted: 0 };

  function authenticate(req: IncomingMessage, res: ServerResponse, body: Buffer): Connection | undefined {
    const connection = connections.get(req.socket) ?? {};
    connections.set(req.socket, connection);
    const header = req.headers.authorization ?? '';
    const [scheme = '', token = ''] = header.split(' ');
    if (/^basic$/i.test(scheme) && options.basic !== false) {
      // Clients encode Basic credentials in UTF-8 or Latin-1 (requests does the latter).
      const raw = Buffer.from(token, 'base64');
      for (const encoding of ['utf8', 'latin1'] as const) {
        const [user = '', password] = raw.toString(encoding).split(/:(.*)/s);
        if (options.users[user] !== undefined && options.users[user] === password) {
          return { user };
        }
      }
    } else if (/^(negotiate|ntlm)$/i.test(scheme) && token) {
      const message = Buffer.from(token, 'base64');
      if (message.readUInt32LE(8) === 1) {
        connection.negotiate = message;
        connection.challenge = challengeMessage({
          flags: (CLIENT_FLAGS | NTLM_FLAG.targetInfo) >>> 0,
          serverChallenge: randomBytes(8),
          domain: 'WINRMTEST',
          targetInfo: targetInfo({ domain: 'WINRMTEST', computer: 'WINRMHOST', timestamp: Buffer.alloc(8, 1) }),
        });
        res.writeHead(401, { 'www-authenticate': `${scheme} ${connection.challenge.toString('base64')}`, 'content-length': 0 });
        res.end();
        return undefined;
      }
      try {
        const accepted = acceptAuthenticate({
          message,
          negotiate: connection.negotiate ?? Buffer.alloc(0),
          challenge: connection.challenge ?? Buffer.alloc(0),
          passwordOf: (user) => options.users[user],
        });
        connection.session = accepted.session;
        connection.user = accepted.user;
        return connection;
      } catch {
        // fall through to 401
      }
    } else if (!header && connection.session && (isEncrypted(req.headers['content-type']) || (req.socket as TLSSocket).encrypted)) {
      return connection;
    }
    void body;
    res.writeHead(401, { 'www-authenticate': options.basic === false ? 'Negotiate' : 'Negotiate, Basic realm="WSMAN"', 'content-length': 0 });
    res.end();
    return undefined;
  }

  function startCommand(commandLine: string): Command {
    const encoded = /^powershell(?:\.exe)?\s.*-EncodedCommand\s+([A-Za-z0-9+/=]+)\s*$/i.exec(commandLine)?.[1];
    const script = encoded === undefined ? commandLine : Buffer.from(encoded, 'base64').toString('utf16le');
    const copy = encoded === undefined ? undefined : copyDestination(script);
    const child =
      copy === undefined
        ? spawn('sh', ['-c', script], { stdio: ['pipe', 'pipe', 'pipe'], detached: true })
        : spawn(process.execPath, ['-e', EMULATED_COPY, copy, options.corruptCopies ? '1' : ''], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    child.stdin?.on('error', () => {}); // input for a command that already exited
    const command: Command = { process: child, stdout: [], stderr: [], exitCode: null, done: false, changed: new Set() };
    const notify = () => command.changed.forEach((wake) => wake());
    child.stdout?.on('data', (c: Buffer) => {
      command.stdout.push(c);
      notify();
    });
    child.stderr?.on('data', (c: Buffer) => {
      command.stderr.push(c);
      notify();
    });
    child.on('close', (code, signal) => {
      command.exitCode = code ?? (signal ? 128 : 1);
      command.done = true;
      notify();
    });
    return command;
  }

  /** Output so far, or wait for some (or the end) up to `timeoutMs`; undefined when nothing happened. */
  async function receive(command: Command, timeoutMs: number): Promise<string | undefined> {
    if (command.stdout.length === 0 && command.stderr.length === 0 && !command.done) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done() {
          clearTimeout(timer);
          command.changed.delete(done);
          resolve();
        }
        command.changed.add(done);
      });
    }
    if (command.stdout.length === 0 && command.stderr.length === 0 && !command.done) {
      return undefined;
    }
    const stream = (name: string, chunks: Buffer[]) => chunks.splice(0).map((c) => `<rsp:Stream Name="${name}" CommandId="ID">${c.toString('base64')}</rsp:Stream>`).join('');
    const streams = stream('stdout', command.stdout) + stream('stderr', command.stderr);
    const state = command.done ? `<rsp:CommandState CommandId="ID" State="${STATE.done}"><rsp:ExitCode>${command.exitCode}</rsp:ExitCode></rsp:CommandState>` : `<rsp:CommandState CommandId="ID" State="${STATE.running}"/>`;
    return `<rsp:ReceiveResponse>${streams}${state}</rsp:ReceiveResponse>`;
  }

  const kill = (command: Command) => {
    if (!command.done && command.process.pid) {
      try {
        process.kill(-command.process.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  };

  async function handle(soap: string): Promise<string> {
    const doc = xml.parse(soap) as { Envelope?: { Header?: Record<string, unknown>; Body?: Record<string, unknown> } };
    // An empty element parses as '': treat it as an element without children.
    const element = (v: unknown) => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});
    const header = element(doc.Envelope?.Header);
    const body = element(doc.Envelope?.Body);
    const text = (v: unknown) => (typeof v === 'object' && v !== null ? String((v as Record<string, unknown>)['#text'] ?? '') : String(v ?? ''));
    if ('Identify' in body) {
      return (
        `<s:Envelope xmlns:s="${NS.soap}" xmlns:wsmid="${NS.identity}"><s:Header/><s:Body><wsmid:IdentifyResponse>` +
        `<wsmid:ProtocolVersion>${NS.wsman}</wsmid:ProtocolVersion><wsmid:ProductVendor>Microsoft Corporation</wsmid:ProductVendor>` +
        `<wsmid:ProductVersion>${WINRM_PRODUCT_VERSION}</wsmid:ProductVersion></wsmid:IdentifyResponse></s:Body></s:Envelope>`
      );
    }
    const action = text(header.Action);
    const messageId = text(header.MessageID);
    actions.push(action.split('/').pop() ?? action);
    silent ||= actions.at(-1) === options.silentFrom;
    if (silent) {
      return new Promise<never>(() => {});
    }
    const selectors = (header.SelectorSet as { Selector?: unknown } | undefined)?.Selector;
    const shellId = [selectors].flat().map((s) => (s && typeof s === 'object' && (s as Record<string, unknown>)['@Name'] === 'ShellId' ? text(s) : '')).find(Boolean) ?? '';
    const exchange: Exchange = { action: actions.at(-1) ?? '', shellId };
    exchanges.push(exchange);
    if (action === ACTION.create) {
      const id = randomUUID().toUpperCase();
      exchange.shellId = id;
      shells.set(id, new Map());
      return envelope(
        messageId,
        'http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse',
        `<x:ResourceCreated xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer"><a:Address>http://localhost/wsman</a:Address><a:ReferenceParameters>` +
          `<w:ResourceURI>${NS.shell}/cmd</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">${id}</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>` +
          `<rsp:Shell><rsp:ShellId>${id}</rsp:ShellId><rsp:State>Connected</rsp:State></rsp:Shell>`,
      );
    }
    const shell = shells.get(shellId);
    if (!shell) {
      return fault(messageId, 'w:InvalidSelectors', '2150858843', `The shell ${shellId} was not found`);
    }
    if (action === ACTION.delete) {
      shell.forEach(kill);
      shells.delete(shellId);
      return envelope(messageId, 'http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse', '');
    }
    if (action === ACTION.command) {
      const line = body.CommandLine as Record<string, unknown>;
      const args = [line.Arguments].flat().filter((a) => a !== undefined).map(text);
      const id = randomUUID().toUpperCase();
      exchange.commandLine = [text(line.Command), ...args].join(' ');
      const set = [(header.OptionSet as Record<string, unknown> | undefined)?.Option].flat().filter((o) => o !== undefined);
      exchange.options = Object.fromEntries(set.map((o) => [String((o as Record<string, unknown>)['@Name']), text(o)]));
      shell.set(id, startCommand(exchange.commandLine));
      return envelope(messageId, `${ACTION.command}Response`, `<rsp:CommandResponse><rsp:CommandId>${id}</rsp:CommandId></rsp:CommandResponse>`);
    }
    const sent = (body.Send as Record<string, unknown> | undefined)?.Stream as Record<string, unknown> | undefined;
    const target = ((body.Receive as Record<string, unknown> | undefined)?.DesiredStream ?? body.Signal ?? sent ?? {}) as Record<string, unknown>;
    const commandId = String(target['@CommandId'] ?? '');
    const command = shell.get(commandId);
    if (!command) {
      return fault(messageId, 'w:InvalidSelectors', '2150858843', `The command ${commandId} was not found`);
    }
    if (action === ACTION.receive) {
      const wait = Math.min(durationMs(header.OperationTimeout), options.maxOperationTimeoutMs ?? Number.MAX_SAFE_INTEGER);
      const answer = await receive(command, wait);
      exchange.timedOut = answer === undefined;
      return answer === undefined
        ? fault(messageId, 'w:TimedOut', '2150858793', 'The WS-Management service cannot complete the operation within the time specified in OperationTimeout.')
        : envelope(messageId, `${ACTION.receive}Response`, answer.replaceAll('CommandId="ID"', `CommandId="${commandId}"`));
    }
    if (action === ACTION.send && sent) {
      command.process.stdin?.write(Buffer.from(text(sent), 'base64'));
      if (String(sent['@End'] ?? '').toLowerCase() === 'true') {
        command.process.stdin?.end();
      }
      return envelope(messageId, `${ACTION.send}Response`, '<rsp:SendResponse/>');
    }
    if (action === ACTION.signal) {
      kill(command);
      shell.delete(commandId);
      return envelope(messageId, `${ACTION.signal}Response`, '<rsp:SignalResponse/>');
    }
    return fault(messageId, 'a:ActionNotSupported', '2150858771', `Action ${action} is not supported`);
  }

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const body = await readBody(req);
      const connection = authenticate(req, res, body);
      if (!connection) {
        return;
      }
      if (body.length === 0) {
        res.writeHead(200, { 'content-length': 0 });
        res.end();
        return;
      }
      const encrypted = connection.session !== undefined && isEncrypted(req.headers['content-type']);
      messages[encrypted ? 'encrypted' : 'plain']++;
      const soap = encrypted ? decryptMessage(connection.session as NtlmSession, body).toString('utf8') : body.toString('utf8');
      const reply = Buffer.from(await handle(soap), 'utf8');
      const out = encrypted ? encryptMessage(connection.session as NtlmSession, reply) : reply;
      const status = reply.includes('<s:Fault>') ? 500 : 200;
      res.writeHead(status, { 'content-type': encrypted ? ENCRYPTED_CONTENT_TYPE : 'application/soap+xml;charset=UTF-8', 'content-length': out.length });
      res.end(out);
    })().catch((err: unknown) => {
      options.onError?.(err);
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
  };
  const server: Server = options.tls ? createHttpsServer(options.tls, onRequest) : createServer(onRequest);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}/wsman`,
    port,
    actions,
    exchanges,
    messages,
    openShells: () => shells.size,
    runningCommands: () => [...shells.values()].flatMap((s) => [...s.values()]).filter((c) => !c.done).length,
    close: async () => {
      shells.forEach((s) => s.forEach(kill));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
