/**
 * A tiny authoritative DNS server on 127.0.0.1 (UDP, a free port) for dns_lookup: answers A, TXT
 * and MX questions from a fixed table of loopback names, NXDOMAIN for other names, and records
 * every question it got. Enough of RFC 1035 for dig; nothing leaves the machine.
 */
import { createSocket } from 'node:dgram';

/** Records by lower-case name (no trailing dot). */
export type DnsTable = Record<string, Array<{ type: 'A'; address: string } | { type: 'TXT'; text: string } | { type: 'MX'; preference: number; exchange: string }>>;

const TYPES = { A: 1, MX: 15, TXT: 16 } as const;

/** A running server. */
export interface DnsServer {
  port: number;
  /** `name type` of every question, in order. */
  questions: string[];
  close(): Promise<void>;
}

function encodeName(name: string): Buffer {
  return Buffer.concat([...name.split('.').filter(Boolean).map((label) => Buffer.concat([Buffer.from([label.length]), Buffer.from(label)])), Buffer.from([0])]);
}

function readQuestion(query: Buffer): { name: string; type: number; end: number } {
  const labels: string[] = [];
  let pos = 12;
  while (query[pos]) {
    const length = query[pos] as number;
    labels.push(query.subarray(pos + 1, pos + 1 + length).toString('ascii'));
    pos += length + 1;
  }
  return { name: labels.join('.').toLowerCase(), type: query.readUInt16BE(pos + 1), end: pos + 5 };
}

function answer(record: DnsTable[string][number]): { type: number; data: Buffer } {
  switch (record.type) {
    case 'A':
      return { type: TYPES.A, data: Buffer.from(record.address.split('.').map(Number)) };
    case 'TXT':
      return { type: TYPES.TXT, data: Buffer.concat([Buffer.from([record.text.length]), Buffer.from(record.text)]) };
    case 'MX': {
      const preference = Buffer.alloc(2);
      preference.writeUInt16BE(record.preference);
      return { type: TYPES.MX, data: Buffer.concat([preference, encodeName(record.exchange)]) };
    }
  }
}

function respond(query: Buffer, table: DnsTable): Buffer {
  const { name, type, end } = readQuestion(query);
  const records = table[name];
  const answers = (records ?? []).map(answer).filter((a) => a.type === type);
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // id
  // QR, the query's opcode and RD, AA, RA; rcode 3 (NXDOMAIN) for unknown names.
  header.writeUInt16BE(0x8000 | (query.readUInt16BE(2) & 0x7900) | 0x0400 | 0x0080 | (records ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const rrs = answers.map(({ type: rrType, data }) => {
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // the question's name
    rr.writeUInt16BE(rrType, 2);
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(data.length, 10);
    return Buffer.concat([rr, data]);
  });
  return Buffer.concat([header, query.subarray(12, end), ...rrs]);
}

/** Starts the server with `table`. */
export function startDnsServer(table: DnsTable): Promise<DnsServer> {
  const socket = createSocket('udp4');
  const questions: string[] = [];
  socket.on('message', (query, peer) => {
    try {
      const { name, type } = readQuestion(query);
      questions.push(`${name} ${Object.entries(TYPES).find(([, n]) => n === type)?.[0] ?? type}`);
      socket.send(respond(query, table), peer.port, peer.address);
    } catch {
      // A malformed packet gets no answer, as from a real server.
    }
  });
  return new Promise((resolve) => {
    socket.bind(0, '127.0.0.1', () => {
      resolve({ port: socket.address().port, questions, close: () => new Promise((r) => socket.close(() => r())) });
    });
  });
}
