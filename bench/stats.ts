import {performance} from 'node:perf_hooks'

/** Sorted copy. */
const sorted = (values: readonly number[]): number[] => [...values].sort((a, b) => a - b)

/** Median (mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  const s = sorted(values)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/** Nearest-rank percentile, p in [0, 100]. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const s = sorted(values)
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)))
  return s[rank - 1]
}

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
export const nowMs = (): number => performance.now()

/** Runs fn and returns its result with the wall time it took in milliseconds. */
export async function timed<T>(fn: () => Promise<T> | T): Promise<{value: T; ms: number}> {
  const start = nowMs()
  const value = await fn()
  return {value, ms: nowMs() - start}
}

/** Rounds to a sensible number of significant digits for printing and JSON. */
export function round(value: number): number {
  if (!Number.isFinite(value)) return value
  const abs = Math.abs(value)
  if (abs >= 100) return Math.round(value)
  if (abs >= 1) return Math.round(value * 100) / 100
  return Number(value.toPrecision(3))
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
