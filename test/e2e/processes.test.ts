/**
 * End-to-end with real child processes at once: concurrent migrations, two daemons sharing one
 * MariaDB database, and signals. Spawns the built CLI (`npm run build` first).
 */
import {writeFileSync} from 'node:fs'
import path from 'node:path'

import {sql} from 'kysely'
import {createConnection} from 'mysql2/promise'
import {afterAll, describe, expect, it, vi, type TestContext} from 'vitest'

import {enqueueTask} from '../../src/generators/queue/enqueue.js'
import {ARCHIVE_RESULT} from '../../src/storage/schema.js'
import {Storage} from '../../src/storage/storage.js'
import {killLeftovers, importableUrl, removeTempDirs, runCli, runCliOk, startDaemon, tempDir, withStorage, type DaemonProcess} from '../helpers/cli.js'
import {DIALECTS, createTestDatabase, until, type TestDatabase} from '../helpers/databases.js'

const MYSQL = DIALECTS.find((d) => d.name === 'mysql')!

// Every test is a chain of CLI processes (about 0.4 s of CPU each) and tests run concurrently: on a
// busy two-core machine a chain can take minutes. These are safety nets for hangs, not speed limits.
vi.setConfig({testTimeout: 240_000, hookTimeout: 120_000})

const databases: TestDatabase[] = []
async function freshDatabase(dialect: 'sqlite' | 'mysql'): Promise<TestDatabase> {
  const database = await createTestDatabase(dialect)
  databases.push(database)
  return database
}

/**
 * Starts `taskd run` for one test and makes sure it is gone when that test ends, whatever happened
 * (SIGKILL by its own pid; tests run concurrently, so never anyone else's).
 */
function daemonStarter(onTestFinished: TestContext['onTestFinished']) {
  return (args: string[], options: Parameters<typeof startDaemon>[1]): DaemonProcess => {
    // These tests count the queue's work; the other generators (gc, webhooks) stay out of the figures.
    const started = startDaemon(args.includes('--generators') ? args : [...args, '--generators', 'queue'], options)
    onTestFinished(async () => {
      started.signal('SIGKILL')
      await started.exited()
    })
    return started
  }
}

afterAll(async () => {
  killLeftovers()
  for (const database of databases.splice(0)) await database.drop()
  removeTempDirs()
})

interface DbMigrate {
  applied: string[]
  pending: string[]
}

describe.concurrent.each(DIALECTS)('four `taskd db migrate` at once on a fresh $name database', ({name, skip}) => {
  // A few rounds, each on a fresh database: the race window is narrow.
  for (const round of [1, 2, 3]) {
    it.skipIf(skip)(`round ${round}: all exit 0 and each migration is applied exactly once`, async () => {
      const database = await freshDatabase(name)
      const cwd = tempDir()
      const args = ['db', 'migrate', '--json', '--database', database.url]
      const results = await Promise.all([1, 2, 3, 4].map(() => runCli(args, {cwd})))
      for (const result of results) {
        expect(result.code, result.stderr).toBe(0)
        expect(result.stderr).toBe('')
      }
      const status = await runCliOk<{migrations: {name: string; applied: boolean}[]; pending: number}>(['db', 'status', '--json', '--database', database.url], {cwd})
      const all = status.migrations.map((m) => m.name)
      expect(status.pending).toBe(0)
      // Between them the four processes applied every migration once; the others found nothing to do.
      expect(results.flatMap((r) => (r.json as DbMigrate).applied).sort()).toEqual([...all].sort())
      const rows = await withStorage(database.url, async ({db}) => (await sql<{name: string}>`select name from taskd_migration order by name`.execute(db)).rows)
      expect(rows.map((r) => r.name)).toEqual([...all].sort())
    })
  }
})

