export type LogFormat = 'text' | 'json'
export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

const LEVELS: Record<LogLevel, number> = {debug: 10, info: 20, warn: 30, error: 40}

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void
  info(event: string, fields?: Record<string, unknown>): void
  warn(event: string, fields?: Record<string, unknown>): void
  error(event: string, fields?: Record<string, unknown>): void
}

/**
 * One line per meaningful event: `--log-format json` prints JSON lines for machines, otherwise
 * `time level event key=value …`. Small on purpose: the daemon logs a handful of event kinds.
 */
export function createLogger(options: {format?: LogFormat; level?: LogLevel; write?: (line: string) => void} = {}): Logger {
  const format = options.format ?? 'text'
  const min = LEVELS[options.level ?? 'info']
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'))
  const emit = (level: LogLevel, event: string, fields: Record<string, unknown> = {}) => {
    if (LEVELS[level] < min) return
    const time = new Date().toISOString()
    if (format === 'json') {
      write(JSON.stringify({time, level, event, ...fields}))
      return
    }
    const pairs = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
    write([time, level.toUpperCase().padEnd(5), event, ...pairs].join(' '))
  }
  return {
    debug: (e, f) => emit('debug', e, f),
    info: (e, f) => emit('info', e, f),
    warn: (e, f) => emit('warn', e, f),
    error: (e, f) => emit('error', e, f),
  }
}

export const silentLogger: Logger = {debug() {}, info() {}, warn() {}, error() {}}
