import {fileURLToPath} from 'node:url'

import {runCommand} from '@oclif/test'
import {sql} from 'kysely'
import {afterAll, afterEach, beforeAll, describe, expect, it} from 'vitest'

import type {TaskOutcome} from '../src/core/task.js'
import {buildHandlerRegistry} from '../src/daemon/daemon.js'
import {
  cancelTasks,
  delayTasks,
  executeTask,
  freeTasks,
  listTasks,
  retryTasks,
  setPriority,
  showTask,
  type MutationResult,
  type TaskChange,
} from '../src/generators/queue/admin.js'
import {enqueueTask, enqueueTasks} from '../src/generators/queue/enqueue.js'
import {queueGenerator, queueTaskFromRow} from '../src/generators/queue/generator.js'
import {ARCHIVE_RESULT} from '../src/storage/schema.js'
import {Storage} from '../src/storage/storage.js'
import {DIALECTS, openTestStorage, until, type TestDatabase} from './helpers/databases.js'

const root = fileURLToPath(new URL('..', import.meta.url))

/**
 * True while a transaction waits for a row lock on this database's table. Read live from
 * SHOW ENGINE INNODB STATUS: MariaDB serves information_schema.innodb_trx from a cache that can lag.
 */
async function waitsForRowLock(storage: Storage, table: string): Promise<boolean> {
  const {rows: me} = await sql<{db: string}>`select database() as db`.execute(storage.db)
  const {rows} = await sql<{Status: string}>`show engine innodb status`.execute(storage.db)
  const waiting = new RegExp(`TRX HAS BEEN WAITING[^\\n]*\\n[^\\n]*of table \`${me[0].db}\`\\.\`${table}\`[^\\n]*waiting`)
  return waiting.test(rows[0].Status)
}

const handlers = buildHandlerRegistry([queueGenerator])