describe.skipIf(MYSQL.skip)('two daemons on one MariaDB database', () => {
  it('run 5000 tasks between them: each archived once as a success, never executed twice at the same time', async ({onTestFinished}) => {
    const daemon = daemonStarter(onTestFinished)
    const database = await freshDatabase('mysql')
    const cwd = tempDir()
    const env = {TASKD_DATABASE_URL: database.url, E2E_EXEC_LOG_URL: database.url}
    await runCliOk(['db', 'migrate'], {cwd, env})
    const admin = await createConnection({uri: database.url})
    try {
      await admin.query('CREATE TABLE exec_log (n BIGINT AUTO_INCREMENT PRIMARY KEY, task_id BIGINT NOT NULL, pid INT NOT NULL, started_ms BIGINT NOT NULL, ended_ms BIGINT NOT NULL, KEY (task_id))')
      await admin.query('CREATE TABLE daemon_seen (pid INT PRIMARY KEY)')
    } finally {
      await admin.end()
    }
    // Handlers get only (data, ctx): the module opens its own pool from the env and closes it via close().
    writeFileSync(
      path.join(cwd, 'taskd.config.mjs'),
      `import mysql from ${JSON.stringify(importableUrl('mysql2/promise'))}

const pool = mysql.createPool({uri: process.env.E2E_EXEC_LOG_URL, connectionLimit: 8})
let together = false

// A start barrier instead of timing luck: each daemon's first tasks wait until the other daemon
// has run a task too, so both provably take part however fast the first one is.
async function bothDaemonsRunning(signal) {
  if (together) return
  await pool.query('INSERT IGNORE INTO daemon_seen (pid) VALUES (?)', [process.pid])
  while (!together) {
    signal.throwIfAborted()
    const [rows] = await pool.query('SELECT COUNT(*) AS n FROM daemon_seen')
    if (Number(rows[0].n) >= 2) together = true
    else await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

export default {
  handlers: {
    'app.record': async (data, ctx) => {
      await bothDaemonsRunning(ctx.signal)
      const started = Date.now()
      await new Promise((resolve) => setImmediate(resolve))
      const ended = Date.now()
      await pool.query('INSERT INTO exec_log (task_id, pid, started_ms, ended_ms) VALUES (?, ?, ?, ?)', [Number(ctx.task.identifier), process.pid, started, ended])
    },
  },
  close: () => pool.end(),
}
`,
    )
    const flood = await runCliOk<{count: number}>(['tasks', 'flood', '--count', '5000', '--class', 'app.record', '--json'], {cwd, env})
    expect(flood.count).toBe(5000)

    const args = ['--until-idle', '--concurrency', '8', '--lease-seconds', '5']
    const a = daemon(args, {cwd, env})
    const b = daemon(args, {cwd, env})
    const [exitA, exitB] = await Promise.all([a.waitForExit(180_000), b.waitForExit(180_000)])
    expect(exitA, a.stderr + a.stdout.slice(-2000)).toEqual({code: 0, signal: null})
    expect(exitB, b.stderr + b.stdout.slice(-2000)).toEqual({code: 0, signal: null})
    expect(a.stderr + b.stderr).toBe('')

    await withStorage(database.url, async ({db}) => {
      expect(await db.selectFrom('taskd_tasks').select(['id', 'lease_owner', 'attempts']).limit(20).execute()).toEqual([])
      const archive = await db
        .selectFrom('taskd_task_archive')
        .select(['result', (eb) => eb.fn.countAll().as('n'), (eb) => eb.fn.count('id').distinct().as('ids'), (eb) => eb.fn.min('id').as('lo'), (eb) => eb.fn.max('id').as('hi')])
        .groupBy('result')
        .execute()
      expect(archive.map((r) => ({result: Number(r.result), n: Number(r.n), ids: Number(r.ids)}))).toEqual([{result: ARCHIVE_RESULT.success, n: 5000, ids: 5000}])
      expect(Number(archive[0].hi) - Number(archive[0].lo)).toBe(4999)

      const log = (
        await sql<{task_id: number; pid: number; started_ms: number; ended_ms: number}>`select task_id, pid, started_ms, ended_ms from exec_log order by task_id, started_ms, n`.execute(db)
      ).rows.map((r) => ({taskId: Number(r.task_id), pid: Number(r.pid), started: Number(r.started_ms), ended: Number(r.ended_ms)}))
      // Every archived task ran; a task run more than once (a lease taken over) never ran twice at the same time.
      const byTask = new Map<number, typeof log>()
      for (const row of log) byTask.set(row.taskId, [...(byTask.get(row.taskId) ?? []), row])
      expect(byTask.size).toBe(5000)
      const overlapping = [...byTask.values()].filter((runs) => runs.some((run, i) => i > 0 && run.started < runs[i - 1].ended))
      expect(overlapping).toEqual([])
      // Both daemons did work, and what each says it did matches the log.
      const pids = new Set(log.map((r) => r.pid))
      expect(pids).toEqual(new Set([a.pid, b.pid]))
      const stopped = [a, b].map((d) => d.events().find((e) => e.event === 'daemon stopped'))
      for (const [i, d] of [a, b].entries()) {
        expect(stopped[i], d.stdout.slice(-2000)).toMatchObject({failed: 0, retried: 0})
        expect(Number(stopped[i]?.succeeded)).toBe(log.filter((r) => r.pid === d.pid).length)
      }
    })
  })
})

