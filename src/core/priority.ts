import {usageError} from './errors.js'

/** Phabricator's priority bands: a lower number runs sooner. Any positive integer is valid. */
export const PRIORITIES = {
  alerts: 1000,
  default: 2000,
  commit: 2500,
  bulk: 3000,
  index: 3500,
  import: 4000,
} as const

export type PriorityName = keyof typeof PRIORITIES

/** Garbage collection runs below every named band. */
export const GC_PRIORITY = 5000

export const MAX_PRIORITY = 2_147_483_647

export function parsePriority(input: string | number): number {
  if (typeof input === 'number') return checkPriority(input, String(input))
  const named = PRIORITIES[input.trim().toLowerCase() as PriorityName]
  if (named !== undefined) return named
  if (!/^\d+$/.test(input.trim())) {
    throw usageError(
      `invalid priority '${input}': expected a positive integer or one of ${Object.keys(PRIORITIES).join(', ')}`,
    )
  }
  return checkPriority(Number(input), input)
}

function checkPriority(value: number, raw: string): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_PRIORITY) {
    throw usageError(`invalid priority '${raw}': expected an integer from 1 to ${MAX_PRIORITY}`)
  }
  return value
}

/** The name of the band a priority falls in (the band at or below it), for status displays. */
export function priorityBand(priority: number): string {
  let band = 'alerts'
  for (const [name, value] of Object.entries(PRIORITIES)) if (priority >= value) band = name
  return priority >= GC_PRIORITY ? 'gc' : band
}
