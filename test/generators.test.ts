import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {sql} from 'kysely'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {Daemon} from '../src/daemon/daemon.js'
import {COLLECTORS, setRetention} from '../src/generators/gc/collectors.js'
import {GC_KEY, GC_SLEEP_SECONDS, gcGenerator, runCollector} from '../src/generators/gc/generator.js'
import {enqueueTasks} from '../src/generators/queue/enqueue.js'
import {queueGenerator} from '../src/generators/queue/generator.js'
import {acquireRun, advanceCursor, getState, listStates, setPaused} from '../src/storage/generator-state.js'
import {Storage} from '../src/storage/storage.js'
import {DIALECTS, openTestStorage, type TestDatabase} from './helpers/databases.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const archive = COLLECTORS.find((c) => c.name === 'archived-tasks')!
const DAY = 86_400

async function insertArchived(storage: Storage, count: number, ageSeconds: number, firstId = 1) {
  const now = storage.now()
  for (let i = 0; i < count; i += 500) {
    const rows = Array.from({length: Math.min(500, count - i)}, (_, j) => ({
      id: firstId + i + j,
      task_class: 'taskd.noop',
      priority: 2000,
      data: 'null',
      object_ref: null,
      container_ref: null,
      attempts: 1,
      failure_count: 0,
      result: 0,
      reason: null,
      duration_us: 10,
      created_at: now - ageSeconds,
      archived_at: now - ageSeconds,
      legacy_id: null,
    }))
    await storage.db.insertInto('taskd_task_archive').values(rows).execute()
  }
}

/** Every row of every taskd table, in a stable order: a peek must leave this unchanged. */
async function dumpTables(storage: Storage): Promise<string> {
  const tables = {
    taskd_tasks: 'id',
    taskd_task_archive: 'id',
    taskd_generator_state: 'generator, state_key',
    taskd_daemons: 'id',
    taskd_gc_policies: 'collector',
    taskd_migration: 'name',
    taskd_webhooks: 'id',
    taskd_webhook_requests: 'id',
  }
  const dump: Record<string, unknown[]> = {}
  for (const [table, order] of Object.entries(tables)) {
    dump[table] = (await sql`select * from ${sql.table(table)} order by ${sql.raw(order)}`.execute(storage.db)).rows
  }
  return JSON.stringify(dump)
}

