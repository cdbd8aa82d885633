import Table from 'cli-table3'
import ora, {type Ora} from 'ora'

/** A cli-table3 table with taskd's plain style (no colours, so output pipes cleanly). */
export function renderTable(head: string[], rows: (string | number | null | undefined)[][]): string {
  const table = new Table({head, style: {head: [], border: []}})
  for (const row of rows) table.push(row.map((cell) => (cell === null || cell === undefined ? '' : String(cell))))
  return table.toString()
}

/** True only on a real terminal with a width: ora loops forever on a 0-column TTY (toolchain pitfall 6). */
export function isInteractive(): boolean {
  return Boolean(process.stdout.isTTY && process.stderr.isTTY && (process.stderr.columns ?? 0) > 0)
}

/** An ora spinner that is silent under --json or without a TTY. */
export function spinner(text: string, json: boolean): Ora {
  return ora({text, isSilent: json || !isInteractive(), discardStdin: false})
}

export function formatTime(epochSeconds: number | null | undefined): string {
  if (epochSeconds === null || epochSeconds === undefined) return ''
  return new Date(epochSeconds * 1000).toISOString().replace('.000Z', 'Z')
}

/** A short, single-line summary of task data for tables. */
export function summarizeData(data: unknown, max = 60): string {
  let text: string
  try {
    text = JSON.stringify(data) ?? ''
  } catch {
    text = String(data)
  }
  return text.length > max ? text.slice(0, max - 1) + '…' : text
}

/** Formats a duration in microseconds for humans (1.2ms, 3.40s). */
export function formatMicros(us: number | null | undefined): string {
  if (us === null || us === undefined) return ''
  if (us < 1000) return `${Math.round(us)}µs`
  if (us < 1_000_000) return `${(us / 1000).toFixed(1)}ms`
  return `${(us / 1_000_000).toFixed(2)}s`
}
