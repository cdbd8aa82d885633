/**
 * The scenarios. Each group runs on one BenchDatabase and returns its results; the ceilings group
 * runs first so every later result can be read as a fraction of what the driver alone achieves.
 */
import {readFileSync} from 'node:fs'

import type {TaskSpec} from '../src/core/task.js'
import {fillSlots} from '../src/core/scheduler.js'
import {Daemon} from '../src/daemon/daemon.js'
import {enqueueTask, enqueueTasks} from '../src/generators/queue/enqueue.js'
import {queueGenerator} from '../src/generators/queue/generator.js'
import type {Storage} from '../src/storage/storage.js'
import {CEILING_BATCH, INSERT_PER_TRANSACTION, claimDeleteCycle, gcDeleteLoop, handoff, insertCycle, leaseArchiveCycle, rawLeaseRound, rawPeek, roundtrip} from './ceiling.js'
import {spawnWorker, type WorkerHandle} from './child.js'
import type {BenchDatabase} from './databases.js'
import {countingNoop} from './drain.js'
import type {BenchOptions, Dialect} from './options.js'
import {PING_CLASS, type FromWorker, type MemorySample} from './protocol.js'
import {summarize, type BenchResult, type ParamValue, type Unit} from './report.js'
import {median, nowMs, percentile, sleep} from './stats.js'

export interface ScenarioContext {
  options: BenchOptions
  dialect: Dialect
  db: BenchDatabase
  /** Ceiling results by name, filled by the ceiling group. */
  ceilings: Map<string, BenchResult>
  /** Progress line on stderr. */
  progress(message: string): void
}

export interface ScenarioGroup {
  /** What BENCH_SCENARIOS selects by. */
  group: string
  /** The result names the group produces (for selection by prefix, and for the smoke test). */
  names(options: BenchOptions): string[]
  run(ctx: ScenarioContext): Promise<BenchResult[]>
}

const rate = (count: number, ms: number): number => (count * 1000) / ms
const result = (ctx: ScenarioContext, name: string, params: Record<string, ParamValue>, unit: Unit, values: readonly number[], ceiling?: string | BenchResult) =>
  summarize({name, dialect: ctx.dialect, params, unit}, values, typeof ceiling === 'string' ? ctx.ceilings.get(ceiling) : ceiling)

async function repeat(ctx: ScenarioContext, label: string, fn: (run: number) => Promise<number>): Promise<number[]> {
  const values: number[] = []
  for (let run = 1; run <= ctx.options.runs; run++) {
    ctx.progress(`${label} run ${run}/${ctx.options.runs}`)
    values.push(await fn(run))
  }
  return values
}

async function expectArchived(db: BenchDatabase, expected: number, what: string): Promise<void> {
  const archived = await db.count('taskd_task_archive')
  const left = await db.count('taskd_tasks')
  if (archived !== expected || left !== 0) throw new Error(`${what}: expected ${expected} archived tasks and none left, found ${archived} archived and ${left} left`)
}

// ---------------------------------------------------------------------------------------------- ceilings

const ceilingGroup: ScenarioGroup = {
  group: 'ceiling',
  names: () => ['ceiling.claim_delete', 'ceiling.lease_archive', 'ceiling.insert', 'ceiling.roundtrip', 'ceiling.handoff'],
  async run(ctx) {
    const {db, options} = ctx
    const rows = options.sizes.ceilingRows
    const out: BenchResult[] = []
    const claim = await repeat(ctx, 'ceiling.claim_delete', async () => {
      await db.reset()
      await db.fillTasks(rows)
      const r = await claimDeleteCycle(db.raw)
      if (r.rows !== rows) throw new Error(`ceiling.claim_delete claimed ${r.rows} of ${rows} rows`)
      return rate(r.rows, r.ms)
    })
    out.push(result(ctx, 'ceiling.claim_delete', {rows, batch: CEILING_BATCH, connections: 1}, 'rows/s', claim))
    ctx.ceilings.set('ceiling.claim_delete', out[0])

    const cycle = await repeat(ctx, 'ceiling.lease_archive', async () => {
      await db.reset()
      await db.fillTasks(rows)
      const r = await leaseArchiveCycle(db.raw, CEILING_BATCH)
      await expectArchived(db, rows, 'ceiling.lease_archive')
      return rate(r.rows, r.ms)
    })
    out.push(result(ctx, 'ceiling.lease_archive', {rows, batch: CEILING_BATCH, connections: 1}, 'rows/s', cycle, 'ceiling.claim_delete'))

    const inserts = options.sizes.enqueueTasks
    const insert = await repeat(ctx, 'ceiling.insert', async () => {
      await db.reset()
      const r = await insertCycle(db.raw, inserts)
      return rate(r.rows, r.ms)
    })
    const insertResult = result(ctx, 'ceiling.insert', {rows: inserts, rows_per_statement: 1000, rows_per_transaction: INSERT_PER_TRANSACTION}, 'rows/s', insert)
    out.push(insertResult)
    ctx.ceilings.set('ceiling.insert', insertResult)

    const queries = options.sizes.roundtrips
    const rtt = await repeat(ctx, 'ceiling.roundtrip', () => roundtrip(db.raw, queries))
    const rttResult = result(ctx, 'ceiling.roundtrip', {queries, query: 'SELECT 1'}, 'ms', rtt)
    out.push(rttResult)
    ctx.ceilings.set('ceiling.roundtrip', rttResult)

    const handoffs = Math.max(20, Math.round(queries / 10))
    await db.reset()
    const hand = await repeat(ctx, 'ceiling.handoff', () => handoff(db.raw, handoffs))
    const handResult = result(ctx, 'ceiling.handoff', {cycles: handoffs}, 'ms', hand)
    out.push(handResult)
    ctx.ceilings.set('ceiling.handoff', handResult)
    await db.reset()
    return out
  },
}

