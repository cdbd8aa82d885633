import Table from 'cli-table3'

import type {Dialect} from './options.js'
import {median, round} from './stats.js'

export type ParamValue = number | string | boolean
export type Unit = 'tasks/s' | 'rows/s' | 'ms' | 'MB' | 'x'

/** One scenario's result: the JSON line printed on stdout. */
export interface BenchResult {
  name: string
  dialect: Dialect
  params: Record<string, ParamValue>
  runs: number
  median: number
  min: number
  max: number
  unit: Unit
  /**
   * Fraction of the in-run ceiling reached, 1 = as good as the raw driver. Throughput: value /
   * ceiling; latency and cost: ceiling / value. Null where no ceiling applies (memory, ratios).
   */
  ceiling_ratio: number | null
}

const HIGHER_IS_BETTER: ReadonlySet<Unit> = new Set(['tasks/s', 'rows/s'])

/** Builds a result from per-run values, and its ratio to a ceiling result (if any). */
export function summarize(
  base: {name: string; dialect: Dialect; params: Record<string, ParamValue>; unit: Unit},
  values: readonly number[],
  ceiling: BenchResult | undefined | null,
): BenchResult {
  const med = median(values)
  let ratio: number | null = null
  if (ceiling && ceiling.median > 0 && med > 0) {
    ratio = HIGHER_IS_BETTER.has(base.unit) ? med / ceiling.median : ceiling.median / med
  }
  const rounded = Object.fromEntries(Object.entries(base.params).map(([k, v]) => [k, typeof v === 'number' ? round(v) : v]))
  const params = ceiling ? {...rounded, ceiling: ceiling.name} : rounded
  return {
    name: base.name,
    dialect: base.dialect,
    params,
    runs: values.length,
    median: round(med),
    min: round(Math.min(...values)),
    max: round(Math.max(...values)),
    unit: base.unit,
    ceiling_ratio: ratio === null ? null : round(ratio),
  }
}

export function jsonLine(result: BenchResult): string {
  return JSON.stringify(result)
}

const formatParams = (params: Record<string, ParamValue>): string =>
  Object.entries(params)
    .filter(([key]) => key !== 'ceiling')
    .map(([key, value]) => `${key}=${typeof value === 'number' && value >= 10_000 ? value.toLocaleString('en-US') : String(value)}`)
    .join(' ')

const formatNumber = (value: number): string => (Math.abs(value) >= 10_000 ? Math.round(value).toLocaleString('en-US') : String(round(value)))

/** The human table: one row per result. */
export function humanTable(results: readonly BenchResult[]): string {
  const table = new Table({
    head: ['scenario', 'dialect', 'params', 'median', 'min', 'max', 'unit', 'of ceiling'],
    colAligns: ['left', 'left', 'left', 'right', 'right', 'right', 'left', 'right'],
    style: {head: [], border: []},
  })
  for (const r of results) {
    table.push([
      r.name,
      r.dialect,
      formatParams(r.params),
      formatNumber(r.median),
      formatNumber(r.min),
      formatNumber(r.max),
      r.unit,
      r.ceiling_ratio === null ? '' : `${Math.round(r.ceiling_ratio * 1000) / 10}%`,
    ])
  }
  return table.toString()
}
