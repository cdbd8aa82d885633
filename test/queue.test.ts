/**
 * The queue generator's semantics, on every dialect: lease order and atomicity, outcomes, delays,
 * lease expiry and fencing, the daemon end to end with handlers, transactional and bulk enqueue,
 * payload limits, heartbeat and graceful stop. Real databases, no mocks, no blind sleeps.
 */
import {fork, type ChildProcess} from 'node:child_process'
import {fileURLToPath} from 'node:url'

import {afterAll, afterEach, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {
  Daemon,
  MAX_DATA_BYTES,
  Storage,
  enqueueTask,
  enqueueTasks,
  queueGenerator,
  type DaemonOptions,
  type DynamicTask,
  type HandlerInput,
  type TaskOutcome,
  type TaskSpec,
} from '../src/index.js'
import {ARCHIVE_RESULT} from '../src/storage/schema.js'
import {DIALECTS, openTestStorage, until, type TestDatabase} from './helpers/databases.js'
import type {LeaseWorkerReply, LeaseWorkerReport, LeaseWorkerRequest} from './helpers/lease-worker.js'

const OWNER_A = 'owner-a'
const OWNER_B = 'owner-b'

function lease(storage: Storage, owner: string, limit: number, leaseSeconds = 60, priorityCeiling?: number): Promise<DynamicTask[]> {
  return queueGenerator.lease({store: storage, owner}, {limit, leaseSeconds, priorityCeiling})
}

function peek(storage: Storage, limit: number): Promise<DynamicTask[]> {
  return queueGenerator.peek({store: storage, owner: 'peeker'}, {limit})
}

function complete(storage: Storage, owner: string, outcomes: TaskOutcome[]): Promise<string[]> {
  return storage.transaction((store) => queueGenerator.complete({store, owner}, outcomes))
}

function taskRow(storage: Storage, id: number) {
  return storage.db.selectFrom('taskd_tasks').selectAll().where('id', '=', id).executeTakeFirst()
}

function archiveRows(storage: Storage, id: number) {
  return storage.db.selectFrom('taskd_task_archive').selectAll().where('id', '=', id).execute()
}

async function archived(storage: Storage, id: number) {
  const [row] = await until(async () => {
    const rows = await archiveRows(storage, id)
    return rows.length > 0 ? rows : null
  }, {what: `queue:${id} to be archived`})
  return row
}

async function countRows(storage: Storage, table: 'taskd_tasks' | 'taskd_task_archive'): Promise<number> {
  const row = await storage.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()
  return Number(row.n)
}

const ids = (tasks: readonly DynamicTask[]) => tasks.map((t) => Number(t.identifier))

describe.each(DIALECTS)('queue generator on $name', (d) => {
  describe.skipIf(d.skip)(d.name, () => {
    let storage: Storage
    let database: TestDatabase
    let cleanup: () => Promise<void>
    const extraStorages: Storage[] = []
    const daemons: Daemon[] = []

    // One database per dialect (creating and migrating one per test costs about a second on MariaDB);
    // every test starts from empty tables.
    beforeAll(async () => {
      ;({storage, database, cleanup} = await openTestStorage(d.name))
    })
    afterAll(async () => {
      await cleanup?.()
    })

    beforeEach(async () => {
      for (const table of ['taskd_tasks', 'taskd_task_archive', 'taskd_daemons', 'taskd_generator_state'] as const) {
        await storage.db.deleteFrom(table).execute()
      }
    })

    afterEach(async () => {
      for (const daemon of daemons.splice(0)) await daemon.stop({graceSeconds: 0})
      for (const extra of extraStorages.splice(0)) await extra.close()
    })

    async function openExtra(): Promise<Storage> {
      const extra = await Storage.open(database.url)
      extraStorages.push(extra)
      return extra
    }

    async function startDaemon(options: Partial<DaemonOptions> = {}): Promise<Daemon> {
      const daemon = new Daemon({storage, generators: [queueGenerator], concurrency: 4, pollMaxSeconds: 0.05, ...options})
      daemons.push(daemon)
      await daemon.start()
      return daemon
    }

    describe('lease order', () => {
      it('leases unleased tasks by priority then id, N per round trip', async () => {
        const enqueued: {id: number; priority: number}[] = []
        for (const priority of [3000, 1000, 2000, 1000, 3000, 2000, 1000]) {
          const {id} = await enqueueTask(storage, {taskClass: 'taskd.noop', priority})
          enqueued.push({id, priority})
        }
        const expected = [...enqueued].sort((a, b) => a.priority - b.priority || a.id - b.id).map((e) => e.id)

        expect(ids(await peek(storage, 10))).toEqual(expected)
        const first = await lease(storage, OWNER_A, 3)
        expect(ids(first)).toEqual(expected.slice(0, 3))
        expect(first.every((t) => t.lease?.owner === OWNER_A && t.attempt === 1 && t.ref === `queue:${t.identifier}`)).toBe(true)
        const second = await lease(storage, OWNER_A, 3)
        expect(ids(second)).toEqual(expected.slice(3, 6))
        const third = await lease(storage, OWNER_A, 3)
        expect(ids(third)).toEqual(expected.slice(6))
        expect(await lease(storage, OWNER_A, 3)).toEqual([])
      })

      it('honours the priority ceiling', async () => {
        const urgent = await enqueueTask(storage, {taskClass: 'taskd.noop', priority: 1000})
        await enqueueTask(storage, {taskClass: 'taskd.noop', priority: 4000})
        expect(await queueGenerator.ready({store: storage, owner: OWNER_A}, {priorityCeiling: 2000})).toBe(1000)
        expect(ids(await lease(storage, OWNER_A, 10, 60, 2000))).toEqual([urgent.id])
        expect(await lease(storage, OWNER_A, 10, 60, 2000)).toEqual([])
        expect(await queueGenerator.ready({store: storage, owner: OWNER_A}, {priorityCeiling: 2000})).toBeNull()
      })

      it('takes unleased tasks first, then expired leases oldest expiry first', async () => {
        const a = await enqueueTask(storage, {taskClass: 'taskd.noop', priority: 1000})
        const b = await enqueueTask(storage, {taskClass: 'taskd.noop', priority: 1000})
        const c = await enqueueTask(storage, {taskClass: 'taskd.noop', priority: 1000})
        expect(ids(await lease(storage, OWNER_A, 3))).toEqual([a.id, b.id, c.id])
        const now = storage.now()
        // Expired in the order c, a, b (regardless of priority or id); one live lease stays put.
        await storage.db.updateTable('taskd_tasks').set({lease_expires: now - 30}).where('id', '=', c.id).execute()
        await storage.db.updateTable('taskd_tasks').set({lease_expires: now - 20}).where('id', '=', a.id).execute()
        await storage.db.updateTable('taskd_tasks').set({lease_expires: now - 10}).where('id', '=', b.id).execute()
        const live = await enqueueTask(storage, {taskClass: 'taskd.noop', priority: 1000})
        await lease(storage, 'someone-else', 1)
        const fresh = await enqueueTask(storage, {taskClass: 'taskd.noop', priority: 4000})

        expect(ids(await peek(storage, 10))).toEqual([fresh.id, c.id, a.id, b.id])
        const got = await lease(storage, OWNER_B, 3)
        expect(ids(got)).toEqual([fresh.id, c.id, a.id])
        expect(got.map((t) => t.attempt)).toEqual([1, 2, 2])
        expect(ids(await lease(storage, OWNER_B, 3))).toEqual([b.id])
        expect((await taskRow(storage, live.id))?.lease_owner).toBe('someone-else')
      })

      it('peek has no side effect', async () => {
        const {id} = await enqueueTask(storage, {taskClass: 'taskd.noop'})
        expect(ids(await peek(storage, 5))).toEqual([id])
        expect(ids(await peek(storage, 5))).toEqual([id])
        const row = await taskRow(storage, id)
        expect(row?.lease_owner).toBeNull()
        expect(Number(row?.attempts)).toBe(0)
        expect((await peek(storage, 5))[0].lease).toBeNull()
      })

      it('concurrent lease calls from separate processes and handles are disjoint and complete', async () => {
        const total = 500
        await enqueueTasks(storage, Array.from({length: total}, (_, i) => ({taskClass: 'taskd.noop', priority: 1000 + (i % 7), data: {i}})))
        // 2 processes, each with its own Storage handle running 10 lease loops at once: 20 concurrent lease calls.
        const reports = await leaseFromProcesses(database.url, 2, 10, 10)
        const all = reports.flatMap((r) => r.ids)
        expect(new Set(all).size).toBe(all.length)
        expect(all.length).toBe(total)
        // Each worker got a share, every row carries the owner of the worker that got it, and was leased once.
        const ownerOf = new Map<number, string>()
        for (const r of reports) for (const id of r.ids) ownerOf.set(id, r.owner)
        const rows = await storage.db.selectFrom('taskd_tasks').select(['id', 'lease_owner', 'attempts']).execute()
        expect(rows).toHaveLength(total)
        for (const row of rows) {
          expect(row.lease_owner).toBe(ownerOf.get(Number(row.id)))
          expect(Number(row.attempts)).toBe(1)
        }
      })

      // Not on SQLite: two better-sqlite3 handles in one process stall each other. A `begin immediate`
      // issued while the other handle's transaction is open blocks the whole event loop in SQLite's busy
      // handler (busy_timeout, 10 s), so the holder cannot commit until the waiter gives up with
      // SQLITE_BUSY and retries. Separate processes (the test above) are unaffected.
      it.skipIf(d.name === 'sqlite')('20 concurrent lease calls on 20 handles in one process are disjoint and complete', async () => {
        const total = 500
        await enqueueTasks(storage, Array.from({length: total}, () => ({taskClass: 'taskd.noop'})))
        const handles = await Promise.all(Array.from({length: 20}, () => openExtra()))
        const perHandle = await Promise.all(
          handles.map(async (handle, w) => {
            const mine: number[] = []
            for (;;) {
              const got = await lease(handle, `handle-${w}`, 10)
              if (got.length === 0) return mine
              mine.push(...ids(got))
            }
          }),
        )
        const all = perHandle.flat()
        expect(new Set(all).size).toBe(all.length)
        expect(all.length).toBe(total)
      })

      it('concurrent lease calls on one handle are disjoint and complete', async () => {
        const total = 300
        await enqueueTasks(storage, Array.from({length: total}, () => ({taskClass: 'taskd.noop'})))
        const perLoop = await Promise.all(
          Array.from({length: 20}, async (_, w) => {
            const mine: number[] = []
            for (;;) {
              const got = await lease(storage, `loop-${w}`, 7)
              if (got.length === 0) return mine
              mine.push(...ids(got))
            }
          }),
        )
        const all = perLoop.flat()
        expect(new Set(all).size).toBe(all.length)
        expect(all.length).toBe(total)
      })
    })

    describe('outcomes', () => {
      async function leaseOne(spec: TaskSpec = {taskClass: 'taskd.noop'}): Promise<DynamicTask> {
        const {id} = await enqueueTask(storage, spec)
        const [task] = await lease(storage, OWNER_A, 1)
        expect(Number(task.identifier)).toBe(id)
        return task
      }

      it('success archives with result 0 and the duration', async () => {
        const task = await leaseOne({taskClass: 'taskd.noop', data: {x: 1}, priority: 2500, objectRef: 'obj', containerRef: 'box'})
        expect(await complete(storage, OWNER_A, [{kind: 'success', task, durationUs: 1234.4}])).toEqual([task.ref])
        expect(await taskRow(storage, idOf(task))).toBeUndefined()
        const [row, ...more] = await archiveRows(storage, idOf(task))
        expect(more).toEqual([])
        expect(row).toMatchObject({task_class: 'taskd.noop', priority: 2500, data: '{"x":1}', object_ref: 'obj', container_ref: 'box', result: ARCHIVE_RESULT.success, reason: null})
        expect(Number(row.duration_us)).toBe(1234)
        expect(Number(row.attempts)).toBe(1)
        expect(Number(row.failure_count)).toBe(0)
      })

      it('fail archives with result 1 and the reason', async () => {
        const task = await leaseOne()
        expect(await complete(storage, OWNER_A, [{kind: 'fail', task, reason: 'broken beyond repair', durationUs: 10}])).toEqual([task.ref])
        expect(await taskRow(storage, idOf(task))).toBeUndefined()
        const [row] = await archiveRows(storage, idOf(task))
        expect(row).toMatchObject({result: ARCHIVE_RESULT.failure, reason: 'broken beyond repair'})
        expect(Number(row.duration_us)).toBe(10)
      })

      it('records success and failure of several tasks in one batch', async () => {
        await enqueueTasks(storage, [{taskClass: 'taskd.noop'}, {taskClass: 'taskd.noop'}, {taskClass: 'taskd.noop'}])
        const [t1, t2, t3] = await lease(storage, OWNER_A, 3)
        const applied = await complete(storage, OWNER_A, [
          {kind: 'success', task: t1, durationUs: 1},
          {kind: 'fail', task: t2, reason: 'no', durationUs: 2},
          {kind: 'success', task: t3, durationUs: 3},
        ])
        expect(applied.sort()).toEqual([t1.ref, t2.ref, t3.ref].sort())
        expect((await archiveRows(storage, idOf(t1)))[0]).toMatchObject({result: 0, reason: null})
        expect((await archiveRows(storage, idOf(t2)))[0]).toMatchObject({result: 1, reason: 'no'})
        expect((await archiveRows(storage, idOf(t3)))[0]).toMatchObject({result: 0, reason: null})
        expect(await countRows(storage, 'taskd_tasks')).toBe(0)
      })

      it('retry counts the failure, records it and waits until retryAt', async () => {
        const task = await leaseOne()
        const now = storage.now()
        const retryAt = now + 120
        expect(await complete(storage, OWNER_A, [{kind: 'retry', task, error: 'flaky', retryAt, durationUs: 5}])).toEqual([task.ref])
        const row = await taskRow(storage, idOf(task))
        expect(row).toMatchObject({lease_owner: null, lease_expires: null, last_error: 'flaky'})
        expect(Number(row?.failure_count)).toBe(1)
        expect(Number(row?.failure_time)).toBeGreaterThanOrEqual(now)
        expect(Number(row?.available_at)).toBe(retryAt)
        expect(await archiveRows(storage, idOf(task))).toEqual([])
        expect(await lease(storage, OWNER_B, 1)).toEqual([])
        // Once the wait is over it is leased again, carrying its failure count.
        await storage.db.updateTable('taskd_tasks').set({available_at: now - 1}).where('id', '=', idOf(task)).execute()
        const [again] = await lease(storage, OWNER_B, 1)
        expect(again).toMatchObject({ref: task.ref, attempt: 2, failureCount: 1})
      })

      it('yield puts the task back until max(until, now + 5) without counting a failure', async () => {
        await enqueueTasks(storage, [{taskClass: 'taskd.noop'}, {taskClass: 'taskd.noop'}])
        const [soon, later] = await lease(storage, OWNER_A, 2)
        const before = storage.now()
        const applied = await complete(storage, OWNER_A, [
          {kind: 'yield', task: soon, until: before + 1},
          {kind: 'yield', task: later, until: before + 600},
        ])
        const after = storage.now()
        expect(applied.sort()).toEqual([soon.ref, later.ref].sort())
        const soonRow = await taskRow(storage, idOf(soon))
        expect(soonRow).toMatchObject({lease_owner: null, lease_expires: null, last_error: null, failure_time: null})
        expect(Number(soonRow?.failure_count)).toBe(0)
        expect(Number(soonRow?.available_at)).toBeGreaterThanOrEqual(before + 5)
        expect(Number(soonRow?.available_at)).toBeLessThanOrEqual(after + 5)
        const laterRow = await taskRow(storage, idOf(later))
        expect(Number(laterRow?.available_at)).toBe(before + 600)
        expect(Number(laterRow?.failure_count)).toBe(0)
        expect(await lease(storage, OWNER_B, 2)).toEqual([])
        expect(await archiveRows(storage, idOf(soon))).toEqual([])
      })

      it('release clears the lease and the task is leasable at once', async () => {
        const task = await leaseOne()
        expect(await lease(storage, OWNER_B, 1)).toEqual([])
        expect(await complete(storage, OWNER_A, [{kind: 'release', task}])).toEqual([task.ref])
        const row = await taskRow(storage, idOf(task))
        expect(row).toMatchObject({lease_owner: null, lease_expires: null})
        expect(Number(row?.failure_count)).toBe(0)
        const [again] = await lease(storage, OWNER_B, 1)
        expect(again?.ref).toBe(task.ref)
        expect(again?.lease?.owner).toBe(OWNER_B)
      })
    })

    describe('delays', () => {
      it('a delayed task is neither leased nor peeked before its time, then becomes leasable', async () => {
        const before = storage.now()
        const {id} = await enqueueTask(storage, {taskClass: 'taskd.noop', delaySeconds: 3600})
        const row = await taskRow(storage, id)
        expect(Number(row?.available_at)).toBeGreaterThanOrEqual(before + 3600)
        expect(await queueGenerator.ready({store: storage, owner: OWNER_A}, {})).toBeNull()
        expect(await peek(storage, 10)).toEqual([])
        expect(await lease(storage, OWNER_A, 10)).toEqual([])
        // A ready task enqueued later is not held up by the delayed one.
        const ready = await enqueueTask(storage, {taskClass: 'taskd.noop', priority: 4000})
        expect(ids(await lease(storage, OWNER_A, 10))).toEqual([ready.id])

        // Time passes.
        await storage.db.updateTable('taskd_tasks').set({available_at: storage.now() - 1}).where('id', '=', id).execute()
        expect(ids(await peek(storage, 10))).toEqual([id])
        expect(ids(await lease(storage, OWNER_A, 10))).toEqual([id])
      })
    })

    describe('lease expiry', () => {
      it('an expired lease is taken over and the first owner is fenced out', async () => {
        const {id, ref} = await enqueueTask(storage, {taskClass: 'taskd.noop'})
        const [mine] = await lease(storage, OWNER_A, 1, 3)
        expect(mine.lease?.owner).toBe(OWNER_A)
        expect(await lease(storage, OWNER_B, 1)).toEqual([])
        // Owner A's daemon stalls: its lease runs out.
        await storage.db.updateTable('taskd_tasks').set({lease_expires: storage.now() - 1}).where('id', '=', id).execute()
        const [theirs] = await lease(storage, OWNER_B, 1)
        expect(theirs).toMatchObject({ref, attempt: 2})
        expect(theirs.lease?.owner).toBe(OWNER_B)

        expect(await queueGenerator.renew({store: storage, owner: OWNER_A}, [mine], 60)).toEqual([])
        expect(await complete(storage, OWNER_A, [{kind: 'success', task: mine, durationUs: 1}])).toEqual([])
        expect(await complete(storage, OWNER_A, [{kind: 'retry', task: mine, error: 'x', retryAt: storage.now() + 60, durationUs: 1}])).toEqual([])
        expect(await complete(storage, OWNER_A, [{kind: 'release', task: mine}])).toEqual([])
        expect(await archiveRows(storage, id)).toEqual([])
        expect(await taskRow(storage, id)).toMatchObject({lease_owner: OWNER_B, failure_count: 0})

        expect(await complete(storage, OWNER_B, [{kind: 'success', task: theirs, durationUs: 1}])).toEqual([ref])
        // The stale owner comes back after the archive: still nothing.
        expect(await complete(storage, OWNER_A, [{kind: 'fail', task: mine, reason: 'late', durationUs: 1}])).toEqual([])
        const rows = await archiveRows(storage, id)
        expect(rows).toHaveLength(1)
        expect(rows[0]).toMatchObject({result: ARCHIVE_RESULT.success, reason: null})
        expect(Number(rows[0].attempts)).toBe(2)
      })
    })

    describe('daemon with handlers', () => {
      it('retries until maxRetries is exceeded, then archives the task as failed', async () => {
        let executions = 0
        const handlers: Record<string, HandlerInput> = {
          flaky: {
            run: () => {
              executions++
              throw new Error(`flaky failure #${executions}`)
            },
            retryWaitSeconds: 0,
            maxRetries: 2,
          },
        }
        const {id} = await enqueueTask(storage, {taskClass: 'flaky'})
        await startDaemon({handlers})
        const row = await archived(storage, id)
        expect(executions).toBe(3)
        expect(row.result).toBe(ARCHIVE_RESULT.failure)
        expect(row.reason).toContain('flaky failure #3')
        expect(Number(row.attempts)).toBe(3)
        expect(Number(row.failure_count)).toBe(3)
        expect(await taskRow(storage, id)).toBeUndefined()
      })

      it('waits retryWaitSeconds counted from the failure (not the lease) and records the error', async () => {
        let release: () => void = () => {}
        const gate = new Promise<void>((resolve) => (release = resolve))
        const handlers: Record<string, HandlerInput> = {
          later: {
            run: async () => {
              await gate
              throw new Error('try again later')
            },
            retryWaitSeconds: 600,
          },
        }
        const {id} = await enqueueTask(storage, {taskClass: 'later'})
        await startDaemon({handlers, leaseSeconds: 30})
        const leased = await until(async () => {
          const r = await taskRow(storage, id)
          return r?.lease_owner ? r : null
        }, {what: 'the task to be leased'})
        const leasedAt = Number(leased.lease_expires) - 30
        // Fail the handler two clock seconds after the lease, so the two ways of counting differ.
        await until(() => storage.now() >= leasedAt + 2, {what: 'the clock to move on'})
        release()
        const row = await until(async () => {
          const r = await taskRow(storage, id)
          return r && Number(r.failure_count) === 1 && r.lease_owner === null ? r : null
        }, {what: 'the failure to be recorded'})
        expect(row.last_error).toBe('try again later')
        expect(Number(row.failure_time)).toBeGreaterThanOrEqual(leasedAt + 2)
        // Counted from the lease (Phabricator) it would be at most leasedAt + 601.
        expect(Number(row.available_at)).toBeGreaterThanOrEqual(leasedAt + 602)
        const wait = Number(row.available_at) - Number(row.failure_time)
        expect(wait).toBeGreaterThanOrEqual(600)
        expect(wait).toBeLessThanOrEqual(601)
        expect(await archiveRows(storage, id)).toEqual([])
      })

      it('taskd.fail with permanent: true is archived failed at once, never retried', async () => {
        const {id} = await enqueueTask(storage, {taskClass: 'taskd.fail', data: {permanent: true, message: 'no way'}})
        const daemon = await startDaemon({untilIdle: true})
        await daemon.finished()
        const [row, ...more] = await archiveRows(storage, id)
        expect(more).toEqual([])
        expect(row).toMatchObject({result: ARCHIVE_RESULT.failure, reason: 'no way'})
        expect(Number(row.attempts)).toBe(1)
        expect(daemon.stats).toMatchObject({failed: 1, retried: 0})
      })

      it('ctx.yield puts the task back without counting a failure', async () => {
        let runs = 0
        const handlers: Record<string, HandlerInput> = {
          waiter: (_data, ctx) => {
            runs++
            ctx.yield(60)
          },
        }
        const {id} = await enqueueTask(storage, {taskClass: 'waiter'})
        const daemon = await startDaemon({handlers, untilIdle: true})
        const started = storage.now()
        await daemon.finished()
        expect(runs).toBe(1)
        const row = await taskRow(storage, id)
        expect(row).toMatchObject({lease_owner: null, last_error: null, failure_time: null})
        expect(Number(row?.failure_count)).toBe(0)
        expect(Number(row?.available_at)).toBeGreaterThanOrEqual(started + 60)
        expect(daemon.stats.yielded).toBe(1)
        expect(await archiveRows(storage, id)).toEqual([])
      })

      it('records a readable reason when a handler throws a non-Error', async () => {
        const handlers: Record<string, HandlerInput> = {
          'throws-string': {
            run: () => {
              throw 'boom'
            },
            maxRetries: 0,
          },
          'throws-object': {
            run: () => {
              throw {x: 1}
            },
            maxRetries: 0,
          },
          'throws-null': {
            run: () => {
              throw null
            },
            maxRetries: 0,
          },
        }
        const s = await enqueueTask(storage, {taskClass: 'throws-string'})
        const o = await enqueueTask(storage, {taskClass: 'throws-object'})
        const n = await enqueueTask(storage, {taskClass: 'throws-null'})
        const daemon = await startDaemon({handlers, untilIdle: true})
        await daemon.finished()
        const [sRow] = await archiveRows(storage, s.id)
        const [oRow] = await archiveRows(storage, o.id)
        const [nRow] = await archiveRows(storage, n.id)
        expect(sRow.result).toBe(ARCHIVE_RESULT.failure)
        expect(sRow.reason).toMatch(/^boom\b/)
        expect(oRow.reason).toContain('{"x":1}')
        expect(oRow.reason).not.toContain('[object Object]')
        expect(nRow.reason).toContain('null')
        expect(nRow.reason).not.toContain('undefined')
      })

      it('times out a handler that never resolves and keeps running other tasks', async () => {
        const handlers: Record<string, HandlerInput> = {
          hang: {run: () => new Promise(() => {}), timeoutSeconds: 1, maxRetries: 1, retryWaitSeconds: 0},
        }
        const hung = await enqueueTask(storage, {taskClass: 'hang', priority: 1000})
        await startDaemon({handlers, concurrency: 2})
        await until(async () => (await taskRow(storage, hung.id))?.lease_owner, {what: 'the hanging task to be leased'})
        // The other slot keeps working while the handler hangs.
        const during = await enqueueTasks(storage, Array.from({length: 5}, () => ({taskClass: 'taskd.noop'})))
        expect(during.count).toBe(5)
        await until(async () => (await countRows(storage, 'taskd_task_archive')) >= 5, {what: 'noop tasks to finish'})
        const retried = await until(async () => {
          const r = await taskRow(storage, hung.id)
          return r && Number(r.failure_count) === 1 ? r : null
        }, {what: 'the first timeout'})
        expect(retried.last_error).toMatch(/timed out/)
        const row = await archived(storage, hung.id)
        expect(row.result).toBe(ARCHIVE_RESULT.failure)
        expect(row.reason).toMatch(/timed out/)
        expect(Number(row.attempts)).toBe(2)
        // Both slots are free again.
        const after = await enqueueTask(storage, {taskClass: 'taskd.noop'})
        expect((await archived(storage, after.id)).result).toBe(ARCHIVE_RESULT.success)
      })

      it('archives a task of an unknown class as failed, naming the class', async () => {
        const {id} = await enqueueTask(storage, {taskClass: 'no.such.class'})
        const ok = await enqueueTask(storage, {taskClass: 'taskd.noop'})
        const daemon = await startDaemon({untilIdle: true})
        await daemon.finished()
        const [row] = await archiveRows(storage, id)
        expect(row.result).toBe(ARCHIVE_RESULT.failure)
        expect(row.reason).toContain("'no.such.class'")
        expect((await archiveRows(storage, ok.id))[0].result).toBe(ARCHIVE_RESULT.success)
      })

      it('archives a task whose stored data is not valid JSON as failed and keeps going', async () => {
        const bad = await enqueueTask(storage, {taskClass: 'taskd.noop', priority: 1000})
        const good = await enqueueTask(storage, {taskClass: 'taskd.noop', priority: 2000})
        await storage.db.updateTable('taskd_tasks').set({data: '{bad'}).where('id', '=', bad.id).execute()
        const daemon = await startDaemon({untilIdle: true, concurrency: 1})
        await daemon.finished()
        const [badRow] = await archiveRows(storage, bad.id)
        expect(badRow).toMatchObject({result: ARCHIVE_RESULT.failure, data: '{bad'})
        expect(badRow.reason).toMatch(/not valid JSON/)
        expect((await archiveRows(storage, good.id))[0].result).toBe(ARCHIVE_RESULT.success)
      })

      it('writes follow-ups only when the handler succeeds', async () => {
        const handlers: Record<string, HandlerInput> = {
          parent: {
            run: (data, ctx) => {
              const {n, fail} = data as {n: number; fail: boolean}
              ctx.enqueue({taskClass: 'child', data: {from: n}})
              if (fail) throw new Error(`parent ${n} failed after enqueueing`)
            },
            maxRetries: 0,
          },
          child: () => undefined,
        }
        const ok = await enqueueTask(storage, {taskClass: 'parent', data: {n: 1, fail: false}})
        const failing = await enqueueTask(storage, {taskClass: 'parent', data: {n: 2, fail: true}})
        await startDaemon({handlers})
        expect((await archived(storage, ok.id)).result).toBe(ARCHIVE_RESULT.success)
        expect((await archived(storage, failing.id)).result).toBe(ARCHIVE_RESULT.failure)
        await until(async () => {
          const rows = await storage.db.selectFrom('taskd_task_archive').select('data').where('task_class', '=', 'child').execute()
          return rows.length === 1 ? rows : null
        }, {what: 'the follow-up to run'})
        const children = [
          ...(await storage.db.selectFrom('taskd_tasks').select('data').where('task_class', '=', 'child').execute()),
          ...(await storage.db.selectFrom('taskd_task_archive').select('data').where('task_class', '=', 'child').execute()),
        ]
        expect(children.map((c) => JSON.parse(c.data))).toEqual([{from: 1}])
      })

      it('an until-idle daemon also runs the follow-ups its handlers enqueue', async () => {
        let childRuns = 0
        const handlers: Record<string, HandlerInput> = {
          parent: (_data, ctx) => ctx.enqueue({taskClass: 'child'}),
          child: () => {
            childRuns++
          },
        }
        await enqueueTask(storage, {taskClass: 'parent'})
        const daemon = await startDaemon({handlers, untilIdle: true})
        await daemon.finished()
        expect(childRuns).toBe(1)
        expect(await countRows(storage, 'taskd_tasks')).toBe(0)
        expect(await countRows(storage, 'taskd_task_archive')).toBe(2)
      })

      it('an invalid follow-up fails its own task without holding up other outcomes', async () => {
        const handlers: Record<string, HandlerInput> = {
          greedy: {run: (_data, ctx) => ctx.enqueue({taskClass: 'child', data: 'x'.repeat(MAX_DATA_BYTES + 1)}), maxRetries: 0},
          child: () => undefined,
        }
        const greedy = await enqueueTask(storage, {taskClass: 'greedy'})
        const others = await enqueueTasks(storage, Array.from({length: 3}, () => ({taskClass: 'taskd.noop'})))
        expect(others.count).toBe(3)
        const daemon = await startDaemon({handlers, untilIdle: true})
        await daemon.finished()
        const [row] = await archiveRows(storage, greedy.id)
        expect(row?.result).toBe(ARCHIVE_RESULT.failure)
        expect(row?.reason).toContain(String(MAX_DATA_BYTES))
        expect(await countRows(storage, 'taskd_task_archive')).toBe(4)
        expect(await countRows(storage, 'taskd_tasks')).toBe(0)
      })
    })

    describe('daemon edge cases', () => {
      it('a handler that yields a non-finite number of seconds is not recorded as garbage', async () => {
        const handlers: Record<string, HandlerInput> = {
          'yield-nan': {run: (_data, ctx) => ctx.yield(Number.NaN), maxRetries: 0},
        }
        const bad = await enqueueTask(storage, {taskClass: 'yield-nan'})
        const ok = await enqueueTask(storage, {taskClass: 'taskd.noop'})
        const daemon = await startDaemon({handlers, untilIdle: true})
        await daemon.finished()
        expect((await archiveRows(storage, ok.id))[0]?.result).toBe(ARCHIVE_RESULT.success)
        const [row] = await archiveRows(storage, bad.id)
        expect(row?.result).toBe(ARCHIVE_RESULT.failure)
        expect(row?.reason).toMatch(/yield/)
      })

      it('a handler with an infinite or very long timeout is not timed out at once', async () => {
        const handlers: Record<string, HandlerInput> = {
          forever: {run: () => new Promise((resolve) => setTimeout(resolve, 50)), timeoutSeconds: Number.POSITIVE_INFINITY, maxRetries: 0},
          month: {run: () => new Promise((resolve) => setTimeout(resolve, 50)), timeoutSeconds: 30 * 86_400, maxRetries: 0},
        }
        const a = await enqueueTask(storage, {taskClass: 'forever'})
        const b = await enqueueTask(storage, {taskClass: 'month'})
        const daemon = await startDaemon({handlers, untilIdle: true})
        await daemon.finished()
        expect((await archiveRows(storage, a.id))[0]).toMatchObject({result: ARCHIVE_RESULT.success, reason: null})
        expect((await archiveRows(storage, b.id))[0]).toMatchObject({result: ARCHIVE_RESULT.success, reason: null})
      })

      it('a thrown value that cannot be described does not take the daemon down', async () => {
        const weird = Object.create(null) as Record<string, unknown>
        weird.self = weird
        const handlers: Record<string, HandlerInput> = {
          weird: {
            run: () => {
              throw weird
            },
            maxRetries: 0,
          },
        }
        const bad = await enqueueTask(storage, {taskClass: 'weird'})
        const ok = await enqueueTask(storage, {taskClass: 'taskd.noop'})
        const daemon = await startDaemon({handlers, untilIdle: true})
        await daemon.finished()
        expect((await archiveRows(storage, ok.id))[0]?.result).toBe(ARCHIVE_RESULT.success)
        const [row] = await archiveRows(storage, bad.id)
        expect(row?.result).toBe(ARCHIVE_RESULT.failure)
        expect(row?.reason).toMatch(/^non-Error thrown: \[object Object\]/)
      })

      it('a running task whose lease is taken over is abandoned and its outcome dropped', async () => {
        let aborted = false
        const handlers: Record<string, HandlerInput> = {
          long: async (_data, ctx) => {
            await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), {once: true}))
            aborted = true
          },
        }
        const {id, ref} = await enqueueTask(storage, {taskClass: 'long'})
        const daemon = await startDaemon({handlers, leaseSeconds: 3, owner: 'losing-daemon'})
        await until(async () => (await taskRow(storage, id))?.lease_owner === 'losing-daemon', {what: 'the daemon to lease the task'})
        // Another daemon took the task over (as after an expiry the first daemon did not notice).
        await storage.db.updateTable('taskd_tasks').set({lease_owner: 'taker', lease_expires: storage.now() + 600}).where('id', '=', id).execute()
        await until(() => aborted, {what: 'the handler to be aborted'})
        await daemon.stop({graceSeconds: 0})
        expect(daemon.stats).toMatchObject({leased: 1, succeeded: 0, released: 0})
        expect(await taskRow(storage, id)).toMatchObject({lease_owner: 'taker'})
        expect(await archiveRows(storage, id)).toEqual([])
        const [taken] = await storage.db.selectFrom('taskd_tasks').selectAll().where('id', '=', id).execute()
        const task = {ref, generator: 'queue', identifier: String(id), taskClass: 'long', priority: taken.priority, data: null, lease: {owner: 'taker', expiresAt: 0}, attempt: 2, failureCount: 0}
        expect(await complete(storage, 'taker', [{kind: 'success', task, durationUs: 1}])).toEqual([ref])
        expect(await archiveRows(storage, id)).toHaveLength(1)
      })

      it('ctx.extendLease and a class leaseSeconds extend the lease past the default', async () => {
        let release: () => void = () => {}
        const gate = new Promise<void>((resolve) => (release = resolve))
        const handlers: Record<string, HandlerInput> = {
          extend: async (_data, ctx) => {
            await ctx.extendLease(900)
            await gate
          },
          roomy: {run: () => gate, leaseSeconds: 1200},
        }
        const e = await enqueueTask(storage, {taskClass: 'extend'})
        const r = await enqueueTask(storage, {taskClass: 'roomy'})
        const before = storage.now()
        await startDaemon({handlers, leaseSeconds: 30})
        const eRow = await until(async () => {
          const row = await taskRow(storage, e.id)
          return row && Number(row.lease_expires) >= before + 900 ? row : null
        }, {what: 'ctx.extendLease to take effect'})
        expect(Number(eRow.lease_expires)).toBeLessThanOrEqual(storage.now() + 900)
        await until(async () => Number((await taskRow(storage, r.id))?.lease_expires) >= before + 1200, {what: 'the class lease to take effect'})
        release()
        expect((await archived(storage, e.id)).result).toBe(ARCHIVE_RESULT.success)
        expect((await archived(storage, r.id)).result).toBe(ARCHIVE_RESULT.success)
      })

      it('stop with a grace period lets running handlers finish', async () => {
        const enqueued = await enqueueTasks(storage, Array.from({length: 2}, () => ({taskClass: 'taskd.sleep', data: {ms: 300}})))
        expect(enqueued.count).toBe(2)
        const daemon = await startDaemon({concurrency: 2, owner: 'patient-daemon'})
        await until(async () => {
          const rows = await storage.db.selectFrom('taskd_tasks').select('id').where('lease_owner', '=', 'patient-daemon').execute()
          return rows.length === 2
        }, {what: 'both tasks to be leased'})
        await daemon.stop({graceSeconds: 30})
        expect(await countRows(storage, 'taskd_tasks')).toBe(0)
        const rows = await storage.db.selectFrom('taskd_task_archive').select('result').execute()
        expect(rows.map((r) => r.result)).toEqual([ARCHIVE_RESULT.success, ARCHIVE_RESULT.success])
        expect(daemon.stats).toMatchObject({succeeded: 2, released: 0})
      })
    })

    describe('enqueue', () => {
      it("commits with the caller's own kysely transaction", async () => {
        const {id, ref} = await storage.db.transaction().execute((trx) => enqueueTask(trx, {taskClass: 'taskd.noop', data: {a: 1}}))
        expect(ref).toBe(`queue:${id}`)
        expect(await taskRow(storage, id)).toMatchObject({task_class: 'taskd.noop', data: '{"a":1}', lease_owner: null})
        expect(ids(await lease(storage, OWNER_A, 1))).toEqual([id])
      })

      it("rolls back with the caller's own kysely transaction", async () => {
        let enqueuedId = 0
        await expect(
          storage.db.transaction().execute(async (trx) => {
            const {id} = await enqueueTask(trx, {taskClass: 'taskd.noop'})
            await enqueueTasks(trx, [{taskClass: 'taskd.noop'}, {taskClass: 'taskd.noop'}])
            enqueuedId = id
            throw new Error('application changed its mind')
          }),
        ).rejects.toThrow('application changed its mind')
        expect(enqueuedId).toBeGreaterThan(0)
        expect(await taskRow(storage, enqueuedId)).toBeUndefined()
        expect(await countRows(storage, 'taskd_tasks')).toBe(0)
        expect(await lease(storage, OWNER_A, 10)).toEqual([])
      })

      it('enqueues inside a Storage transaction too', async () => {
        await expect(
          storage.transaction(async (store) => {
            await enqueueTask(store, {taskClass: 'taskd.noop'})
            throw new Error('nope')
          }),
        ).rejects.toThrow('nope')
        expect(await countRows(storage, 'taskd_tasks')).toBe(0)
      })

      it('enqueues 2500 tasks in one enqueueTasks call', async () => {
        const specs = Array.from({length: 2500}, (_, i) => ({taskClass: 'taskd.noop', priority: 1000 + (i % 3), data: {i}}))
        expect(await enqueueTasks(storage, specs)).toEqual({count: 2500})
        expect(await countRows(storage, 'taskd_tasks')).toBe(2500)
        const rows = await storage.db.selectFrom('taskd_tasks').select(['data', 'priority']).execute()
        const seen = new Set(rows.map((r) => (JSON.parse(r.data) as {i: number}).i))
        expect(seen.size).toBe(2500)
        for (const r of rows) expect(r.priority).toBe(1000 + ((JSON.parse(r.data) as {i: number}).i % 3))
      })

      it('rejects an oversized payload naming the limit, writing nothing', async () => {
        const huge = {blob: 'x'.repeat(MAX_DATA_BYTES)}
        await expect(enqueueTask(storage, {taskClass: 'taskd.noop', data: huge})).rejects.toMatchObject({
          code: 'E_PAYLOAD_TOO_LARGE',
          message: expect.stringContaining(`${MAX_DATA_BYTES} bytes`),
        })
        await expect(enqueueTasks(storage, [{taskClass: 'taskd.noop'}, {taskClass: 'taskd.noop', data: huge}])).rejects.toMatchObject({
          code: 'E_PAYLOAD_TOO_LARGE',
          message: expect.stringContaining(String(MAX_DATA_BYTES)),
        })
        expect(await countRows(storage, 'taskd_tasks')).toBe(0)
        // Just under the limit is fine.
        const fits = 'x'.repeat(MAX_DATA_BYTES - 2)
        const {id} = await enqueueTask(storage, {taskClass: 'taskd.noop', data: fits})
        expect((await taskRow(storage, id))?.data.length).toBe(MAX_DATA_BYTES)
      })
    })

    describe('heartbeat and stop', () => {
      it('the heartbeat keeps a short lease alive while the handler runs', async () => {
        const {id} = await enqueueTask(storage, {taskClass: 'taskd.sleep', data: {ms: 5000}})
        const daemon = await startDaemon({leaseSeconds: 3, owner: 'heartbeat-daemon'})
        await until(async () => (await taskRow(storage, id))?.lease_owner === 'heartbeat-daemon', {what: 'the daemon to lease the task'})
        // The thief shares the test's handle: on SQLite a second handle in this process would stall the
        // event loop (see the concurrent leasing tests), and what matters here is the other owner.
        const thief = storage
        const first = await taskRow(storage, id)
        const initialExpiry = Number(first?.lease_expires)
        let heldPastInitialExpiry = false
        let renewed = false
        for (;;) {
          const stolen = await lease(thief, 'thief', 10)
          expect(stolen).toEqual([])
          const row = await taskRow(storage, id)
          if (!row) break
          expect(row.lease_owner).toBe('heartbeat-daemon')
          if (Number(row.lease_expires) > initialExpiry) renewed = true
          if (storage.now() > initialExpiry) heldPastInitialExpiry = true
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
        // The run outlived the lease it started with: the heartbeat renewed it, and nobody else got it.
        expect(renewed).toBe(true)
        expect(heldPastInitialExpiry).toBe(true)
        const rows = await archiveRows(storage, id)
        expect(rows).toHaveLength(1)
        expect(rows[0]).toMatchObject({result: ARCHIVE_RESULT.success})
        expect(Number(rows[0].attempts)).toBe(1)
        expect(Number(rows[0].duration_us)).toBeGreaterThanOrEqual(4_900_000)
        expect(daemon.stats).toMatchObject({leased: 1, succeeded: 1})
      })

      it('stop with no grace releases running leases without failing them', async () => {
        const enqueued = await enqueueTasks(storage, Array.from({length: 3}, () => ({taskClass: 'taskd.sleep', data: {ms: 60_000}})))
        expect(enqueued.count).toBe(3)
        const daemon = await startDaemon({concurrency: 3, owner: 'stopping-daemon'})
        await until(async () => {
          const rows = await storage.db.selectFrom('taskd_tasks').select('id').where('lease_owner', '=', 'stopping-daemon').execute()
          return rows.length === 3
        }, {what: 'all three tasks to be leased'})
        await daemon.stop({graceSeconds: 0})
        const rows = await storage.db.selectFrom('taskd_tasks').selectAll().execute()
        expect(rows).toHaveLength(3)
        for (const row of rows) {
          expect(row).toMatchObject({lease_owner: null, lease_expires: null, last_error: null})
          expect(Number(row.failure_count)).toBe(0)
        }
        expect(await countRows(storage, 'taskd_task_archive')).toBe(0)
        expect(daemon.stats).toMatchObject({released: 3, failed: 0, retried: 0, succeeded: 0})
        expect(await lease(storage, OWNER_B, 10)).toHaveLength(3)
        const status = await storage.db.selectFrom('taskd_daemons').select('status').where('id', '=', 'stopping-daemon').executeTakeFirst()
        expect(status?.status).toBe('stopped')
      })
    })
  })
})