// ---------------------------------------------------------------------------------------------- enqueue

const enqueueGroup: ScenarioGroup = {
  group: 'enqueue',
  names: () => ['enqueue.bulk'],
  async run(ctx) {
    const {db} = ctx
    const count = ctx.options.sizes.enqueueTasks
    const specs: TaskSpec[] = Array.from({length: count}, (_, i) => ({taskClass: 'taskd.noop', data: {n: i}}))
    const values = await repeat(ctx, 'enqueue.bulk', async () => {
      await db.reset()
      const start = nowMs()
      // As `taskd tasks flood` does: enqueueTasks in transactions of 10,000 (multi-row inserts of 1000).
      for (let i = 0; i < count; i += INSERT_PER_TRANSACTION) {
        const chunk = specs.slice(i, i + INSERT_PER_TRANSACTION)
        await db.storage.transaction((store) => enqueueTasks(store, chunk))
      }
      const ms = nowMs() - start
      const stored = await db.count('taskd_tasks')
      if (stored !== count) throw new Error(`enqueue.bulk stored ${stored} of ${count} tasks`)
      return rate(count, ms)
    })
    await db.reset()
    return [result(ctx, 'enqueue.bulk', {tasks: count, per_transaction: INSERT_PER_TRANSACTION}, 'tasks/s', values, 'ceiling.insert')]
  },
}

// ---------------------------------------------------------------------------------------------- drain

/**
 * Drains `tasks` ready no-op tasks with one in-process daemon; returns tasks/s end to end (lease,
 * run, archive): from start() until stop() has recorded the last outcome.
 */
async function drainInProcess(db: BenchDatabase, tasks: number, concurrency: number, yieldTurn = false): Promise<number> {
  await db.reset()
  await db.fillTasks(tasks)
  const noop = countingNoop(tasks, {yieldTurn})
  const daemon = new Daemon({storage: db.storage, generators: [queueGenerator], concurrency, handlers: noop.handlers})
  const start = nowMs()
  await daemon.start()
  await noop.allRan
  await daemon.stop({graceSeconds: 5})
  const ms = nowMs() - start
  await expectArchived(db, tasks, `drain at concurrency ${concurrency}`)
  return rate(tasks, ms)
}

/** Several daemon processes on one queue: timed from "go" until the task table is seen empty (every task archived). */
async function drainProcesses(db: BenchDatabase, tasks: number, processes: number, concurrency: number): Promise<number> {
  await db.reset()
  await db.fillTasks(tasks)
  const workers: WorkerHandle[] = Array.from({length: processes}, () => spawnWorker({mode: 'drain', url: db.url, concurrency, total: null}))
  try {
    await Promise.all(workers.map((w) => w.next('ready', 60_000)))
    const start = nowMs()
    for (const w of workers) w.send({type: 'go'})
    while (await db.hasTasks()) await sleep(5)
    const ms = nowMs() - start
    for (const w of workers) w.send({type: 'stop'})
    await Promise.all(workers.map((w) => w.next('done')))
    await Promise.all(workers.map((w) => w.exited))
    await expectArchived(db, tasks, `drain with ${processes} processes`)
    return rate(tasks, ms)
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill()
  }
}

