import {randomBytes} from 'node:crypto'
import os from 'node:os'
import {performance} from 'node:perf_hooks'

import {describeError} from '../core/errors.js'
import type {GeneratorContext, TaskGenerator} from '../core/generator.js'
import {resolveHandler, type HandlerInput, type ResolvedHandler} from '../core/handler.js'
import {fillSlots} from '../core/scheduler.js'
import type {DynamicTask, TaskOutcome, TaskSpec} from '../core/task.js'
import {enqueueTasks, localEnqueueSignal} from '../generators/queue/enqueue.js'
import type {Storage} from '../storage/storage.js'
import {BUILTIN_HANDLERS} from './builtin-handlers.js'
import {silentLogger, type Logger} from './logger.js'
import {runTask} from './run-task.js'

export interface DaemonOptions {
  storage: Storage
  generators: readonly TaskGenerator<Storage>[]
  /** User handlers by task class (built-in and generator handlers are added automatically). */
  handlers?: Readonly<Record<string, HandlerInput>>
  concurrency?: number
  /** Default lease length; a class may ask for a longer one. */
  leaseSeconds?: number
  /** Idle polling ceiling in seconds. */
  pollMaxSeconds?: number
  /** Only run tasks at this priority or more urgent. */
  priorityCeiling?: number
  /** Stop once nothing is ready and nothing is running. */
  untilIdle?: boolean
  logger?: Logger
  /** Identity written into every lease; defaults to host:pid:random. */
  owner?: string
}

interface Running {
  task: DynamicTask
  generator: TaskGenerator<Storage>
  handler: ResolvedHandler | null
  startedAt: number
  controller: AbortController
  /** Set once the daemon has given this task's lease back (shutdown) or lost it: its result is ignored. */
  abandoned: boolean
}

interface PendingAck {
  outcome: TaskOutcome
  followUps: TaskSpec[]
}

const POLL_MIN_SECONDS = 0.005
/** How long a few free slots wait for more to free before a lease round. */
const REFILL_WAIT_SECONDS = 0.002
const MAX_IDLE_DOUBTS = 50
const DEFAULT_GRACE_SECONDS = 30
const ACK_BATCH = 256
/** Outcome batches recorded at once (each its own transaction and connection). */
const PARALLEL_ACK_BATCHES = 4
/** Tasks per lease call; bigger fills run several lease calls at once. */
const LEASE_BATCH = 64

/** Handlers by task class: built-in diagnostics, then each generator's own, then the user's (which win). */
export function buildHandlerRegistry(generators: readonly TaskGenerator<Storage>[], userHandlers: Readonly<Record<string, HandlerInput>> = {}): Map<string, ResolvedHandler> {
  const all: Record<string, HandlerInput> = {...BUILTIN_HANDLERS}
  for (const g of generators) Object.assign(all, g.handlers ?? {})
  Object.assign(all, userHandlers)
  return new Map(Object.entries(all).map(([taskClass, input]) => [taskClass, resolveHandler(input)]))
}

export function daemonOwnerId(): string {
  return `${os.hostname().slice(0, 32)}:${process.pid}:${randomBytes(4).toString('hex')}`
}

/**
 * The runtime: fills free worker slots from the best-ranked generators, runs handlers under a
 * lease that a heartbeat extends, and hands outcomes back to each generator in batches.
 */
export class Daemon {
  readonly owner: string
  private readonly storage: Storage
  private readonly generators: Map<string, TaskGenerator<Storage>>
  private readonly handlers: Map<string, ResolvedHandler>
  private readonly concurrency: number
  private readonly leaseSeconds: number
  private readonly pollMaxSeconds: number
  private readonly priorityCeiling: number | undefined
  private readonly untilIdle: boolean
  private readonly log: Logger

