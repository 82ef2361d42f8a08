/**
 * The subset of Office Scripts' `ExcelScript` API that ProcessEmails.ts and ProcessTableColumn.ts
 * use, written from Microsoft's reference
 * (https://learn.microsoft.com/javascript/api/office-scripts/excelscript) because the typings are
 * not published on npm. Only names the real API has are declared, with its signatures: cell values
 * are `string | number | boolean`, spelt out as the reference does (ExcelScript has no named type
 * for them). Where the reference says a method returns `undefined` when nothing matches, the
 * return type says `| undefined`, so strict mode makes the scripts check. A script that
 * type-checks here also compiles in Excel's script editor.
 */
declare namespace ExcelScript {
  interface Workbook {
    getActiveWorksheet(): Worksheet;
    /** undefined when no table has this name. */
    getTable(key: string): Table | undefined;
  }

  interface Worksheet {
    getName(): string;
    /** undefined on an empty sheet. */
    getUsedRange(valuesOnly?: boolean): Range | undefined;
    getRangeByIndexes(startRow: number, startColumn: number, rowCount: number, columnCount: number): Range;
  }

  interface Range {
    getValues(): (string | number | boolean)[][];
    setValues(values: (string | number | boolean)[][]): void;
    getRowIndex(): number;
    getRowCount(): number;
    getCell(row: number, column: number): Range;
    getResizedRange(deltaRows: number, deltaColumns: number): Range;
  }

  interface Table {
    /** undefined when the table has no column with this header. */
    getColumnByName(key: string): TableColumn | undefined;
    addColumn(index?: number, values?: (boolean | string | number)[], name?: string): TableColumn;
    getRangeBetweenHeaderAndTotal(): Range;
  }

  interface TableColumn {
    getRangeBetweenHeaderAndTotal(): Range;
  }
}