const DRAIN_CONCURRENCY = [1, 16, 64] as const
const PROCESS_CONCURRENCY = 16

const drainGroup: ScenarioGroup = {
  group: 'drain',
  names: () => [...DRAIN_CONCURRENCY.map((c) => `drain.c${c}`), 'drain.c16.yield', `drain.2proc.c${PROCESS_CONCURRENCY}`],
  async run(ctx) {
    const out: BenchResult[] = []
    const sizes = ctx.options.sizes.drainTasks
    for (const c of DRAIN_CONCURRENCY) {
      const name = `drain.c${c}`
      if (!wanted(ctx.options, 'drain', name)) continue
      const tasks = sizes[`c${c}`]
      const values = await repeat(ctx, name, () => drainInProcess(ctx.db, tasks, c))
      out.push(result(ctx, name, {tasks, concurrency: c, processes: 1}, 'tasks/s', values, 'ceiling.claim_delete'))
    }
    if (wanted(ctx.options, 'drain', 'drain.c16.yield')) {
      // The same no-op, but returning on the next event-loop turn, as every handler that awaits I/O does.
      const values = await repeat(ctx, 'drain.c16.yield', () => drainInProcess(ctx.db, sizes.yield, 16, true))
      out.push(result(ctx, 'drain.c16.yield', {tasks: sizes.yield, concurrency: 16, processes: 1, handler: 'yields one turn'}, 'tasks/s', values, 'ceiling.claim_delete'))
    }
    const name = `drain.2proc.c${PROCESS_CONCURRENCY}`
    if (wanted(ctx.options, 'drain', name)) {
      const values = await repeat(ctx, name, () => drainProcesses(ctx.db, sizes.procs, 2, PROCESS_CONCURRENCY))
      out.push(result(ctx, name, {tasks: sizes.procs, concurrency: PROCESS_CONCURRENCY, processes: 2}, 'tasks/s', values, 'ceiling.claim_delete'))
    }
    await ctx.db.reset()
    return out
  },
}

// ---------------------------------------------------------------------------------------------- idle latency

/** taskd's default idle polling ceiling (`taskd run --poll-max 250ms`). */
const POLL_MAX_SECONDS = 0.25
/**
 * Waits longer than the polling ceiling, with jitter, so every sample starts from a fully idle daemon
 * at a random phase of its polling. Smoke mode only checks the plumbing and waits briefly.
 */
const idleGap = (smoke: boolean) => sleep(smoke ? 20 + Math.random() * 30 : POLL_MAX_SECONDS * 1000 + 50 + Math.random() * 150)

async function sampleLatencies(samples: number, smoke: boolean, enqueueAndWait: (seq: number) => Promise<number>): Promise<number[]> {
  const out: number[] = []
  for (let seq = 0; seq < samples; seq++) {
    await idleGap(smoke)
    out.push(await enqueueAndWait(seq))
  }
  return out
}

/** Same process: a daemon in this process; enqueueTask wakes it through the local signal. */
async function idleSameProcess(storage: Storage, samples: number, smoke: boolean): Promise<number[]> {
  const started = new Map<number, (at: number) => void>()
  const daemon = new Daemon({
    storage,
    generators: [queueGenerator],
    concurrency: 4,
    pollMaxSeconds: POLL_MAX_SECONDS,
    handlers: {[PING_CLASS]: (data) => started.get(Number((data as {seq: number}).seq))?.(nowMs())},
  })
  await daemon.start()
  try {
    return await sampleLatencies(samples, smoke, async (seq) => {
      const handlerStart = new Promise<number>((resolve) => started.set(seq, resolve))
      const t0 = nowMs()
      await enqueueTask(storage, {taskClass: PING_CLASS, data: {seq}})
      return (await handlerStart) - t0
    })
  } finally {
    await daemon.stop({graceSeconds: 1})
  }
}

/** Other process: a daemon in a worker process finds the task by polling; its handler reports over IPC. */
async function idleOtherProcess(db: BenchDatabase, samples: number, smoke: boolean): Promise<number[]> {
  const worker = spawnWorker({mode: 'idle', url: db.url, pollMaxSeconds: POLL_MAX_SECONDS})
  try {
    await worker.next('ready', 60_000)
    const latencies = await sampleLatencies(samples, smoke, async (seq) => {
      const t0 = nowMs()
      await enqueueTask(db.storage, {taskClass: PING_CLASS, data: {seq}})
      let message = await worker.next('started', 30_000)
      while (message.seq !== seq) message = await worker.next('started', 30_000)
      return nowMs() - t0
    })
    worker.send({type: 'stop'})
    await worker.next('done', 30_000)
    await worker.exited
    return latencies
  } finally {
    if (worker.child.exitCode === null) worker.child.kill()
  }
}