  private readonly running = new Map<string, Running>()
  private readonly acks = new Map<string, PendingAck[]>()
  private flushing: Promise<void> | null = null
  private paused = new Set<string>()
  private stopping = false
  private wake: (() => void) | null = null
  private heartbeatTimer: NodeJS.Timeout | null = null
  private loopDone: Promise<void> | null = null
  private lastFullRound = false
  private waitingForSlot = false
  private wakePending = false
  private needsReclaim = false
  /** Generators whose last lease came back full, with the best priority it held (see fillSlots). */
  private readonly fullLeaseHint = new Map<string, number>()
  /** When a partial refill started waiting for more slots to free (see the loop). */
  private refillWaitSince: number | null = null
  /** Idle checks in a row where ready() said yes but nothing could be leased. */
  private idleDoubts = 0
  /** Fewest free slots worth a lease round while other tasks still run. */
  private readonly minRefill: number
  /** Outcome batches recorded so far. */
  private flushes = 0
  private consecutiveErrors = 0
  private readonly startedAt = Date.now()
  readonly stats = {leased: 0, succeeded: 0, failed: 0, retried: 0, yielded: 0, released: 0}

  constructor(options: DaemonOptions) {
    this.storage = options.storage
    this.generators = new Map(options.generators.map((g) => [g.key, g]))
    this.concurrency = Math.max(1, options.concurrency ?? 4)
    this.minRefill = Math.max(1, Math.floor(this.concurrency / 4))
    this.leaseSeconds = Math.max(3, options.leaseSeconds ?? 60)
    this.pollMaxSeconds = options.pollMaxSeconds ?? 0.25
    this.priorityCeiling = options.priorityCeiling
    this.untilIdle = options.untilIdle ?? false
    this.log = options.logger ?? silentLogger
    this.owner = options.owner ?? daemonOwnerId()
    this.handlers = buildHandlerRegistry(options.generators, options.handlers)
  }

  private ctx(store: Storage = this.storage): GeneratorContext<Storage> {
    return {store, owner: this.owner}
  }

