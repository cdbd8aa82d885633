import {GC_PRIORITY} from '../../core/priority.js'
import type {Storage} from '../../storage/storage.js'
import {defineSingletonGenerator} from '../singleton.js'
import {COLLECTORS, collectBatch, effectiveRetention, findCollector, type Collector} from './collectors.js'

export const GC_KEY = 'gc'
export const GC_TASK_CLASS = 'taskd.gc.collect'
/** Rows per DELETE: small enough that no batch holds locks for long. */
export const GC_BATCH_SIZE = 1000
/** After a run that came back short, sleep this long (persisted: survives restarts). */
export const GC_SLEEP_SECONDS = 4 * 3600
/** A daemon run stops after this long and comes back at once, so other work can interleave. */
const RUN_BUDGET_MS = 5000

export interface CollectResult {
  count: number
  more: boolean
}

/** Deletes batch after batch while they come back full, within a time budget. */
export async function runCollector(store: Storage, collector: Collector, options: {budgetMs?: number; signal?: AbortSignal; batchSize?: number} = {}): Promise<CollectResult> {
  const {retentionSeconds} = await effectiveRetention(store, collector)
  const batchSize = options.batchSize ?? GC_BATCH_SIZE
  const deadline = Date.now() + (options.budgetMs ?? Infinity)
  let count = 0
  for (;;) {
    const deleted = await collectBatch(store, collector, retentionSeconds, batchSize)
    count += deleted
    if (deleted < batchSize) return {count, more: false}
    if (Date.now() >= deadline || options.signal?.aborted) return {count, more: true}
  }
}

/** Garbage collection as a generator: one task `gc:<collector>` per collector, always the lowest priority. */
export function gcGenerator(collectors: readonly Collector[] = COLLECTORS) {
  return defineSingletonGenerator({
    key: GC_KEY,
    description: 'Garbage collection: deletes old rows from history tables in bounded batches',
    priority: GC_PRIORITY,
    taskClass: GC_TASK_CLASS,
    units: () => collectors.map((c) => c.name),
    sleep: {baseSeconds: GC_SLEEP_SECONDS, maxSeconds: GC_SLEEP_SECONDS},
    describe: (unit) => ({table: findCollector(unit, collectors).table}),
    run: ({store, unit, signal}) => runCollector(store, findCollector(unit, collectors), {budgetMs: RUN_BUDGET_MS, signal}),
  })
}