function idOf(task: DynamicTask): number {
  return Number(task.identifier)
}

const LEASE_WORKER = fileURLToPath(new URL('./helpers/lease-worker.ts', import.meta.url))

/** A lease worker process (test/helpers/lease-worker.ts), one request at a time. */
class LeaseWorker {
  private readonly child: ChildProcess
  private pending: {resolve(reply: LeaseWorkerReply): void; reject(error: Error): void} | null = null
  private readonly exited: Promise<number | null>

  constructor() {
    this.child = fork(LEASE_WORKER, [], {execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc']})
    this.child.on('message', (reply: LeaseWorkerReply) => {
      const pending = this.pending
      this.pending = null
      if (reply.type === 'error') pending?.reject(new Error(`lease worker failed: ${reply.error}`))
      else pending?.resolve(reply)
    })
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code) => {
        this.pending?.reject(new Error(`lease worker exited with code ${code}`))
        resolve(code)
      }),
    )
  }

  request(request: LeaseWorkerRequest): Promise<LeaseWorkerReply> {
    if (this.pending) throw new Error('one request at a time')
    return new Promise((resolve, reject) => {
      this.pending = {resolve, reject}
      this.child.send(request)
    })
  }

  async stop(): Promise<number | null> {
    if (this.child.connected) this.child.disconnect()
    return this.exited
  }
}

/** Started once for the whole file (starting a tsx process takes seconds), stopped after it. */
const leaseWorkers: LeaseWorker[] = []
afterAll(async () => {
  for (const worker of leaseWorkers.splice(0)) expect(await worker.stop()).toBe(0)
})

/** Leases everything from separate processes, each with its own handle, started together once all are open. */
async function leaseFromProcesses(url: string, processes: number, loopsEach: number, limit: number): Promise<LeaseWorkerReport[]> {
  while (leaseWorkers.length < processes) leaseWorkers.push(new LeaseWorker())
  const workers = leaseWorkers.slice(0, processes)
  await Promise.all(workers.map((w) => w.request({type: 'open', url})))
  try {
    const replies = await Promise.all(workers.map((w, i) => w.request({type: 'lease', owner: `worker-${i}`, loops: loopsEach, limit})))
    return replies.map((reply) => {
      if (reply.type !== 'report') throw new Error(`unexpected reply ${reply.type}`)
      return reply.report
    })
  } finally {
    await Promise.all(workers.map((w) => w.request({type: 'close'})))
  }
}