const idleGroup: ScenarioGroup = {
  group: 'idle',
  names: () => ['idle.same_process.p50', 'idle.same_process.p95', 'idle.other_process.p50', 'idle.other_process.p95'],
  async run(ctx) {
    const out: BenchResult[] = []
    const samples = ctx.options.sizes.idleSamples
    const modes = [
      {key: 'same_process', measure: () => idleSameProcess(ctx.db.storage, samples, ctx.options.smoke)},
      {key: 'other_process', measure: () => idleOtherProcess(ctx.db, samples, ctx.options.smoke)},
    ]
    for (const mode of modes) {
      if (!wanted(ctx.options, 'idle', `idle.${mode.key}`)) continue
      await ctx.db.reset()
      const p50: number[] = []
      const p95: number[] = []
      await repeat(ctx, `idle.${mode.key}`, async () => {
        const latencies = await mode.measure()
        p50.push(percentile(latencies, 50))
        p95.push(percentile(latencies, 95))
        return 0
      })
      const params = {samples_per_run: samples, poll_max_ms: POLL_MAX_SECONDS * 1000}
      out.push(result(ctx, `idle.${mode.key}.p50`, {...params, percentile: 50}, 'ms', p50, 'ceiling.handoff'))
      out.push(result(ctx, `idle.${mode.key}.p95`, {...params, percentile: 95}, 'ms', p95, 'ceiling.handoff'))
    }
    await ctx.db.reset()
    return out
  },
}

// ---------------------------------------------------------------------------------------------- backlog cost

const ROUND_SLOTS = 16
const PEEK_LIMIT = 20
const ROUND_OWNER = 'bench:round'

/**
 * One scheduling round as the daemon does it with 16 free slots: rank the generators (queue.ready),
 * then lease from the best (queue.lease, one transaction). Returns milliseconds; the leased tasks are
 * handed back afterwards, untimed, so the backlog stays the same size.
 */
async function schedulingRound(storage: Storage): Promise<number> {
  const ctx = {store: storage, owner: ROUND_OWNER}
  const start = nowMs()
  const leased = await fillSlots([queueGenerator], ROUND_SLOTS, {
    ready: (g) => g.ready(ctx, {}),
    lease: async (g, limit) => (await g.lease(ctx, {limit, leaseSeconds: 60})).length,
  })
  const ms = nowMs() - start
  if (leased !== ROUND_SLOTS) throw new Error(`scheduling round leased ${leased} of ${ROUND_SLOTS}`)
  await storage.db.updateTable('taskd_tasks').set({lease_owner: null, lease_expires: null}).where('lease_owner', '=', ROUND_OWNER).execute()
  return ms
}

async function peekCall(storage: Storage): Promise<number> {
  const start = nowMs()
  const tasks = await queueGenerator.peek({store: storage, owner: ROUND_OWNER}, {limit: PEEK_LIMIT})
  const ms = nowMs() - start
  if (tasks.length !== PEEK_LIMIT) throw new Error(`peek returned ${tasks.length} of ${PEEK_LIMIT}`)
  return ms
}

async function rawRound(db: BenchDatabase): Promise<number> {
  const ms = await rawLeaseRound(db.raw, ROUND_SLOTS, ROUND_OWNER)
  await db.storage.db.updateTable('taskd_tasks').set({lease_owner: null, lease_expires: null}).where('lease_owner', '=', ROUND_OWNER).execute()
  return ms
}

async function meanOf(calls: number, fn: () => Promise<number>): Promise<number> {
  for (let i = 0; i < Math.min(5, calls); i++) await fn()
  let total = 0
  for (let i = 0; i < calls; i++) total += await fn()
  return total / calls
}

