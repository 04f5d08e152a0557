/** A small RFC 4180 CSV reader: quoted fields, doubled quotes, CRLF or LF line ends. */

/** One parsed record with the 1-based line it started on. */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/** Where the parser is: the records so far, the record and field being read, and the line. */
interface CsvState {
  records: CsvRecord[];
  fields: string[];
  field: string;
  quoted: boolean;
  line: number;
  recordLine: number;
}

/** Ends the field and record being read, keeping the record unless it is a blank line. */
function endRecord(state: CsvState): void {
  state.fields.push(state.field);
  if (state.fields.length > 1 || state.fields[0] !== '') {
    state.records.push({ line: state.recordLine, fields: state.fields });
  }
  state.fields = [];
  state.field = '';
}

/** Reads `c` inside a quoted field; returns how many characters after it were consumed too. */
function readQuoted(state: CsvState, c: string, next: string | undefined): number {
  if (c === '"' && next === '"') {
    state.field += '"';
    return 1;
  }
  if (c === '"') {
    state.quoted = false;
  } else {
    state.field += c;
    state.line += c === '\n' ? 1 : 0;
  }
  return 0;
}

/** Reads `c` outside quotes; returns how many characters after it were consumed too. */
function readUnquoted(state: CsvState, c: string, next: string | undefined): number {
  if (c === '"' && state.field === '') {
    state.quoted = true;
  } else if (c === ',') {
    state.fields.push(state.field);
    state.field = '';
  } else if (c === '\n' || c === '\r') {
    endRecord(state);
    state.line++;
    state.recordLine = state.line;
    return c === '\r' && next === '\n' ? 1 : 0;
  } else {
    state.field += c;
  }
  return 0;
}

/** Parses `text` into records; blank lines are skipped. Throws on an unterminated quote. */
export function parseCsv(text: string): CsvRecord[] {
  const state: CsvState = { records: [], fields: [], field: '', quoted: false, line: 1, recordLine: 1 };
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    i += state.quoted ? readQuoted(state, c, text[i + 1]) : readUnquoted(state, c, text[i + 1]);
  }
  if (state.quoted) {
    throw new Error(`unterminated quoted field starting on line ${state.recordLine}`);
  }
  endRecord(state);
  return state.records;
}