describe.concurrent.each(DIALECTS)('stopping `taskd run` on $name', ({name, skip}) => {
  /** A migrated database with `count` taskd.sleep tasks of `ms` each; the test's own Storage to watch it. */
  async function setUp(count: number, ms: number) {
    const database = await freshDatabase(name)
    const cwd = tempDir()
    await runCliOk(['db', 'migrate', '--database', database.url], {cwd})
    const storage = await Storage.open(database.url)
    const ids: number[] = []
    for (let i = 0; i < count; i++) ids.push((await enqueueTask(storage, {taskClass: 'taskd.sleep', data: {ms}})).id)
    const rows = () => storage.db.selectFrom('taskd_tasks').select(['id', 'lease_owner', 'lease_expires', 'attempts', 'failure_count']).where('id', 'in', ids).orderBy('id').execute()
    const archive = () => storage.db.selectFrom('taskd_task_archive').select(['id', 'result', 'attempts', 'reason']).orderBy('id').execute()
    /** Waits until every task is leased by this owner. */
    const leasedBy = (owner: string) => until(async () => (await rows()).every((r) => r.lease_owner === owner), {timeoutMs: 60_000, what: `all ${count} tasks leased by ${owner}`})
    return {database, cwd, storage, ids, rows, archive, leasedBy}
  }

  it.skipIf(skip)('SIGTERM with --grace 0s releases running tasks at once (not failed), and another daemon runs them', async ({onTestFinished}) => {
    const daemon = daemonStarter(onTestFinished)
    const {database, cwd, storage, ids, rows, archive, leasedBy} = await setUp(2, 600_000)
    try {
      const a = daemon(['--grace', '0s', '--database', database.url], {cwd})
      const {owner} = (await a.waitForEvent('daemon started')) as {owner: string}
      await leasedBy(owner)

      a.signal('SIGTERM')
      // A safety net far below the tasks' 10 minutes: exiting at all before they end shows nothing waited for them.
      expect(await a.waitForExit(60_000), a.stdout).toEqual({code: 0, signal: null})
      expect(a.stderr).toBe('')
      expect(a.events().map((e) => e.event)).toContain('signal received; stopping gracefully')
      expect(a.events().find((e) => e.event === 'daemon stopped')).toMatchObject({leased: 2, released: 2, succeeded: 0, failed: 0, retried: 0})

      expect((await rows()).map((r) => ({...r, attempts: Number(r.attempts), failure_count: Number(r.failure_count)}))).toEqual(
        ids.map((id) => ({id, lease_owner: null, lease_expires: null, attempts: 1, failure_count: 0})),
      )
      expect(await archive()).toEqual([])

      // Daemon B takes them over; short sleeps now, so it can run them to the end.
      await storage.db.updateTable('taskd_tasks').set({data: JSON.stringify({ms: 10})}).where('id', 'in', ids).execute()
      const b = daemon(['--until-idle', '--database', database.url], {cwd})
      expect(await b.waitForExit(), b.stdout + b.stderr).toEqual({code: 0, signal: null})
      expect(b.events().find((e) => e.event === 'daemon stopped')).toMatchObject({leased: 2, succeeded: 2})
      expect((await archive()).map((r) => ({id: Number(r.id), result: Number(r.result), attempts: Number(r.attempts)}))).toEqual(
        ids.map((id) => ({id, result: ARCHIVE_RESULT.success, attempts: 2})),
      )
    } finally {
      await storage.close()
    }
  })

  it.skipIf(skip)('a second signal stops at once, releasing the leases, even while the grace period runs', async ({onTestFinished}) => {
    const daemon = daemonStarter(onTestFinished)
    const {database, cwd, storage, ids, rows, archive, leasedBy} = await setUp(2, 600_000)
    try {
      // Both the grace and the tasks are far longer than any test: only the second signal can end this daemon.
      const c = daemon(['--grace', '10m', '--database', database.url], {cwd})
      const {owner} = (await c.waitForEvent('daemon started')) as {owner: string}
      await leasedBy(owner)

      c.signal('SIGTERM')
      await c.waitForEvent('daemon stopping')
      // Graceful: still running its tasks, still holding their leases.
      expect(c.running).toBe(true)
      expect((await rows()).every((r) => r.lease_owner === owner)).toBe(true)

      c.signal('SIGINT')
      expect(await c.waitForExit(60_000), c.stdout).toEqual({code: 0, signal: null})
      expect(c.stderr).toBe('')
      expect(c.events().map((e) => e.event)).toEqual(expect.arrayContaining(['signal received; stopping gracefully', 'second signal; stopping now', 'daemon stopped']))
      expect(c.events().find((e) => e.event === 'daemon stopped')).toMatchObject({released: 2, succeeded: 0, failed: 0})
      expect((await rows()).map((r) => ({id: r.id, lease_owner: r.lease_owner, failure_count: Number(r.failure_count)}))).toEqual(
        ids.map((id) => ({id, lease_owner: null, failure_count: 0})),
      )
      expect(await archive()).toEqual([])
    } finally {
      await storage.close()
    }
  })

  it.skipIf(skip)('--grace longer than 30 s is the grace the daemon uses', async ({onTestFinished}) => {
    const daemon = daemonStarter(onTestFinished)
    const database = await freshDatabase(name)
    const cwd = tempDir()
    await runCliOk(['db', 'migrate', '--database', database.url], {cwd})
    const d = daemon(['--grace', '2m', '--database', database.url], {cwd})
    await d.waitForEvent('daemon started')
    d.signal('SIGTERM')
    expect(await d.waitForExit(), d.stdout).toEqual({code: 0, signal: null})
    expect(d.events().find((e) => e.event === 'daemon stopping')).toMatchObject({grace_s: 120})
  })
})