const backlogGroup: ScenarioGroup = {
  group: 'backlog',
  names: () => ['ceiling.round_sql', 'round.cost', 'ceiling.peek_sql', 'peek.cost', 'round.flatness', 'peek.flatness'],
  async run(ctx) {
    const {db, options} = ctx
    const backlogs = [...options.sizes.backlogs].sort((a, b) => a - b)
    const calls = options.sizes.costCalls
    const perBacklog: {backlog: number; round: number[]; peek: number[]}[] = []
    const out: BenchResult[] = []
    await db.reset()
    let filled = 0
    for (const backlog of backlogs) {
      ctx.progress(`backlog: filling to ${backlog.toLocaleString('en-US')} tasks`)
      await db.fillTasks(backlog - filled)
      filled = backlog
      const rawRounds: number[] = []
      const round = await repeat(ctx, `round.cost backlog=${backlog}`, async () => {
        rawRounds.push(await meanOf(calls, () => rawRound(db)))
        return meanOf(calls, () => schedulingRound(db.storage))
      })
      const rawPeeks: number[] = []
      const peek = await repeat(ctx, `peek.cost backlog=${backlog}`, async () => {
        rawPeeks.push(await meanOf(calls, () => rawPeek(db.raw, PEEK_LIMIT)))
        return meanOf(calls, () => peekCall(db.storage))
      })
      perBacklog.push({backlog, round, peek})
      const roundCeiling = result(ctx, 'ceiling.round_sql', {backlog, slots: ROUND_SLOTS, calls_per_run: calls}, 'ms', rawRounds)
      const peekCeiling = result(ctx, 'ceiling.peek_sql', {backlog, limit: PEEK_LIMIT, calls_per_run: calls}, 'ms', rawPeeks)
      out.push(roundCeiling, result(ctx, 'round.cost', {backlog, slots: ROUND_SLOTS, calls_per_run: calls}, 'ms', round, roundCeiling))
      out.push(peekCeiling, result(ctx, 'peek.cost', {backlog, limit: PEEK_LIMIT, calls_per_run: calls}, 'ms', peek, peekCeiling))
    }
    const first = perBacklog[0]
    const last = perBacklog[perBacklog.length - 1]
    if (first && last && first !== last) {
      for (const key of ['round', 'peek'] as const) {
        // Run i at the largest backlog over run i at the smallest: < 1.5 is the target ("flat").
        const ratios = last[key].map((v, i) => v / first[key][i])
        out.push(result(ctx, `${key}.flatness`, {from: first.backlog, to: last.backlog, median_from_ms: median(first[key]), median_to_ms: median(last[key])}, 'x', ratios))
      }
    }
    await db.reset()
    return out
  },
}

// ---------------------------------------------------------------------------------------------- gc

const GC_BATCH = 1000
const DAY = 86_400

/** The archive collector's batch through kysely, as the GC generator will issue it. */
async function gcDeleteKysely(storage: Storage, cutoff: number): Promise<{rows: number; ms: number}> {
  let rows = 0
  const start = nowMs()
  for (;;) {
    const r = await storage.db.deleteFrom('taskd_task_archive').where('archived_at', '<', cutoff).orderBy('archived_at').limit(GC_BATCH).executeTakeFirst()
    const n = Number(r.numDeletedRows)
    rows += n
    if (n < GC_BATCH) break
  }
  return {rows, ms: nowMs() - start}
}

const gcGroup: ScenarioGroup = {
  group: 'gc',
  names: () => ['ceiling.gc_delete', 'gc.delete'],
  async run(ctx) {
    const {db} = ctx
    const rows = ctx.options.sizes.gcRows
    // 90% of the archive is older than the retention cutoff and goes; the newest 10% stays.
    const keep = Math.ceil(rows / 9)
    const prepare = async () => {
      await db.reset()
      const now = Math.floor(Date.now() / 1000)
      await db.fillArchive(rows, now - 30 * DAY)
      await db.fillArchive(keep, now)
      return now - 7 * DAY
    }
    const check = async (deleted: number) => {
      if (deleted !== rows || (await db.count('taskd_task_archive')) !== keep) throw new Error(`gc deleted ${deleted} of ${rows} rows`)
    }
    // Interleaved (raw, then kysely, in every run) so neither side always gets the colder database.
    const raw: number[] = []
    const viaKysely = await repeat(ctx, 'gc.delete (and ceiling.gc_delete)', async () => {
      let cutoff = await prepare()
      const r = await gcDeleteLoop(db.raw, cutoff, GC_BATCH)
      await check(r.rows)
      raw.push(rate(r.rows, r.ms))
      cutoff = await prepare()
      const k = await gcDeleteKysely(db.storage, cutoff)
      await check(k.rows)
      return rate(k.rows, k.ms)
    })
    const rawResult = result(ctx, 'ceiling.gc_delete', {rows, kept: keep, batch: GC_BATCH}, 'rows/s', raw)
    await db.reset()
    return [rawResult, result(ctx, 'gc.delete', {rows, kept: keep, batch: GC_BATCH}, 'rows/s', viaKysely, rawResult)]
  },
}

