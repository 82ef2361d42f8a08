/**
 * The subset of Office Scripts' `ExcelScript` API that ProcessEmails.ts and ProcessTableColumn.ts
 * use, written from Microsoft's reference because the typings are not published on npm. Signatures
 * match the real API, so a script that type-checks here also compiles in Excel's script editor.
 */
declare namespace ExcelScript {
  type CellValue = string | number | boolean;

  interface Workbook {
    getActiveWorksheet(): Worksheet;
    /** undefined when no table has this name. */
    getTable(name: string): Table | undefined;
  }

  interface Worksheet {
    getName(): string;
    /** undefined on an empty sheet. */
    getUsedRange(valuesOnly?: boolean): Range | undefined;
    getRangeByIndexes(startRow: number, startColumn: number, rowCount: number, columnCount: number): Range;
  }

  interface Range {
    getValues(): CellValue[][];
    setValues(values: CellValue[][]): void;
    getRowIndex(): number;
    getColumnIndex(): number;
    getRowCount(): number;
    getColumnCount(): number;
    getCell(row: number, column: number): Range;
    getResizedRange(deltaRows: number, deltaColumns: number): Range;
  }

  interface Table {
    getName(): string;
    /** undefined when the table has no column with this header. */
    getColumnByName(key: string): TableColumn | undefined;
    addColumn(index?: number, values?: CellValue[], name?: string): TableColumn;
    getRangeBetweenHeaderAndTotal(): Range;
  }

  interface TableColumn {
    getName(): string;
    getIndex(): number;
    getRangeBetweenHeaderAndTotal(): Range;
  }
}
