/**
 * Tables on stdout through cli-table3: a header row, aligned columns (numbers to the right), no
 * index column, no quotes; a yes/no for every boolean so that every command says `proven: yes` the same way.
 */
import Table from 'cli-table3';

export type Cell = string | number | boolean | null | undefined;
export type Row = Readonly<Record<string, Cell>>;

/** How a cell reads in a table: booleans as yes/no, missing values as '-'. */
export function formatCell(v: Cell): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

/** The rows as a table (columns: the keys of the first row, in order). */
export function renderTable(rows: readonly Row[]): string {
  if (rows.length === 0) return '(none)';
  const keys = Object.keys(rows[0]!);
  const numeric = keys.map((k) => rows.every((r) => typeof r[k] === 'number'));
  const table = new Table({
    head: keys,
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' }, // no rule between body rows
    colAligns: numeric.map((n) => (n ? 'right' : 'left')),
  });
  for (const r of rows) table.push(keys.map((k) => formatCell(r[k])));
  return table.toString();
}

export function printTable(rows: readonly Row[]): void {
  console.log(renderTable(rows));
}
