import type {GeneratorSummary, TaskGenerator} from '../core/generator.js'
import {describeError} from '../core/errors.js'
import {GENERATOR_ROW, getState, listStates, setPaused, type GeneratorState} from '../storage/generator-state.js'
import type {Storage} from '../storage/storage.js'

export type GeneratorStatusName = 'ready' | 'idle' | 'sleeping' | 'running' | 'paused' | 'failing'

export interface GeneratorOverview {
  key: string
  description: string
  priorityRange: {min: number; max: number}
  status: GeneratorStatusName
  /** Best priority ready now (null when nothing is). */
  readyPriority: number | null
  /** Earliest time a sleeping unit is due again. */
  sleepingUntil: number | null
  paused: boolean
  cursor: string | null
  lastRunAt: number | null
  lastCount: number | null
  totalCount: number
  errorStreak: number
  lastError: string | null
  backlog: Record<string, number> | null
  /** Per-unit state (GC collectors…). */
  units: GeneratorState[]
}

/** What `taskd generators list` shows: every generator's status, from its state rows and a cheap summary. */
export async function overviewGenerators(store: Storage, generators: readonly TaskGenerator<Storage>[]): Promise<GeneratorOverview[]> {
  const states = await listStates(store)
  const now = store.now()
  const result: GeneratorOverview[] = []
  for (const g of generators) {
    const mine = states.filter((s) => s.generator === g.key)
    const own = mine.find((s) => s.key === GENERATOR_ROW)
    const units = mine.filter((s) => s.key !== GENERATOR_ROW)
    const ctx = {store, owner: 'overview'}
    let readyPriority: number | null = null
    let summary: GeneratorSummary | null = null
    let summaryError: string | null = null
    try {
      readyPriority = await g.ready(ctx, {})
      summary = g.summarize ? await g.summarize(ctx) : null
    } catch (error) {
      summaryError = describeError(error)
    }
    const all = own ? [own, ...units] : units
    const errorStreak = Math.max(0, ...all.map((s) => s.errorStreak))
    const lastError = summaryError ?? all.find((s) => s.lastError)?.lastError ?? null
    const sleeping = units.filter((s) => s.nextRunAt > now).map((s) => s.nextRunAt)
    const running = units.some((s) => s.runOwner !== null && (s.runExpires ?? 0) > now)
    const paused = own?.paused ?? false
    let status: GeneratorStatusName
    if (paused) status = 'paused'
    else if (errorStreak > 0 || summaryError) status = 'failing'
    else if (readyPriority !== null) status = 'ready'
    else if (running) status = 'running'
    else if (sleeping.length > 0) status = 'sleeping'
    else status = 'idle'
    const lastRuns = all.filter((s) => s.lastRunAt !== null).sort((a, b) => (b.lastRunAt ?? 0) - (a.lastRunAt ?? 0))
    result.push({
      key: g.key,
      description: g.description,
      priorityRange: {...g.priorityRange},
      status,
      readyPriority,
      sleepingUntil: sleeping.length > 0 && readyPriority === null ? Math.min(...sleeping) : null,
      paused,
      cursor: own?.cursor ?? (units.length === 1 ? units[0].cursor : null),
      lastRunAt: lastRuns[0]?.lastRunAt ?? null,
      lastCount: lastRuns[0]?.lastCount ?? null,
      totalCount: all.reduce((sum, s) => sum + s.totalCount, 0),
      errorStreak,
      lastError,
      backlog: summary?.backlog ?? null,
      units,
    })
  }
  return result
}

export interface PauseResult {
  generator: string
  paused: boolean
  /** False when the generator already was in that state (safe to rerun). */
  changed: boolean
}

/** Pauses or resumes a generator for every daemon (they notice at their next heartbeat). */
export async function pauseGenerator(store: Storage, key: string, paused: boolean): Promise<PauseResult> {
  const before = (await getState(store, key)).paused
  await setPaused(store, key, paused)
  return {generator: key, paused, changed: before !== paused}
}