  /** Registers the daemon, starts the heartbeat and the loop. Resolve `finished()` to wait for the end. */
  async start(): Promise<void> {
    // A supervisor restarts a daemon that exits; still, a connection dropping during startup is retried here.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.register()
        break
      } catch (error) {
        if (attempt >= 10 || !this.storage.dialect.isConnectionLoss(error)) throw error
        this.log.error('could not register the daemon; retrying', {error: describeError(error)})
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt))
      }
    }
    localEnqueueSignal.on('enqueued', this.onLocalEnqueue)
    const beatMs = Math.max(500, (this.leaseSeconds * 1000) / 3)
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), beatMs)
    this.heartbeatTimer.unref()
    this.log.info('daemon started', {owner: this.owner, concurrency: this.concurrency, generators: [...this.generators.keys()].join(','), database: this.storage.target.url})
    this.loopDone = this.loop()
  }

  private async register(): Promise<void> {
    const now = this.storage.now()
    // Delete first: a retried registration whose first insert did commit must not collide.
    await this.storage.db.deleteFrom('taskd_daemons').where('id', '=', this.owner).execute()
    await this.storage.db
      .insertInto('taskd_daemons')
      .values({
        id: this.owner,
        host: os.hostname(),
        pid: process.pid,
        started_at: now,
        heartbeat_at: now,
        concurrency: this.concurrency,
        status: 'running',
        generators: JSON.stringify([...this.generators.keys()]),
        running: '[]',
      })
      .execute()
    await this.refreshPaused()
  }

  /** Resolves when the daemon has stopped (after `stop()`, or by itself with `untilIdle`). */
  async finished(): Promise<void> {
    await this.loopDone
  }

  private readonly onLocalEnqueue = () => this.wakeUp()

  private wakeUp() {
    const wake = this.wake
    this.wake = null
    // A wake while the loop is busy (mid-round) must not be lost: the next sleep returns at once.
    if (wake) wake()
    else this.wakePending = true
  }

  private sleep(seconds: number): Promise<void> {
    if (this.wakePending) {
      this.wakePending = false
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = null
        resolve()
      }, seconds * 1000)
      this.wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })
  }

  private async loop(): Promise<void> {
    let idleDelay = POLL_MIN_SECONDS
    while (!this.stopping) {
      // Backpressure: finished tasks whose outcome is not recorded yet still hold leases; record
      // them before leasing more.
      if (this.pendingAcks() >= Math.max(ACK_BATCH, this.concurrency * 2)) await this.flushAcks()
      const free = this.concurrency - this.running.size
      // Slots that free one at a time are refilled in groups, not with one lease round per task:
      // a few free slots wait briefly (once) for more to free, then are filled anyway.
      if (free > 0 && free < this.minRefill && this.running.size > 0) {
        this.refillWaitSince ??= performance.now()
        const waited = (performance.now() - this.refillWaitSince) / 1000
        if (waited < REFILL_WAIT_SECONDS) {
          await this.sleep(REFILL_WAIT_SECONDS - waited)
          continue
        }
      }
      this.refillWaitSince = null
      // A round that started while tasks ran may have missed what they enqueued: never idle on it.
      const ranDuringRound = this.running.size > 0
      const flushesBefore = this.flushes
      this.wakePending = false
      let leased = 0
      if (free > 0) {
        try {
          leased = await this.fill(free)
          if (this.consecutiveErrors > 0) this.log.info('database reachable again', {after_errors: this.consecutiveErrors})
          this.consecutiveErrors = 0
        } catch (error) {
          this.consecutiveErrors++
          this.needsReclaim = true
          const backoff = Math.min(10, 0.1 * 2 ** Math.min(this.consecutiveErrors, 7))
          this.log.error('lease round failed', {error: describeError(error), retry_in_s: backoff})
          await this.sleep(backoff)
          continue
        }
      }
      this.lastFullRound = free > 0 && leased === free
      if (leased > 0) this.idleDoubts = 0
      if (this.lastFullRound) {
        idleDelay = POLL_MIN_SECONDS
        // Yield to the macrotask queue (not just microtasks): outcome flushes run from setImmediate.
        await new Promise((resolve) => setImmediate(resolve))
        continue
      }
      if (this.untilIdle && leased === 0 && this.running.size === 0 && !ranDuringRound) {
        // Recorded outcomes can make work ready (a unit due again at once): idle only after a round
        // that saw every outcome recorded.
        if (this.acks.size === 0 && !this.flushing && this.flushes === flushesBefore) {
          // Leases lost in a failed round would otherwise expire after we left: release them first.
          const reclaimed = await this.reclaim().catch(() => -1)
          // A lease can miss rows another transaction holds locked for a moment (SKIP LOCKED):
          // confirm with the generators' non-locking ready() before calling it idle.
          // (Bounded: a generator whose ready() and lease() disagree must not keep us forever.)
          if (reclaimed === 0 && (!(await this.anythingReady()) || ++this.idleDoubts > MAX_IDLE_DOUBTS)) break
          if (reclaimed < 0) this.needsReclaim = true
          await this.sleep(POLL_MIN_SECONDS)
          continue
        }
        await this.flushAcks()
        continue
      }
      idleDelay = leased > 0 ? POLL_MIN_SECONDS : Math.min(this.pollMaxSeconds, idleDelay * 2)
      // With every slot busy, only a finishing task (or stop) wakes the loop.
      this.waitingForSlot = this.running.size >= this.concurrency
      await this.sleep(this.waitingForSlot ? 3600 : idleDelay)
      this.waitingForSlot = false
    }
    await this.shutdown()
  }

  private activeGenerators(): TaskGenerator<Storage>[] {
    const ceiling = this.priorityCeiling
    return [...this.generators.values()].filter((g) => !this.paused.has(g.key) && (ceiling === undefined || g.priorityRange.min <= ceiling))
  }

  private async anythingReady(): Promise<boolean> {
    try {
      const answers = await Promise.all(this.activeGenerators().map((g) => g.ready(this.ctx(), {priorityCeiling: this.priorityCeiling})))
      return answers.some((best) => best !== null)
    } catch {
      return true
    }
  }

  /** Refs this daemon holds a lease on and knows about: running, or outcome not yet recorded. */
  private heldRefs(generator: string): string[] {
    const refs = [...this.running.values()].filter((r) => r.task.generator === generator).map((r) => r.task.ref)
    for (const {outcome} of this.acks.get(generator) ?? []) refs.push(outcome.task.ref)
    return refs
  }

  /** Gives back leases this daemon holds but never saw (a lease committed just before the connection dropped). */
  private async reclaim(): Promise<number> {
    let released = 0
    for (const g of this.generators.values()) {
      if (g.reclaim) released += await g.reclaim(this.ctx(), this.heldRefs(g.key))
    }
    if (released > 0) this.log.warn('released leases this daemon never saw (lost in a failed round)', {count: released})
    return released
  }

  private async fill(free: number): Promise<number> {
    if (this.needsReclaim) {
      await this.reclaim()
      this.needsReclaim = false
    }
    return fillSlots(this.activeGenerators(), free, {
      ready: (g) => g.ready(this.ctx(), {priorityCeiling: this.priorityCeiling}),
      hint: (g) => this.fullLeaseHint.get(g.key) ?? null,
      lease: async (g, limit) => {
        // Large fills are leased in parallel batches: a lease round is latency-bound (a few round
        // trips and a commit), so on a server several rounds at once multiply throughput.
        const sizes = Array.from({length: Math.ceil(limit / LEASE_BATCH)}, (_, i) => Math.min(LEASE_BATCH, limit - i * LEASE_BATCH))
        const batches = await Promise.all(sizes.map((size) => g.lease(this.ctx(), {limit: size, leaseSeconds: this.leaseSeconds, priorityCeiling: this.priorityCeiling})))
        const tasks = batches.flat()
        for (const task of tasks) this.launch(g, task)
        this.stats.leased += tasks.length
        if (tasks.length === limit && tasks.length > 0) this.fullLeaseHint.set(g.key, Math.min(...tasks.map((t) => t.priority)))
        else this.fullLeaseHint.delete(g.key)
        return tasks.length
      },
    })
  }

  private launch(generator: TaskGenerator<Storage>, task: DynamicTask) {
    const entry: Running = {
      task,
      generator,
      handler: this.handlers.get(task.taskClass) ?? null,
      startedAt: Date.now(),
      controller: new AbortController(),
      abandoned: false,
    }
    this.running.set(task.ref, entry)
    void this.execute(entry).finally(() => {
      this.running.delete(task.ref)
      if (this.lastFullRound || this.stopping || this.waitingForSlot || this.running.size === 0) this.wakeUp()
    })
  }

  private async execute(entry: Running): Promise<void> {
    const {task, handler} = entry
    if (handler?.leaseSeconds && handler.leaseSeconds > this.leaseSeconds) {
      await entry.generator.renew(this.ctx(), [task], handler.leaseSeconds).catch(() => [])
    }
    const {outcome, followUps} = await runTask(task, handler, {
      store: this.storage,
      now: () => this.storage.nowPrecise(),
      signal: entry.controller.signal,
      extendLease: async (seconds) => {
        const held = await entry.generator.renew(this.ctx(), [task], seconds)
        if (!held.includes(task.ref)) throw new Error(`lease on ${task.ref} was lost`)
      },
      log: (message) => this.log.info('task log', {ref: task.ref, message}),
    })
    if (entry.abandoned) return
    this.count(outcome)
    if (outcome.kind === 'fail' || outcome.kind === 'retry') {
      this.log.warn(outcome.kind === 'fail' ? 'task failed permanently' : 'task failed, will retry', {
        ref: task.ref,
        class: task.taskClass,
        attempt: task.attempt,
        error: outcome.kind === 'fail' ? outcome.reason : outcome.error,
        ...(outcome.kind === 'retry' ? {retry_at: new Date(outcome.retryAt * 1000).toISOString()} : {}),
      })
    }
    this.queueAck(outcome, followUps)
  }

  private count(outcome: TaskOutcome) {
    const key = ({success: 'succeeded', fail: 'failed', retry: 'retried', yield: 'yielded', release: 'released'} as const)[outcome.kind]
    this.stats[key]++
  }

  private pendingAcks(): number {
    let n = 0
    for (const list of this.acks.values()) n += list.length
    return n
  }

  private queueAck(outcome: TaskOutcome, followUps: TaskSpec[]) {
    const list = this.acks.get(outcome.task.generator) ?? []
    list.push({outcome, followUps})
    this.acks.set(outcome.task.generator, list)
    if (!this.flushing) setImmediate(() => void this.flushAcks())
  }

  /**
   * Hands queued outcomes to their generators: one transaction per batch, a few batches at once.
   * Outcomes stay in `acks` until their batch commits, so the heartbeat keeps their leases alive.
   */
  private async flushAcks(): Promise<void> {
    while (this.flushing) await this.flushing
    if (this.acks.size === 0) return
    this.flushing = (async () => {
      try {
        const work: {key: string; generator: TaskGenerator<Storage>; batch: PendingAck[]}[] = []
        for (const [key, list] of this.acks) {
          const generator = this.generators.get(key)
          if (!generator) continue
          for (let i = 0; i < list.length && work.length < PARALLEL_ACK_BATCHES; i += ACK_BATCH) work.push({key, generator, batch: list.slice(i, i + ACK_BATCH)})
        }
        const results = await Promise.allSettled(work.map(({generator, batch}) => this.recordBatch(generator, batch)))
        let failure: unknown = null
        results.forEach((result, i) => {
          if (result.status === 'rejected') {
            failure ??= result.reason
            return
          }
          const {key, batch} = work[i]
          const done = new Set(batch)
          const left = (this.acks.get(key) ?? []).filter((entry) => !done.has(entry))
          if (left.length > 0) this.acks.set(key, left)
          else this.acks.delete(key)
          this.flushes++
        })
        // A recorded outcome can free work (a webhook hook's lease, a unit due again): look now.
        if (results.some((r) => r.status === 'fulfilled')) this.wakeUp()
        if (failure !== null) {
          this.log.error('recording outcomes failed; will retry', {error: describeError(failure)})
          await new Promise((resolve) => setTimeout(resolve, 500))
        }
      } finally {
        this.flushing = null
      }
    })()
    await this.flushing
    if (this.acks.size > 0 && !this.stopping) setImmediate(() => void this.flushAcks())
  }

  private async recordBatch(generator: TaskGenerator<Storage>, batch: readonly PendingAck[]): Promise<void> {
    await this.storage.transaction(async (store) => {
      const applied = new Set(await generator.complete(this.ctx(store), batch.map((b) => b.outcome)))
      const followUps = batch.filter((b) => applied.has(b.outcome.task.ref)).flatMap((b) => b.followUps)
      if (followUps.length > 0) await enqueueTasks(store, followUps)
      for (const b of batch) {
        if (!applied.has(b.outcome.task.ref)) {
          this.log.warn('outcome not recorded: the task is no longer leased by this daemon (taken over, or recorded by an earlier attempt)', {ref: b.outcome.task.ref})
        }
      }
    })
  }

  /** Extends leases of running tasks and tasks whose outcome is not recorded yet; updates the daemon row. */
  private async heartbeat(): Promise<void> {
    try {
      const byGenerator = new Map<string, {generator: TaskGenerator<Storage>; tasks: Map<number, DynamicTask[]>}>()
      const add = (generator: TaskGenerator<Storage>, task: DynamicTask, seconds: number) => {
        const entry = byGenerator.get(generator.key) ?? {generator, tasks: new Map()}
        entry.tasks.set(seconds, [...(entry.tasks.get(seconds) ?? []), task])
        byGenerator.set(generator.key, entry)
      }
      for (const r of this.running.values()) if (!r.abandoned) add(r.generator, r.task, Math.max(this.leaseSeconds, r.handler?.leaseSeconds ?? 0))
      for (const [key, list] of this.acks) {
        const generator = this.generators.get(key)
        if (generator) for (const {outcome} of list) add(generator, outcome.task, this.leaseSeconds)
      }
      for (const {generator, tasks} of byGenerator.values()) {
        for (const [seconds, list] of tasks) {
          const held = new Set(await generator.renew(this.ctx(), list, seconds))
          for (const task of list) {
            const running = this.running.get(task.ref)
            if (!held.has(task.ref) && running && !running.abandoned) {
              running.abandoned = true
              running.controller.abort(new Error('lease lost'))
              this.log.warn('lease lost; abandoning task', {ref: task.ref})
            }
          }
        }
      }
      await this.writeStatus('running')
      await this.refreshPaused()
      await this.storage.syncClock()
    } catch (error) {
      this.log.error('heartbeat failed', {error: describeError(error)})
    }
  }

  private async writeStatus(status: string) {
    const running = [...this.running.values()].map((r) => ({ref: r.task.ref, taskClass: r.task.taskClass, startedAt: Math.floor(r.startedAt / 1000)}))
    await this.storage.db
      .updateTable('taskd_daemons')
      .set({heartbeat_at: this.storage.now(), status, running: JSON.stringify(running)})
      .where('id', '=', this.owner)
      .execute()
  }

  private async refreshPaused() {
    const rows = await this.storage.db.selectFrom('taskd_generator_state').select('generator').where('state_key', '=', '').where('paused', '=', 1).execute()
    const next = new Set(rows.map((r) => r.generator))
    for (const key of next) if (!this.paused.has(key) && this.generators.has(key)) this.log.info('generator paused', {generator: key})
    for (const key of this.paused) if (!next.has(key)) this.log.info('generator resumed', {generator: key})
    this.paused = next
  }

  /** Set by the first stop(); a second, shorter one (a second signal) wins. */
  private graceSeconds: number | null = null

  /**
   * Graceful stop: lease nothing more, let running handlers finish within the grace period, then
   * release the leases still held so another daemon takes those tasks at once.
   */
  async stop(options: {graceSeconds?: number} = {}): Promise<void> {
    const grace = options.graceSeconds ?? DEFAULT_GRACE_SECONDS
    this.graceSeconds = Math.min(this.graceSeconds ?? Infinity, grace)
    if (!this.stopping) {
      this.stopping = true
      this.log.info('daemon stopping', {running: this.running.size, grace_s: this.graceSeconds})
    } else {
      this.releaseRunning()
    }
    this.wakeUp()
    this.graceWake?.()
    await this.loopDone
  }

  private graceWake: (() => void) | null = null

  private releaseRunning() {
    for (const r of this.running.values()) {
      if (r.abandoned) continue
      r.abandoned = true
      r.controller.abort(new Error('daemon stopping'))
      this.count({kind: 'release', task: r.task})
      this.queueAck({kind: 'release', task: r.task}, [])
    }
  }

  private async shutdown(): Promise<void> {
    const deadline = Date.now() + (this.graceSeconds ?? DEFAULT_GRACE_SECONDS) * 1000
    while (this.running.size > 0 && [...this.running.values()].some((r) => !r.abandoned) && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(100, Math.max(0, deadline - Date.now())))
        this.graceWake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    this.releaseRunning()
    for (let attempt = 0; attempt < 100 && this.acks.size > 0; attempt++) await this.flushAcks()
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer)
    localEnqueueSignal.off('enqueued', this.onLocalEnqueue)
    try {
      await this.writeStatus('stopped')
    } catch (error) {
      this.log.error('could not record the stop', {error: describeError(error)})
    }
    const seconds = ((Date.now() - this.startedAt) / 1000).toFixed(1)
    this.log.info('daemon stopped', {...this.stats, uptime_s: Number(seconds)})
  }
}
