/**
 * Bulk import: a JSON array of targets or CSV (`name,host,os_type,protocol,port,tags,group`, plus
 * optional `use_tls,credential_id,description,tls_verify,tls_fingerprint`). Each row is created whole or not at all; invalid
 * rows are reported by line and the valid ones are created.
 */
import { Compile } from 'typebox/compile';

import { AppError, ValidationError } from '../../errors.ts';
import { validationFailure } from '../../http/error-handler.ts';
import { parseCsv } from '../../shared/csv.ts';
import type { Actor } from '../../shared/roles.ts';
import { TargetImportRow } from './targets.schemas.ts';
import type { TargetsService } from './targets.service.ts';

/** Largest number of rows in one import. */
export const MAX_IMPORT_ROWS = 10_000;

const CSV_COLUMNS = ['name', 'host', 'os_type', 'protocol', 'port', 'tags', 'group', 'use_tls', 'credential_id', 'description', 'tls_verify', 'tls_fingerprint'] as const;
const checkRow = Compile(TargetImportRow);

/** What an import did. */
export interface ImportReport {
  created: number;
  skipped: number;
  errors: Array<{ line: number; message: string; field?: string }>;
  target_ids: number[];
}

function csvValue(column: (typeof CSV_COLUMNS)[number], raw: string): unknown {
  const value = raw.trim();
  if (value === '') {
    return undefined;
  }
  switch (column) {
    case 'port':
    case 'credential_id':
      return /^\d+$/.test(value) ? Number(value) : value;
    case 'use_tls':
    case 'tls_verify':
      return ['true', 'yes', '1'].includes(value.toLowerCase()) ? true : ['false', 'no', '0'].includes(value.toLowerCase()) ? false : value;
    case 'tags':
      return value.split(/[;\s]+/).filter(Boolean);
    default:
      return value;
  }
}

/** Turns CSV text into `{ line, row }` objects; a bad header is a 400 naming the column. */
export function rowsFromCsv(text: string): Array<{ line: number; row: Record<string, unknown>; error?: ImportReport['errors'][number] }> {
  let records;
  try {
    records = parseCsv(text);
  } catch (e) {
    throw new ValidationError(`body: ${(e as Error).message}`, 'body');
  }
  const [header, ...data] = records;
  if (!header) {
    throw new ValidationError('body: the CSV is empty; the first line must name the columns', 'body');
  }
  const columns = header.fields.map((f) => f.trim().toLowerCase());
  const unknown = columns.find((c) => !(CSV_COLUMNS as readonly string[]).includes(c));
  if (unknown !== undefined) {
    throw new ValidationError(`unknown CSV column "${unknown}"; expected ${CSV_COLUMNS.join(',')}`, unknown || 'body');
  }
  return data.map(({ line, fields }) => {
    if (fields.length > columns.length) {
      // Most likely an unquoted comma shifted the fields: refuse the row rather than guess.
      const field = `column_${columns.length + 1}`;
      return { line, row: {}, error: { line, field, message: `${field}: the line has ${fields.length} fields but the header names ${columns.length}` } };
    }
    const row: Record<string, unknown> = {};
    columns.forEach((column, i) => {
      const value = csvValue(column as (typeof CSV_COLUMNS)[number], fields[i] ?? '');
      if (value !== undefined) {
        row[column] = value;
      }
    });
    return { line, row };
  });
}

function rowError(line: number, e: unknown): ImportReport['errors'][number] {
  if (e instanceof AppError && e.status < 500) {
    return { line, message: e.message, field: e.field };
  }
  throw e;
}

/** Imports `body` (a JSON array, or CSV text) row by row. */
export async function importTargets(targets: TargetsService, actor: Actor, body: unknown): Promise<ImportReport> {
  const rows = typeof body === 'string' ? rowsFromCsv(body) : Array.isArray(body) ? body.map((row, i) => ({ line: i + 1, row })) : undefined;
  if (!rows) {
    throw new ValidationError('body must be a JSON array of targets or text/csv', 'body');
  }
  if (rows.length > MAX_IMPORT_ROWS) {
    throw new ValidationError(`body: at most ${MAX_IMPORT_ROWS} rows per import`, 'body');
  }
  const report: ImportReport = { created: 0, skipped: 0, errors: [], target_ids: [] };
  for (const { line, row, error } of rows as ReturnType<typeof rowsFromCsv>) {
    if (error) {
      report.errors.push(error);
      continue;
    }
    if (!checkRow.Check(row)) {
      const failure = validationFailure(checkRow.Errors(row), 'row');
      report.errors.push({ line, message: failure.message, field: failure.field });
      continue;
    }
    try {
      const outcome = await targets.importRow(actor, row as TargetImportRow);
      if (outcome === 'skipped') {
        report.skipped++;
      } else {
        report.created++;
        report.target_ids.push(outcome);
      }
    } catch (e) {
      report.errors.push(rowError(line, e));
    }
  }
  return report;
}
