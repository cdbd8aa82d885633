import type {GeneratorContext, TaskGenerator} from '../core/generator.js'
import type {HandlerContext} from '../core/handler.js'
import {formatRef, type DynamicTask, type TaskOutcome} from '../core/task.js'
import {acquireRun, failRun, finishRun, listStates, releaseRun, renewRun, type GeneratorState} from '../storage/generator-state.js'
import type {Storage} from '../storage/storage.js'

/**
 * Building block for generators whose work is "run this unit now and then, on one daemon at a time":
 * GC collectors, fact aggregation, cursor walks over a table. Each unit is a task `key:unit`; its
 * schedule, run lease, counts and errors live in its generator-state row, so they survive restarts
 * and are shared by every daemon.
 */
export interface SingletonRun {
  store: Storage
  unit: string
  state: GeneratorState
  owner: string
  signal: AbortSignal
}

export interface SingletonResult {
  /** Work done (rows deleted, rows processed…), recorded as last/total count. */
  count: number
  /** A batch came back full: run again at once instead of sleeping. */
  more: boolean
}

export interface SingletonGeneratorOptions {
  key: string
  description: string
  /** These generators produce one priority (a range of one). */
  priority: number
  /** Task class of the units' tasks; its handler is registered by the generator. */
  taskClass: string
  /** The units (sub-keys) that exist now. */
  units(store: Storage): Promise<readonly string[]> | readonly string[]
  run(run: SingletonRun): Promise<SingletonResult>
  /** Sleep after a run that is done: base after work, doubling to max while runs find nothing. */
  sleep: {baseSeconds: number; maxSeconds: number}
  /** The handler is abandoned after this long (default 300 s). */
  timeoutSeconds?: number
  /** Data shown by peek for a unit. */
  describe?(unit: string): Record<string, unknown>
}

type Ctx = GeneratorContext<Storage>

export function defineSingletonGenerator(options: SingletonGeneratorOptions): TaskGenerator<Storage> {
  const {key, priority, taskClass} = options
  const stateOf = new Map<string, GeneratorState>()

  /** Units due now and not running elsewhere, soonest-due first, with their state. */
  async function dueUnits(store: Storage): Promise<{unit: string; state: GeneratorState | undefined}[]> {
    const now = store.now()
    const units = await options.units(store)
    const states = new Map((await listStates(store, key)).map((s) => [s.key, s]))
    return units
      .map((unit) => ({unit, state: states.get(unit)}))
      .filter(({state}) => !state || (state.nextRunAt <= now && (state.runOwner === null || (state.runExpires ?? 0) <= now)))
      .sort((a, b) => (a.state?.nextRunAt ?? 0) - (b.state?.nextRunAt ?? 0))
  }

  const toTask = (unit: string, state: GeneratorState | undefined, lease: DynamicTask['lease']): DynamicTask => ({
    ref: formatRef(key, unit),
    generator: key,
    identifier: unit,
    taskClass,
    priority,
    data: {unit, ...(options.describe?.(unit) ?? {})},
    lease,
    attempt: (state?.errorStreak ?? 0) + 1,
    failureCount: state?.errorStreak ?? 0,
  })

  return {
    key,
    description: options.description,
    priorityRange: {min: priority, max: priority},
    handlers: {
      [taskClass]: {
        timeoutSeconds: options.timeoutSeconds ?? 300,
        // Failures are scheduled by the generator state's own backoff, never archived.
        maxRetries: null,
        run: async (data: unknown, ctx: HandlerContext<Storage>) => {
          const unit = (data as {unit: string}).unit
          const state = stateOf.get(unit) ?? (await listStates(ctx.store, key)).find((s) => s.key === unit)
          if (!state) throw new Error(`no state row for ${formatRef(key, unit)}`)
          return options.run({store: ctx.store, unit, state, owner: ctx.task.lease?.owner ?? '', signal: ctx.signal})
        },
      },
    },

    async ready({store}: Ctx) {
      return (await dueUnits(store)).length > 0 ? priority : null
    },

    async lease({store, owner}: Ctx, {limit, leaseSeconds, priorityCeiling}) {
      if (priorityCeiling !== undefined && priority > priorityCeiling) return []
      const leased: DynamicTask[] = []
      for (const {unit} of await dueUnits(store)) {
        if (leased.length >= limit) break
        if (!(await acquireRun(store, key, unit, owner, leaseSeconds))) continue
        const state = (await listStates(store, key)).find((s) => s.key === unit)
        if (state) stateOf.set(unit, state)
        leased.push(toTask(unit, state, {owner, expiresAt: store.now() + leaseSeconds}))
      }
      return leased
    },

    async peek({store}: Ctx, {limit, priorityCeiling}) {
      if (priorityCeiling !== undefined && priority > priorityCeiling) return []
      return (await dueUnits(store)).slice(0, limit).map(({unit, state}) => toTask(unit, state, null))
    },

    async renew({store, owner}: Ctx, tasks, leaseSeconds) {
      const held: string[] = []
      for (const task of tasks) if (await renewRun(store, key, task.identifier, owner, leaseSeconds)) held.push(task.ref)
      return held
    },

    async complete({store, owner}: Ctx, outcomes: readonly TaskOutcome[]) {
      const applied: string[] = []
      for (const outcome of outcomes) {
        const unit = outcome.task.identifier
        let ok: boolean
        switch (outcome.kind) {
          case 'success': {
            const result = (outcome.result ?? {count: 0, more: false}) as SingletonResult
            ok = await finishRun(store, key, unit, owner, {count: Number(result.count) || 0, more: Boolean(result.more), sleep: options.sleep})
            break
          }
          case 'fail':
            ok = await failRun(store, key, unit, owner, outcome.reason)
            break
          case 'retry':
            ok = await failRun(store, key, unit, owner, outcome.error)
            break
          case 'yield':
            ok = await releaseRun(store, key, unit, owner, outcome.until)
            break
          case 'release':
            ok = await releaseRun(store, key, unit, owner)
            break
        }
        stateOf.delete(unit)
        if (ok) applied.push(outcome.task.ref)
      }
      return applied
    },

    async reclaim({store, owner}: Ctx, held) {
      let released = 0
      for (const state of await listStates(store, key)) {
        if (state.runOwner === owner && !held.includes(formatRef(key, state.key)) && (await releaseRun(store, key, state.key, owner))) released++
      }
      return released
    },

    async summarize({store}: Ctx) {
      const units = await options.units(store)
      const states = new Map((await listStates(store, key)).map((s) => [s.key, s]))
      return {detail: {units: units.map((unit) => ({unit, ...(states.get(unit) ?? {nextRunAt: 0, lastRunAt: null, lastCount: null, errorStreak: 0})}))}}
    },
  }
}