describe.each(DIALECTS)('generator state and GC on $name', ({name, skip}) => {
  let storage: Storage
  let cleanup: () => Promise<void>
  let database: TestDatabase

  beforeAll(async () => {
    if (skip) return
    ;({storage, cleanup, database} = await openTestStorage(name))
  })
  afterAll(async () => {
    if (!skip) await cleanup()
  })

  it.skipIf(skip)('an empty GC run sleeps 4 h, and a restarted daemon does not run it again', async () => {
    const first = new Daemon({storage, generators: [gcGenerator()], untilIdle: true})
    await first.start()
    await first.finished()
    expect(first.stats.succeeded).toBe(COLLECTORS.length)
    const states = await listStates(storage, GC_KEY)
    const now = storage.now()
    for (const collector of COLLECTORS) {
      const state = states.find((s) => s.key === collector.name)!
      expect(state.lastCount).toBe(0)
      expect(state.nextRunAt).toBeGreaterThanOrEqual(now + GC_SLEEP_SECONDS - 5)
      expect(state.runOwner).toBeNull()
    }
    // A "restart": a new daemon (new owner) against the same database.
    const second = new Daemon({storage, generators: [gcGenerator()], untilIdle: true})
    await second.start()
    await second.finished()
    expect(second.stats.leased).toBe(0)
    expect(await listStates(storage, GC_KEY)).toEqual(states)
  })

  it.skipIf(skip)('only one owner wins a collector\'s run lease, however many race for it', async () => {
    await storage.db.deleteFrom('taskd_generator_state').execute()
    const others = await Promise.all(Array.from({length: 4}, () => Storage.open(database.url)))
    try {
      const attempts = await Promise.all(
        Array.from({length: 20}, (_, i) => acquireRun(others[i % others.length], GC_KEY, 'archived-tasks', `owner-${i}`, 60)),
      )
      expect(attempts.filter(Boolean)).toHaveLength(1)
      const state = await getState(storage, GC_KEY, 'archived-tasks')
      expect(state.runOwner).toBe(`owner-${attempts.indexOf(true)}`)
      // While the lease is live nobody else gets it, not even a foreground run that ignores the schedule.
      expect(await acquireRun(storage, GC_KEY, 'archived-tasks', 'late', 60, {ignoreSchedule: true})).toBe(false)
      // Two daemons: neither leases gc:archived-tasks while it is held.
      const daemons = [0, 1].map(() => new Daemon({storage, generators: [gcGenerator()], untilIdle: true}))
      await Promise.all(daemons.map((d) => d.start()))
      await Promise.all(daemons.map((d) => d.finished()))
      expect(daemons.reduce((n, d) => n + d.stats.leased, 0)).toBe(COLLECTORS.length - 1)
    } finally {
      await Promise.all(others.map((s) => s.close()))
    }
  })

  it.skipIf(skip)('deletes in batches until one comes back short, then sleeps', async () => {
    await storage.db.deleteFrom('taskd_generator_state').execute()
    await insertArchived(storage, 2500, 20 * DAY)
    await insertArchived(storage, 10, 1 * DAY, 10_000)
    // A budget of 0 stops after the first full batch and says there is more.
    expect(await runCollector(storage, archive, {budgetMs: 0, batchSize: 1000})).toEqual({count: 1000, more: true})
    expect(await runCollector(storage, archive, {batchSize: 1000})).toEqual({count: 1500, more: false})
    const left = await storage.db.selectFrom('taskd_task_archive').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow()
    expect(Number(left.n)).toBe(10)

    // Through the daemon: a full batch makes the collector due again at once.
    await insertArchived(storage, 1500, 20 * DAY, 20_000)
    const daemon = new Daemon({storage, generators: [gcGenerator()], untilIdle: true})
    await daemon.start()
    await daemon.finished()
    const state = await getState(storage, GC_KEY, 'archived-tasks')
    expect(state.totalCount).toBe(1500)
    expect(state.nextRunAt).toBeGreaterThan(storage.now() + GC_SLEEP_SECONDS - 10)
  })

  it.skipIf(skip)('honours a stored policy without a restart; indefinite keeps everything', async () => {
    await storage.db.deleteFrom('taskd_task_archive').execute()
    await insertArchived(storage, 5, 3 * DAY)
    expect((await runCollector(storage, archive)).count).toBe(0)
    await setRetention(storage, archive, 2 * DAY)
    expect((await runCollector(storage, archive)).count).toBe(5)
    await insertArchived(storage, 5, 300 * DAY, 100)
    await setRetention(storage, archive, null)
    expect((await runCollector(storage, archive)).count).toBe(0)
    await setRetention(storage, archive, 'default')
    expect((await runCollector(storage, archive)).count).toBe(5)
  })

  it.skipIf(skip)('a paused generator is skipped by the daemon', async () => {
    await storage.db.deleteFrom('taskd_tasks').execute()
    await enqueueTasks(storage, Array.from({length: 5}, () => ({taskClass: 'taskd.noop'})))
    await setPaused(storage, 'queue', true)
    const paused = new Daemon({storage, generators: [queueGenerator], untilIdle: true})
    await paused.start()
    await paused.finished()
    expect(paused.stats.leased).toBe(0)
    await setPaused(storage, 'queue', false)
    const resumed = new Daemon({storage, generators: [queueGenerator], untilIdle: true})
    await resumed.start()
    await resumed.finished()
    expect(resumed.stats.succeeded).toBe(5)
  })

  it.skipIf(skip)('the cursor advances only by compare-and-set', async () => {
    expect(await advanceCursor(storage, 'walk', 'cursor', 0, '10:1')).toBe(true)
    expect(await advanceCursor(storage, 'walk', 'cursor', 0, '99:9')).toBe(false)
    const state = await getState(storage, 'walk', 'cursor')
    expect(state).toMatchObject({cursor: '10:1', cursorVersion: 1})
  })

  it.skipIf(skip)('peek leaves every table unchanged', async () => {
    await storage.db.deleteFrom('taskd_tasks').execute()
    await storage.db.deleteFrom('taskd_generator_state').execute()
    await enqueueTasks(storage, [
      {taskClass: 'a', priority: 3000},
      {taskClass: 'b', priority: 1000},
      {taskClass: 'c', delaySeconds: 3600},
    ])
    const now = storage.now()
    // One task with an expired lease (its daemon died).
    await storage.db.updateTable('taskd_tasks').set({lease_owner: 'dead', lease_expires: now - 10}).where('task_class', '=', 'a').execute()
    const before = await dumpTables(storage)
    const peekedQueue = await queueGenerator.peek({store: storage, owner: 'peek'}, {limit: 10})
    const peekedGc = await gcGenerator().peek({store: storage, owner: 'peek'}, {limit: 10})
    expect(await dumpTables(storage)).toBe(before)
    expect(peekedQueue.map((t) => t.taskClass)).toEqual(['b', 'a'])
    expect(peekedGc.map((t) => t.ref)).toEqual(COLLECTORS.map((c) => `gc:${c.name}`))
  })
})

