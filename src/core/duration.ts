import {usageError} from './errors.js'

const UNIT_SECONDS: Record<string, number> = {ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800}

/**
 * Parses a strict duration such as `500ms`, `30s`, `5m`, `1h30m`, `7d` or a bare number of seconds.
 * Written by hand because the grammar must reject anything ambiguous (`ms`-style libraries accept "1 hour ago").
 */
export function parseDuration(input: string, what = 'duration'): number {
  const text = input.trim().toLowerCase()
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text)
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)]
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw usageError(`invalid ${what} '${input}': expected a number with a unit, e.g. 500ms, 30s, 5m, 2h, 7d`)
  }
  return parts.reduce((total, [, n, unit]) => total + Number(n) * UNIT_SECONDS[unit], 0)
}

export function formatDuration(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)}ms`
  if (seconds < 120) return `${Math.round(seconds)}s`
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`
  return `${Math.round(seconds / 86_400)}d`
}