// ---------------------------------------------------------------------------------------------- rss

const RSS_CONCURRENCY = 16

/** Resident set of a process from /proc (Linux), read from outside so a busy event loop cannot skip samples; null elsewhere. */
function residentMb(pid: number): number | null {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return kb ? Number(kb[1]) / 1024 : null
  } catch {
    return null
  }
}

const rssGroup: ScenarioGroup = {
  group: 'rss',
  names: () => ['rss.growth', 'rss.peak', 'rss.heap_retained', 'drain.long.c16', 'drain.long.loop_stall_max'],
  async run(ctx) {
    const {db} = ctx
    const total = ctx.options.sizes.rssTasks
    const sampleMs = ctx.options.smoke ? 50 : 500
    ctx.progress(`rss: filling ${total.toLocaleString('en-US')} tasks`)
    await db.reset()
    await db.fillTasks(total)
    ctx.progress(`rss: one daemon process drains ${total.toLocaleString('en-US')} tasks (single run)`)
    const worker = spawnWorker({mode: 'rss', url: db.url, concurrency: RSS_CONCURRENCY, total, sampleMs}, ['--expose-gc'])
    const outside: MemorySample[] = []
    let done: Extract<FromWorker, {type: 'done'}>
    let sampler: NodeJS.Timeout | undefined
    try {
      await worker.next('ready', 60_000)
      const pid = worker.child.pid ?? 0
      const start = nowMs()
      sampler = setInterval(() => {
        const rssMb = residentMb(pid)
        if (rssMb !== null) outside.push({t: nowMs() - start, rssMb})
      }, sampleMs)
      worker.send({type: 'go'})
      done = await worker.next('done', 3_600_000)
      await worker.exited
    } finally {
      if (sampler) clearInterval(sampler)
      if (worker.child.exitCode === null) worker.child.kill()
    }
    await expectArchived(db, total, 'rss run')
    await db.reset()
    // Sampled from outside when /proc allows (a starved event loop cannot skip those), else by the worker itself.
    const samples = outside.length >= 2 ? outside : (done.samples ?? [])
    // Warm: one second into the run (a tenth of it, if shorter). A flat daemon stays near this to the end.
    const baseline = samples.find((s) => s.t >= Math.min(1000, done.ms / 10)) ?? samples[0]
    const peak = Math.max(...samples.map((s) => s.rssMb))
    const end = samples[samples.length - 1]
    const params = {tasks: total, concurrency: RSS_CONCURRENCY, processes: 1}
    const heap = done.heapAfterGcMb ?? {start: 0, end: 0}
    return [
      result(ctx, 'rss.growth', {...params, samples: samples.length, from_s: baseline.t / 1000, from_mb: baseline.rssMb, end_mb: end.rssMb, sampled: samples === outside ? 'outside' : 'inside'}, 'MB', [peak - baseline.rssMb]),
      result(ctx, 'rss.peak', {...params, samples: samples.length}, 'MB', [peak]),
      result(ctx, 'rss.heap_retained', {...params, after_gc: true, start_mb: heap.start}, 'MB', [heap.end - heap.start]),
      result(ctx, 'drain.long.c16', params, 'tasks/s', [rate(total, done.ms)], 'ceiling.claim_delete'),
      // The longest the worker's event loop went without turning: timers (heartbeat, handler timeouts, ack flushes) wait that long.
      result(ctx, 'drain.long.loop_stall_max', params, 'ms', [done.loopStallMaxMs ?? 0]),
    ]
  },
}

function wanted(options: BenchOptions, group: string, name: string): boolean {
  if (options.filters.length === 0) return true
  return options.filters.some((f) => f === group || name.startsWith(f) || f.startsWith(name))
}

/** In run order. Ceilings always run: every ratio needs them. */
export const SCENARIO_GROUPS: readonly ScenarioGroup[] = [ceilingGroup, enqueueGroup, drainGroup, idleGroup, backlogGroup, gcGroup, rssGroup]

export function groupSelected(options: BenchOptions, group: ScenarioGroup): boolean {
  if (group.group === 'ceiling' || options.filters.length === 0) return true
  return group.names(options).some((name) => wanted(options, group.group, name))
}