describe.each(DIALECTS)('a user generator from a config module, end to end on $name', ({name, skip}) => {
  let storage: Storage
  let cleanup: () => Promise<void>
  let url: string
  let dir: string

  beforeAll(async () => {
    if (skip) return
    let database: TestDatabase
    ;({storage, cleanup, database} = await openTestStorage(name))
    url = database.url
    dir = mkdtempSync(path.join(os.tmpdir(), 'taskd-usergen-'))
    await storage.db.schema
      .createTable('app_rows')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('body', 'varchar(64)', (c) => c.notNull())
      .execute()
    const past = storage.now() - 60
    await storage.db
      .insertInto('app_rows' as never)
      .values(Array.from({length: 25}, (_, i) => ({id: i + 1, updated_at: past + (i % 3), body: `row ${i + 1}`})) as never)
      .execute()
    // The generator walks app_rows with a cursor and turns each row into a queue task, atomically.
    writeFileSync(
      path.join(dir, 'taskd.config.mjs'),
      `import {defineCursorGenerator, pageAfter, enqueueTasks} from ${JSON.stringify(path.join(ROOT, 'dist/index.js'))}
export default {
  handlers: {'app.index-row': async () => {}},
  generators: [
    defineCursorGenerator({
      key: 'app-rows',
      description: 'Turns new rows of app_rows into app.index-row tasks',
      priority: 3000,
      taskClass: 'app.scan-rows',
      pageSize: 10,
      settleSeconds: 0,
      fetchPage: (store, after, settleBefore, limit) =>
        pageAfter(store.db.selectFrom('app_rows').selectAll(), {at: 'updated_at', id: 'id'}, after, settleBefore, limit).execute(),
      positionOf: (row) => ({at: Number(row.updated_at), id: Number(row.id)}),
      processPage: (store, rows) => enqueueTasks(store, rows.map((row) => ({taskClass: 'app.index-row', data: {id: row.id}}))),
    }),
  ],
}
`,
    )
  })
  afterAll(async () => {
    if (skip) return
    if (!process.env.KEEP_TMP) await cleanup()
    if (!process.env.KEEP_TMP) rmSync(dir, {recursive: true, force: true})
    else console.log("kept", dir, url)
  })

  const cli = (...args: string[]) => {
    const result = spawnSync(process.execPath, [path.join(ROOT, 'bin/run.js'), ...args, '--database', url], {
      cwd: dir,
      encoding: 'utf8',
      env: {...process.env, NODE_ENV: 'production', TASKD_SKIP_NEW_VERSION_CHECK: 'true'},
    })
    return {code: result.status, stdout: result.stdout, stderr: result.stderr}
  }

  it.skipIf(skip)('appears in list and peek, runs under taskd run, and its cursor covers every row once', () => {
    const listed = cli('generators', 'list', '--json')
    expect(listed.stderr).toBe('')
    expect(JSON.parse(listed.stdout).generators.map((g: {key: string}) => g.key)).toEqual(['queue', 'webhooks', 'gc', 'app-rows'])
    const peek = JSON.parse(cli('generators', 'peek', 'app-rows', '--json').stdout)
    expect(peek.tasks.map((t: {ref: string}) => t.ref)).toEqual(['app-rows:cursor'])
    const run = cli('run', '--until-idle', '--generators', 'queue,app-rows', '--log-format', 'json')
    expect(run.code, run.stdout + run.stderr).toBe(0)
    const after = JSON.parse(cli('generators', 'list', '--json').stdout).generators.find((g: {key: string}) => g.key === 'app-rows')
    expect(after.totalCount, run.stdout).toBe(25)
    expect(after.status).toBe('sleeping')
    const unknown = cli('generators', 'peek', 'nope')
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain('valid keys are queue, webhooks, gc, app-rows')
  })

  it.skipIf(skip)('turned every row into exactly one archived task', async () => {
    const archived = await storage.db.selectFrom('taskd_task_archive').select(['data', 'result']).where('task_class', '=', 'app.index-row').execute()
    expect(archived).toHaveLength(25)
    expect(new Set(archived.map((r) => (JSON.parse(r.data) as {id: number}).id)).size).toBe(25)
    expect(archived.every((r) => Number(r.result) === 0)).toBe(true)
  })
})