describe.each(DIALECTS)('queue admin on $name', ({name, skip}) => {
  let storage: Storage
  let database: TestDatabase
  let cleanup: () => Promise<void>
  let seq = 0
  /** A task class of the test's own, so selectors never see another test's tasks. */
  const freshClass = () => `test.c${++seq}`

  beforeAll(async () => {
    if (skip) return
    ;({storage, database, cleanup} = await openTestStorage(name))
  })
  afterAll(async () => {
    if (!skip) await cleanup()
  })

  const enqueue = async (taskClass: string, extra: {priority?: number; delaySeconds?: number; data?: unknown} = {}) => (await enqueueTask(storage, {taskClass, data: extra.data ?? {n: 1}, ...extra})).id

  /** What a daemon's lease does to a row (owner, expiry), written directly. */
  const leaseAs = async (id: number, owner: string, seconds = 60) => {
    await storage.db.updateTable('taskd_tasks').set({lease_owner: owner, lease_expires: storage.now() + seconds, attempts: sql`attempts + 1`}).where('id', '=', id).execute()
  }

  /** Leases the task to `owner` and hands the generator an outcome, as a daemon does. */
  const finish = async (id: number, kind: 'success' | 'fail' | 'retry', owner = 'test-daemon') => {
    await leaseAs(id, owner)
    const row = await storage.db.selectFrom('taskd_tasks').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
    const task = queueTaskFromRow(row, {owner, expiresAt: Number(row.lease_expires)})
    const outcome: TaskOutcome =
      kind === 'success'
        ? {kind, task, durationUs: 10}
        : kind === 'fail'
          ? {kind, task, reason: 'broken', durationUs: 10}
          : {kind, task, error: 'flaky', retryAt: storage.now() + 3600, durationUs: 10}
    return storage.transaction((store) => queueGenerator.complete({store, owner}, [outcome]))
  }

  /** Both tables' rows for these ids, to prove a dry run or a rerun wrote nothing. */
  const snapshot = async (ids: number[]) => ({
    active: await storage.db.selectFrom('taskd_tasks').selectAll().where('id', 'in', ids).orderBy('id').execute(),
    archived: await storage.db.selectFrom('taskd_task_archive').selectAll().where('id', 'in', ids).orderBy('id').execute(),
  })

  const byId = (result: MutationResult) => Object.fromEntries(result.tasks.map((t) => [t.id, t])) as Record<number, TaskChange>

  /** Runs the mutation as a dry run, then for real, then again: the dry run and the rerun write nothing. */
  async function dryRealRerun(ids: number[], op: (dryRun: boolean) => Promise<MutationResult>) {
    const before = await snapshot(ids)
    const dry = await op(true)
    expect(dry.dryRun).toBe(true)
    expect(await snapshot(ids)).toEqual(before)
    const real = await op(false)
    expect(real.tasks.map(({ref, action, after}) => ({ref, action, after}))).toEqual(dry.tasks.map(({ref, action, after}) => ({ref, action, after})))
    const afterReal = await snapshot(ids)
    const rerun = await op(false)
    expect(rerun.changed).toBe(0)
    expect(await snapshot(ids)).toEqual(afterReal)
    return {dry, real, rerun}
  }

  describe.skipIf(skip)('library', () => {
    it('lists by class, priority, failure count (each bound alone) and table, newest first, with a limit', async () => {
      const c = freshClass()
      const a = await enqueue(c, {priority: 1000})
      const b = await enqueue(c, {priority: 3000})
      const f = await enqueue(c)
      await finish(f, 'retry')
      const s = await enqueue(c)
      await finish(s, 'success')
      const refs = async (extra: Parameters<typeof listTasks>[1]) => (await listTasks(storage, {taskClass: c, ...extra})).tasks.map((t) => t.id)

      expect(await refs({})).toEqual([s, f, b, a])
      expect(await refs({minPriority: 2000})).toEqual([s, f, b])
      expect(await refs({maxPriority: 2000})).toEqual([s, f, a])
      expect(await refs({minFailureCount: 1})).toEqual([f])
      expect(await refs({maxFailureCount: 0})).toEqual([s, b, a])
      expect(await refs({tables: 'archived'})).toEqual([s])
      expect(await refs({tables: 'active', ids: [a, b, s]})).toEqual([b, a])
      const page = await listTasks(storage, {taskClass: c, limit: 2})
      expect(page.tasks.map((t) => t.ref)).toEqual([`queue:${s}`, `queue:${f}`])
      expect(page.more).toBe(true)
      expect((await listTasks(storage, {taskClass: c})).more).toBe(false)
      const states = Object.fromEntries((await listTasks(storage, {taskClass: c})).tasks.map((t) => [t.id, t.state]))
      expect(states).toEqual({[a]: 'ready', [b]: 'ready', [f]: 'delayed', [s]: 'succeeded'})
    })

    it('rejects unknown ids (exit 1) and contradictory bounds (exit 2)', async () => {
      const id = await enqueue(freshClass())
      await expect(listTasks(storage, {ids: [id, 987654]})).rejects.toMatchObject({code: 'E_NOT_FOUND', exit: 1, message: expect.stringContaining('queue:987654 not found')})
      await expect(showTask(storage, 987654)).rejects.toMatchObject({code: 'E_NOT_FOUND', exit: 1})
      await expect(cancelTasks(storage, {ids: [987654]})).rejects.toMatchObject({code: 'E_NOT_FOUND', exit: 1})
      await expect(listTasks(storage, {minPriority: 3000, maxPriority: 1000})).rejects.toMatchObject({exit: 2})
      await expect(retryTasks(storage, {minFailureCount: 2, maxFailureCount: 1})).rejects.toMatchObject({exit: 2})
    })

    it('shows every field, the decoded data and the state: ready, delayed, leased, expired, archived', async () => {
      const c = freshClass()
      const ready = await enqueue(c, {data: {hello: ['world']}})
      const delayed = await enqueue(c, {delaySeconds: 3600})
      const leased = await enqueue(c)
      await leaseAs(leased, 'daemon-x')
      const expired = await enqueue(c)
      await leaseAs(expired, 'daemon-dead', -10)
      const failed = await enqueue(c)
      await finish(failed, 'fail')

      const shown = await showTask(storage, ready)
      expect(shown).toMatchObject({ref: `queue:${ready}`, table: 'active', state: 'ready', taskClass: c, priority: 2000, data: {hello: ['world']}, dataError: null, failureCount: 0})
      expect((await showTask(storage, delayed)).state).toBe('delayed')
      expect(await showTask(storage, leased)).toMatchObject({state: 'leased', leaseOwner: 'daemon-x', attempts: 1})
      expect((await showTask(storage, expired)).state).toBe('expired')
      expect(await showTask(storage, failed)).toMatchObject({table: 'archived', state: 'failed', reason: 'broken', failureCount: 1, data: {n: 1}})
    })

    it('retry brings an archived failed or cancelled task back with its id; successes only when asked', async () => {
      const c = freshClass()
      const failed = await enqueue(c)
      await finish(failed, 'fail')
      const cancelled = await enqueue(c)
      await cancelTasks(storage, {ids: [cancelled]})
      const succeeded = await enqueue(c)
      await finish(succeeded, 'success')
      const ids = [failed, cancelled, succeeded]

      const {real} = await dryRealRerun(ids, (dryRun) => retryTasks(storage, {ids}, {dryRun}))
      const t = byId(real)
      expect(t[failed]).toMatchObject({action: 'changed', before: 'failed', after: 'ready'})
      expect(t[cancelled]).toMatchObject({action: 'changed', before: 'cancelled', after: 'ready'})
      expect(t[succeeded]).toMatchObject({action: 'skipped', before: 'succeeded', detail: expect.stringContaining('--include-succeeded')})

      const back = await storage.db.selectFrom('taskd_tasks').selectAll().where('id', '=', failed).executeTakeFirstOrThrow()
      expect(back).toMatchObject({id: failed, task_class: c, lease_owner: null, lease_expires: null, last_error: null})
      expect(Number(back.failure_count)).toBe(0)
      expect(Number(back.available_at)).toBeLessThanOrEqual(storage.now())
      expect(await storage.db.selectFrom('taskd_task_archive').select('id').where('id', 'in', [failed, cancelled]).execute()).toEqual([])
      // The queue leases it again like any ready task.
      expect((await showTask(storage, failed)).state).toBe('ready')

      const again = await retryTasks(storage, {ids: [succeeded]}, {includeSucceeded: true})
      expect(byId(again)[succeeded]).toMatchObject({action: 'changed', before: 'succeeded', after: 'ready'})
      expect((await showTask(storage, succeeded)).table).toBe('active')
    })

    it('retry makes a task waiting on its retry available now and leaves running and plain delayed tasks alone', async () => {
      const c = freshClass()
      const waiting = await enqueue(c)
      await finish(waiting, 'retry')
      const running = await enqueue(c)
      await leaseAs(running, 'daemon-x')
      const delayed = await enqueue(c, {delaySeconds: 3600})
      const ready = await enqueue(c)
      const ids = [waiting, running, delayed, ready]

      const {real} = await dryRealRerun(ids, (dryRun) => retryTasks(storage, {taskClass: c}, {dryRun}))
      const t = byId(real)
      expect(t[waiting]).toMatchObject({action: 'changed', before: 'delayed', after: 'ready'})
      expect(t[running]).toMatchObject({action: 'skipped', before: 'leased'})
      expect(t[delayed]).toMatchObject({action: 'skipped', before: 'delayed'})
      expect(t[ready]).toMatchObject({action: 'skipped', before: 'ready'})
      expect(await showTask(storage, waiting)).toMatchObject({state: 'ready', failureCount: 1, lastError: 'flaky'})
    })

    it('cancel archives waiting tasks as cancelled and skips leased ones unless forced', async () => {
      const c = freshClass()
      const ready = await enqueue(c)
      const delayed = await enqueue(c, {delaySeconds: 3600})
      const running = await enqueue(c)
      await leaseAs(running, 'daemon-x')
      const expired = await enqueue(c)
      await leaseAs(expired, 'daemon-dead', -10)
      const done = await enqueue(c)
      await finish(done, 'success')
      const ids = [ready, delayed, running, expired, done]

      const {real} = await dryRealRerun(ids, (dryRun) => cancelTasks(storage, {taskClass: c}, {dryRun}))
      const t = byId(real)
      expect(t[ready]).toMatchObject({action: 'changed', before: 'ready', after: 'cancelled'})
      expect(t[delayed]).toMatchObject({action: 'changed', before: 'delayed', after: 'cancelled'})
      expect(t[running]).toMatchObject({action: 'skipped', before: 'leased', detail: expect.stringContaining('--force')})
      expect(t[expired]).toMatchObject({action: 'skipped', before: 'expired'})
      expect(t[done]).toMatchObject({action: 'skipped', before: 'succeeded'})
      expect(real.matched).toBe(5)
      const archived = await storage.db.selectFrom('taskd_task_archive').select(['id', 'result', 'duration_us']).where('id', 'in', [ready, delayed]).orderBy('id').execute()
      expect(archived.map((r) => Number(r.result))).toEqual([ARCHIVE_RESULT.cancelled, ARCHIVE_RESULT.cancelled])
      expect((await showTask(storage, running)).state).toBe('leased')
    })

    it('cancel --force archives a running task, and its daemon can no longer complete it', async () => {
      const id = await enqueue(freshClass())
      await leaseAs(id, 'daemon-x')
      const row = await storage.db.selectFrom('taskd_tasks').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
      const task = queueTaskFromRow(row, {owner: 'daemon-x', expiresAt: Number(row.lease_expires)})

      const result = await cancelTasks(storage, {ids: [id]}, {force: true})
      expect(byId(result)[id]).toMatchObject({action: 'changed', before: 'leased', after: 'cancelled'})
      // The daemon finishes afterwards: the fence drops its outcome and its lease is gone.
      expect(await storage.transaction((store) => queueGenerator.complete({store, owner: 'daemon-x'}, [{kind: 'success', task, durationUs: 1}]))).toEqual([])
      expect(await queueGenerator.renew({store: storage, owner: 'daemon-x'}, [task], 60)).toEqual([])
      expect(await showTask(storage, id)).toMatchObject({table: 'archived', state: 'cancelled'})
    })

    it('free releases leases of dead daemons; a live daemon keeps its lease unless forced', async () => {
      const c = freshClass()
      const stuck = await enqueue(c)
      await leaseAs(stuck, 'dead-daemon')
      const expired = await enqueue(c)
      await leaseAs(expired, 'dead-daemon', -10)
      const live = await enqueue(c)
      await leaseAs(live, 'live-daemon')
      const idle = await enqueue(c)
      const now = storage.now()
      await storage.db
        .insertInto('taskd_daemons')
        .values({id: 'live-daemon', host: 'h', pid: 1, started_at: now, heartbeat_at: now, concurrency: 1, status: 'running', generators: '["queue"]', running: '[]'})
        .execute()
      const ids = [stuck, expired, live, idle]

      const {real} = await dryRealRerun(ids, (dryRun) => freeTasks(storage, {taskClass: c}, {dryRun}))
      const t = byId(real)
      expect(t[stuck]).toMatchObject({action: 'changed', before: 'leased', after: 'ready'})
      expect(t[expired]).toMatchObject({action: 'changed', before: 'expired', after: 'ready'})
      expect(t[live]).toMatchObject({action: 'skipped', before: 'leased', detail: expect.stringContaining('live daemon')})
      expect(t[idle]).toMatchObject({action: 'skipped', before: 'ready'})
      expect(await showTask(storage, stuck)).toMatchObject({state: 'ready', leaseOwner: null, leaseExpires: null})

      const forced = await freeTasks(storage, {ids: [live]}, {force: true})
      expect(byId(forced)[live]).toMatchObject({action: 'changed', before: 'leased', after: 'ready'})
      // The daemon that held it finds its lease gone at its next heartbeat.
      const row = await storage.db.selectFrom('taskd_tasks').selectAll().where('id', '=', live).executeTakeFirstOrThrow()
      expect(await queueGenerator.renew({store: storage, owner: 'live-daemon'}, [queueTaskFromRow(row, null)], 60)).toEqual([])
    })

    it('priority sets a number or band on active tasks; unchanged and archived ones are skipped', async () => {
      const c = freshClass()
      const a = await enqueue(c)
      const b = await enqueue(c, {priority: 1000})
      const running = await enqueue(c)
      await leaseAs(running, 'daemon-x')
      const done = await enqueue(c)
      await finish(done, 'success')
      const ids = [a, b, running, done]

      const {real} = await dryRealRerun(ids, (dryRun) => setPriority(storage, {taskClass: c}, 'alerts', {dryRun}))
      const t = byId(real)
      expect(t[a]).toMatchObject({action: 'changed', detail: 'priority 2000 → 1000'})
      expect(t[b]).toMatchObject({action: 'skipped', detail: 'already at priority 1000'})
      expect(t[running]).toMatchObject({action: 'changed', before: 'leased', after: 'leased'})
      expect(t[done]).toMatchObject({action: 'skipped', before: 'succeeded'})
      expect((await showTask(storage, a)).priority).toBe(1000)
      await expect(setPriority(storage, {ids: [a]}, 'soon')).rejects.toMatchObject({exit: 2})
    })

    it('delay holds waiting tasks back (and 0 brings them forward); leased and archived ones are skipped', async () => {
      const c = freshClass()
      const ready = await enqueue(c)
      const later = await enqueue(c, {delaySeconds: 60})
      const running = await enqueue(c)
      await leaseAs(running, 'daemon-x')
      const done = await enqueue(c)
      await finish(done, 'success')
      const ids = [ready, later, running, done]
      const until = storage.now() + 7200

      const {real} = await dryRealRerun(ids, (dryRun) => delayTasks(storage, {taskClass: c}, {until}, {dryRun}))
      const t = byId(real)
      expect(t[ready]).toMatchObject({action: 'changed', before: 'ready', after: 'delayed'})
      expect(t[later]).toMatchObject({action: 'changed', before: 'delayed', after: 'delayed'})
      expect(t[running]).toMatchObject({action: 'skipped', before: 'leased'})
      expect(t[done]).toMatchObject({action: 'skipped', before: 'succeeded'})
      expect((await showTask(storage, ready)).availableAt).toBe(until)

      const forward = await delayTasks(storage, {ids: [ready]}, {seconds: 0})
      expect(byId(forward)[ready]).toMatchObject({action: 'changed', before: 'delayed', after: 'ready'})
      expect((await showTask(storage, ready)).state).toBe('ready')
      // The queue leases nothing delayed: the held-back task is not handed out.
      const held = await queueGenerator.peek({store: storage, owner: 'p'}, {limit: 10_000})
      expect(held.map((task) => task.ref)).not.toContain(`queue:${later}`)
    })

    it('mutations cover selections larger than one transaction chunk, and --limit takes the newest', async () => {
      const c = freshClass()
      await enqueueTasks(
        storage,
        Array.from({length: 1200}, () => ({taskClass: c})),
      )
      const limited = await cancelTasks(storage, {taskClass: c, limit: 5})
      expect(limited.changed).toBe(5)
      const newest = (await listTasks(storage, {taskClass: c, tables: 'archived'})).tasks.map((t) => t.id)
      const oldestCancelled = Math.min(...newest)
      expect((await listTasks(storage, {taskClass: c, tables: 'active', limit: 1})).tasks[0].id).toBeLessThan(oldestCancelled)
      const all = await cancelTasks(storage, {taskClass: c, tables: 'active'})
      expect(all).toMatchObject({matched: 1195, changed: 1195, skipped: 0})
      expect((await listTasks(storage, {taskClass: c, tables: 'active'})).tasks).toEqual([])
    })

    it('execute runs a task in the foreground and archives it; failures are recorded like a daemon records them', async () => {
      const c = freshClass()
      const noop = await enqueueTask(storage, {taskClass: 'taskd.noop', data: {c}, delaySeconds: 3600})
      const ok = await executeTask(storage, noop.id, {handlers})
      expect(ok).toMatchObject({ref: noop.ref, outcome: 'success', recorded: true, state: 'succeeded', attempt: 1, tookOverFrom: null})
      expect(await showTask(storage, noop.id)).toMatchObject({table: 'archived', state: 'succeeded'})

      const permanent = await enqueueTask(storage, {taskClass: 'taskd.fail', data: {permanent: true, message: 'nope'}})
      expect(await executeTask(storage, permanent.id, {handlers})).toMatchObject({outcome: 'fail', error: 'nope', state: 'failed'})

      const flaky = await enqueueTask(storage, {taskClass: 'taskd.fail', data: {message: 'try later'}})
      await leaseAs(flaky.id, 'daemon-x')
      const retried = await executeTask(storage, flaky.id, {handlers, owner: 'execute:test'})
      expect(retried).toMatchObject({outcome: 'retry', error: 'try later', state: 'delayed', tookOverFrom: 'daemon-x', recorded: true})
      expect(await showTask(storage, flaky.id)).toMatchObject({failureCount: 1, leaseOwner: null, lastError: 'try later'})

      await expect(executeTask(storage, noop.id, {handlers})).rejects.toMatchObject({exit: 1, message: expect.stringContaining('tasks retry')})
      await expect(executeTask(storage, 987654, {handlers})).rejects.toMatchObject({code: 'E_NOT_FOUND', exit: 1})
      const unknown = await enqueue(c)
      const before = await snapshot([unknown])
      await expect(executeTask(storage, unknown, {handlers})).rejects.toMatchObject({code: 'E_CONFIG'})
      expect(await snapshot([unknown])).toEqual(before)
    })

    it.runIf(name === 'mysql')('a task leased by a daemon while cancel waits for its row lock is skipped, not cancelled', async () => {
      const id = await enqueue(freshClass())
      const daemon = await Storage.open(database.url)
      try {
        let release!: () => void
        const gate = new Promise<void>((resolve) => (release = resolve))
        let locked!: () => void
        const isLocked = new Promise<void>((resolve) => (locked = resolve))
        // A daemon's lease transaction: locks the row, leases it, and has not committed yet.
        const lease = daemon.db.transaction().execute(async (trx) => {
          await trx.selectFrom('taskd_tasks').select('id').where('id', '=', id).forUpdate().execute()
          await trx.updateTable('taskd_tasks').set({lease_owner: 'racer', lease_expires: daemon.now() + 60}).where('id', '=', id).execute()
          locked()
          await gate
        })
        await isLocked
        // cancel selects the row (it still looks unleased), then waits for the lock.
        const cancel = cancelTasks(storage, {ids: [id]})
        await until(() => waitsForRowLock(storage, 'taskd_tasks'), {what: 'cancel to wait for the row lock'})
        release()
        await lease

        const result = await cancel
        expect(byId(result)[id]).toMatchObject({action: 'skipped', before: 'leased'})
        expect(await showTask(storage, id)).toMatchObject({table: 'active', state: 'leased', leaseOwner: 'racer'})
      } finally {
        await daemon.close()
      }
    })
  })

  describe.skipIf(skip)('commands', () => {
    const run = (...args: string[]) => runCommand([...args, '--database', database.url], {root})
    const exitOf = (error: unknown) => (error as {oclif?: {exit?: number}} | undefined)?.oclif?.exit

    afterEach(() => {
      // A failing command sets the exit code of the process it runs in: this test worker.
      process.exitCode = undefined
    })

    it('tasks list --json returns the selected tasks; text output uses refs', async () => {
      const c = freshClass()
      const id = await enqueue(c)
      const {stdout, error} = await run('tasks', 'list', '--class', c, '--json')
      expect(error).toBeUndefined()
      const parsed = JSON.parse(stdout) as {tasks: {ref: string; state: string}[]; more: boolean}
      expect(parsed.tasks).toEqual([expect.objectContaining({ref: `queue:${id}`, state: 'ready'})])
      const text = await run('tasks', 'list', '--class', c)
      expect(text.stdout).toContain(`queue:${id}`)
    })

    it('unknown ids exit 1 with a one-line message; conflicting or missing selectors exit 2', async () => {
      const missing = await run('tasks', 'show', 'queue:987654')
      expect(exitOf(missing.error)).toBe(1)
      expect(missing.stderr.trim()).toBe('Error: task queue:987654 not found (neither active nor archived)')
      expect(exitOf((await run('tasks', 'cancel', '--id', '987654')).error)).toBe(1)
      expect(exitOf((await run('tasks', 'list', '--active', '--archived')).error)).toBe(2)
      expect(exitOf((await run('tasks', 'cancel')).error)).toBe(2)
      expect(exitOf((await run('tasks', 'retry', '--all', '--min-priority', 'import', '--max-priority', 'alerts')).error)).toBe(2)
      expect(exitOf((await run('tasks', 'priority', 'soon', '--all')).error)).toBe(2)
      expect(exitOf((await run('tasks', 'delay', 'tomorrow', '--all')).error)).toBe(2)
      expect(exitOf((await run('tasks', 'show', 'gc:archived-tasks')).error)).toBe(2)
    })

    it('tasks retry / priority / delay / cancel / free act on the selection; --dry-run writes nothing', async () => {
      const c = freshClass()
      const id = await enqueue(c)
      await finish(id, 'fail')
      const dry = await run('tasks', 'retry', '--id', `queue:${id}`, '--dry-run', '--json')
      expect(JSON.parse(dry.stdout)).toMatchObject({operation: 'retry', dryRun: true, changed: 1})
      expect((await showTask(storage, id)).table).toBe('archived')
      const retried = await run('tasks', 'retry', '--id', String(id), '--json')
      expect(JSON.parse(retried.stdout)).toMatchObject({changed: 1, tasks: [{ref: `queue:${id}`, action: 'changed', before: 'failed', after: 'ready'}]})

      expect((await run('tasks', 'priority', 'bulk', '--class', c)).stdout).toContain(`queue:${id}`)
      expect((await showTask(storage, id)).priority).toBe(3000)
      await run('tasks', 'delay', '2h', '--id', String(id))
      expect((await showTask(storage, id)).state).toBe('delayed')
      await leaseAs(id, 'dead-daemon')
      const cancel = await run('tasks', 'cancel', '--class', c, '--json')
      expect(JSON.parse(cancel.stdout)).toMatchObject({changed: 0, skipped: 1})
      expect(JSON.parse((await run('tasks', 'free', '--class', c, '--json')).stdout)).toMatchObject({changed: 1})
      expect(JSON.parse((await run('tasks', 'cancel', '--class', c, '--json')).stdout)).toMatchObject({changed: 1})
      const shown = await run('tasks', 'show', String(id), '--json')
      expect(JSON.parse(shown.stdout)).toMatchObject({ref: `queue:${id}`, state: 'cancelled', data: {n: 1}})
    })

    it('tasks execute runs a task (exit 0) and exits 1 when it fails', async () => {
      const ok = await enqueueTask(storage, {taskClass: 'taskd.noop'})
      const good = await run('tasks', 'execute', '--id', ok.ref, '--json')
      expect(good.error).toBeUndefined()
      expect(JSON.parse(good.stdout)).toMatchObject({ref: ok.ref, outcome: 'success', state: 'succeeded'})
      const bad = await enqueueTask(storage, {taskClass: 'taskd.fail', data: {permanent: true}})
      const failed = await run('tasks', 'execute', '--id', String(bad.id))
      expect(exitOf(failed.error)).toBe(1)
      expect(failed.stdout).toContain(`${bad.ref} (taskd.fail, attempt 1) failed permanently`)
      const failedJson = await run('tasks', 'execute', '--id', String((await enqueueTask(storage, {taskClass: 'taskd.fail', data: {permanent: true}})).id), '--json')
      expect(exitOf(failedJson.error)).toBe(1)
      expect(JSON.parse(failedJson.stdout)).toMatchObject({outcome: 'fail', state: 'failed'})
    })
  })
})
