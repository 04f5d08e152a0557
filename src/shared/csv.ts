/** A small RFC 4180 CSV reader: quoted fields, doubled quotes, CRLF or LF line ends. */

/** One parsed record with the 1-based line it started on. */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/** Parses `text` into records; blank lines are skipped. Throws on an unterminated quote. */
export function parseCsv(text: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let recordLine = 1;
  const endRecord = () => {
    fields.push(field);
    if (fields.length > 1 || fields[0] !== '') {
      records.push({ line: recordLine, fields });
    }
    fields = [];
    field = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
        line += c === '\n' ? 1 : 0;
      }
    } else if (c === '"' && field === '') {
      quoted = true;
    } else if (c === ',') {
      fields.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') {
        i++;
      }
      endRecord();
      line++;
      recordLine = line;
    } else {
      field += c;
    }
  }
  if (quoted) {
    throw new Error(`unterminated quoted field starting on line ${recordLine}`);
  }
  endRecord();
  return records;
}
