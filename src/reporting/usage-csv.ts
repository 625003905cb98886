import { stringify, type Stringifier } from 'csv-stringify';
import type { ExportRow } from './reporting.repository';

/** The export's columns, in order: the header row names them as the API does. */
export const USAGE_CSV_COLUMNS: (keyof ExportRow)[] = [
  'id', 'budgetId', 'occurredAt', 'recordedAt', 'amount', 'currency', 'source', 'modelId', 'userId', 'teamId',
  'projectId', 'requestId', 'reservationId', 'description', 'metadata',
];

/**
 * A Transform from ledger rows to RFC 4180 CSV (csv-stringify): a header row, CRLF line ends,
 * fields quoted when they hold a comma, quote or line break, an empty field for null. Cells that
 * begin with = + - @ tab or carriage return get a leading apostrophe, so a spreadsheet shows them
 * as text instead of running them as formulas (CSV injection); no amount or instant begins so.
 */
export function usageCsv(): Stringifier {
  return stringify({ header: true, columns: USAGE_CSV_COLUMNS, record_delimiter: '\r\n', escape_formulas: true });
}

/** `budget-<id>-usage[-<from>][-<to>].csv`, instants in basic ISO 8601 form (no colons). */
export function usageCsvFileName(budgetId: string, from?: string, to?: string): string {
  const compact = (instant: string) => instant.replace(/[-:]/g, '').replace(/\.\d+/, '');
  const range = [from ? `from-${compact(from)}` : '', to ? `to-${compact(to)}` : ''].filter(Boolean).join('-');
  return `budget-${budgetId}-usage${range ? `-${range}` : ''}.csv`;
}
