import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import Database from 'better-sqlite3'
import {sql} from 'kysely'
import {createConnection} from 'mysql2/promise'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {enqueueTasks} from '../src/generators/queue/enqueue.js'
import {Storage} from '../src/storage/storage.js'
import {DIALECTS, openTestStorage, until, type TestDatabase} from './helpers/databases.js'

/**
 * Crash, connection-loss and lock-contention scenarios with real processes. Sizes are set so the
 * file stays well inside CI's budget; TASKD_CHAOS_TASKS / TASKD_CHAOS_SECONDS run the long versions.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CHAOS_TASKS = Number(process.env.TASKD_CHAOS_TASKS ?? 5000)
const CHAOS_SECONDS = Number(process.env.TASKD_CHAOS_SECONDS ?? 120)
const mysql = DIALECTS.find((d) => d.name === 'mysql')!

interface Daemon {
  child: ChildProcess
  pid: number
  output: string
  exited: Promise<number | null>
}

function startDaemon(args: string[], cwd: string, env: Record<string, string> = {}): Daemon {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/run.js'), 'run', ...args], {
    cwd,
    env: {...process.env, NODE_ENV: 'production', TASKD_SKIP_NEW_VERSION_CHECK: 'true', ...env},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const daemon: Daemon = {child, pid: child.pid!, output: '', exited: new Promise((resolve) => child.on('exit', (code) => resolve(code)))}
  child.stdout!.on('data', (chunk: Buffer) => (daemon.output += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (daemon.output += chunk.toString()))
  return daemon
}

async function count(storage: Storage, table: 'taskd_tasks' | 'taskd_task_archive'): Promise<number> {
  const row = await storage.db.selectFrom(table).select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow()
  return Number(row.n)
}

/** A config module whose handler records every execution (task, daemon pid, start, end) in exec_log. */
function writeRecordingConfig(dir: string) {
  writeFileSync(
    path.join(dir, 'taskd.config.mjs'),
    `import {createPool} from ${JSON.stringify(path.join(ROOT, 'node_modules/mysql2/promise.js'))}
const pool = createPool({uri: process.env.EXEC_LOG_URL, connectionLimit: 4})
export default {
  close: () => pool.end(),
  handlers: {
    'app.record': async (data) => {
      const [res] = await pool.query('insert into exec_log (task_id, pid, started_ms) values (?, ?, ?)', [data.n, process.pid, Date.now()])
      await new Promise((r) => setTimeout(r, 2 + Math.floor(Math.random() * 10)))
      await pool.query('update exec_log set ended_ms = ? where id = ?', [Date.now(), res.insertId])
    },
  },
}
`,
  )
}

describe.skipIf(mysql.skip)('crash chaos on MariaDB: SIGKILLed daemons lose nothing and never overlap a task', () => {
  let storage: Storage
  let database: TestDatabase
  let cleanup: () => Promise<void>
  let dir: string
  const daemons: Daemon[] = []

  beforeAll(async () => {
    ;({storage, database, cleanup} = await openTestStorage('mysql'))
    dir = mkdtempSync(path.join(os.tmpdir(), 'taskd-chaos-'))
    await sql`create table exec_log (id bigint auto_increment primary key, task_id int not null, pid int not null, started_ms bigint not null, ended_ms bigint null, key (task_id))`.execute(storage.db)
    writeRecordingConfig(dir)
  })
  afterAll(async () => {
    for (const d of daemons) d.child.kill('SIGKILL')
    await cleanup()
    rmSync(dir, {recursive: true, force: true})
  })

  it(`drains ${CHAOS_TASKS} tasks while a daemon is killed about every second`, {timeout: (CHAOS_SECONDS + 120) * 1000}, async () => {
    for (let i = 0; i < CHAOS_TASKS; i += 1000) {
      await enqueueTasks(storage, Array.from({length: Math.min(1000, CHAOS_TASKS - i)}, (_, j) => ({taskClass: 'app.record', data: {n: i + j + 1}})))
    }
    const env = {EXEC_LOG_URL: database.url}
    const args = ['--database', database.url, '--concurrency', '8', '--lease-seconds', '3', '--poll-max', '100ms', '--grace', '0s']
    const kills = new Map<number, number>()
    const live = () => daemons.filter((d) => !kills.has(d.pid))
    for (let i = 0; i < 3; i++) daemons.push(startDaemon(args, dir, env))
    const deadline = Date.now() + CHAOS_SECONDS * 1000
    let killed = 0
    while ((await count(storage, 'taskd_task_archive')) < CHAOS_TASKS) {
      expect(Date.now(), 'chaos run took too long').toBeLessThan(deadline)
      await new Promise((resolve) => setTimeout(resolve, 700 + Math.random() * 600))
      const victims = live()
      const victim = victims[Math.floor(Math.random() * victims.length)]
      kills.set(victim.pid, Date.now())
      victim.child.kill('SIGKILL')
      killed++
      daemons.push(startDaemon(args, dir, env))
    }
    for (const d of live()) d.child.kill('SIGTERM')
    await Promise.all(live().map((d) => d.exited))

    // Every task archived as success exactly once; nothing left in the queue.
    expect(await count(storage, 'taskd_tasks')).toBe(0)
    const archived = await storage.db.selectFrom('taskd_task_archive').select(['id', 'result', 'data']).execute()
    expect(archived).toHaveLength(CHAOS_TASKS)
    expect(archived.every((r) => Number(r.result) === 0)).toBe(true)
    expect(new Set(archived.map((r) => (JSON.parse(r.data) as {n: number}).n)).size).toBe(CHAOS_TASKS)

    // No two executions of one task overlap: a finished run ends before the next starts; a run cut
    // short by SIGKILL ended at the kill, and the next run of that task started after it.
    const {rows} = await sql<{task_id: number; pid: number; started_ms: number; ended_ms: number | null}>`select task_id, pid, started_ms, ended_ms from exec_log order by task_id, started_ms, id`.execute(storage.db)
    const byTask = new Map<number, typeof rows>()
    for (const row of rows) byTask.set(Number(row.task_id), [...(byTask.get(Number(row.task_id)) ?? []), row])
    expect(byTask.size).toBe(CHAOS_TASKS)
    let rerun = 0
    for (const [task, runs] of byTask) {
      for (let i = 1; i < runs.length; i++) {
        const previous = runs[i - 1]
        const end = previous.ended_ms === null ? kills.get(Number(previous.pid)) : Number(previous.ended_ms)
        expect(end, `task ${task}: unfinished run by pid ${previous.pid}, which was never killed`).toBeDefined()
        expect(Number(runs[i].started_ms), `task ${task}: runs overlap`).toBeGreaterThanOrEqual(end!)
        rerun++
      }
      // A run that never finished belongs to a killed daemon.
      for (const r of runs) if (r.ended_ms === null) expect(kills.has(Number(r.pid))).toBe(true)
    }
    expect(killed).toBeGreaterThan(0)
    console.log(`chaos: ${CHAOS_TASKS} tasks, ${killed} daemons killed, ${rerun} re-runs after a kill or a lost acknowledgement`)
  })
})

describe.skipIf(mysql.skip)('MariaDB connection loss: KILL CONNECTION during a drain', () => {
  let storage: Storage
  let database: TestDatabase
  let cleanup: () => Promise<void>
  let dir: string

  beforeAll(async () => {
    ;({storage, database, cleanup} = await openTestStorage('mysql'))
    dir = mkdtempSync(path.join(os.tmpdir(), 'taskd-killconn-'))
  })
  afterAll(async () => {
    await cleanup()
    rmSync(dir, {recursive: true, force: true})
  })

  it('logs, reconnects, keeps running and finishes the drain with nothing lost', {timeout: 120_000}, async () => {
    const total = 3000
    await enqueueTasks(storage, Array.from({length: total}, (_, n) => ({taskClass: 'taskd.sleep', data: {ms: 1 + (n % 3)}})))
    const daemon = startDaemon(['--database', database.url, '--concurrency', '16', '--lease-seconds', '5', '--poll-max', '100ms', '--until-idle', '--log-format', 'json'], dir)
    const url = new URL(database.url)
    const admin = await createConnection({host: url.hostname, port: Number(url.port), user: url.username || 'root', password: decodeURIComponent(url.password)})
    let kills = 0
    let done = false
    void daemon.exited.then(() => (done = true))
    // Startup (schema check, registration) is a supervisor's business; the drain is what is tested.
    await until(() => daemon.output.includes('daemon started') || done, {what: 'the daemon to start'})
    try {
      while (!done) {
        const [list] = await admin.query('select id from information_schema.processlist where db = ? and id <> connection_id()', [url.pathname.slice(1)])
        for (const {id} of list as {id: number}[]) {
          // Only the daemon's connections: the test's own storage keeps working.
          await admin.query(`kill connection ${Number(id)}`).catch(() => undefined)
          kills++
        }
        if ((await count(storage, 'taskd_task_archive').catch(() => 0)) >= total) break
        await new Promise((resolve) => setTimeout(resolve, 150))
      }
    } finally {
      await admin.end()
    }
    const code = await daemon.exited
    // The test's own pool lost connections too; a fresh handle reads the result.
    const reader = await Storage.open(database.url)
    try {
      expect(code, daemon.output.slice(-2000)).toBe(0)
      expect(kills).toBeGreaterThan(0)
      expect(await count(reader, 'taskd_tasks')).toBe(0)
      const archived = await reader.db.selectFrom('taskd_task_archive').select(['result']).execute()
      expect(archived).toHaveLength(total)
      expect(archived.every((r) => Number(r.result) === 0)).toBe(true)
      expect(daemon.output).toMatch(/failed|lost|closed/i)
    } finally {
      await reader.close()
    }
  })
})

function runCli(args: string[], cwd: string): Promise<{code: number | null; output: string}> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin/run.js'), ...args], {
      cwd,
      env: {...process.env, NODE_ENV: 'production', TASKD_SKIP_NEW_VERSION_CHECK: 'true'},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()))
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()))
    child.on('exit', (code) => resolve({code, output}))
  })
}

describe.skipIf(mysql.skip)('4 daemons and operator commands racing on the same rows (MariaDB)', () => {
  let storage: Storage
  let database: TestDatabase
  let cleanup: () => Promise<void>
  let dir: string

  beforeAll(async () => {
    ;({storage, database, cleanup} = await openTestStorage('mysql'))
    dir = mkdtempSync(path.join(os.tmpdir(), 'taskd-race-'))
    // A flaky class (fails half the time, retried at once, 2 retries) keeps rows moving between states.
    writeFileSync(
      path.join(dir, 'taskd.config.mjs'),
      `export default {handlers: {'app.flaky': {retryWaitSeconds: 0, maxRetries: 2, run: async () => { await new Promise((r) => setTimeout(r, 5)); if (Math.random() < 0.5) throw new Error('flaky') }}}}\n`,
    )
  })
  afterAll(async () => {
    await cleanup()
    rmSync(dir, {recursive: true, force: true})
  })

  it('no command crashes on a deadlock and no row ends in an impossible state', {timeout: 300_000}, async () => {
    const total = 1500
    await enqueueTasks(storage, Array.from({length: total}, (_, n) => ({taskClass: n % 3 === 0 ? 'taskd.sleep' : 'app.flaky', data: {ms: 20}})))
    const db = ['--database', database.url]
    const daemons = Array.from({length: 4}, () => startDaemon([...db, '--concurrency', '4', '--lease-seconds', '3', '--poll-max', '50ms', '--grace', '1s'], dir))
    const operations = [
      ['tasks', 'retry', '--all'],
      ['tasks', 'cancel', '--class', 'taskd.sleep', '--limit', '20'],
      ['tasks', 'free', '--all'],
      ['tasks', 'priority', 'alerts', '--class', 'app.flaky', '--limit', '50'],
      ['tasks', 'delay', '0s', '--all'],
    ]
    const results: {args: string[]; code: number | null; output: string}[] = []
    // Each operation three times over, all five at once, while the daemons work the same rows.
    await Promise.all(
      operations.map(async (args) => {
        for (let round = 0; round < 3; round++) results.push({args, ...(await runCli([...args, ...db, '--json'], dir))})
      }),
    )
    for (const d of daemons) d.child.kill('SIGTERM')
    const codes = await Promise.all(daemons.map((d) => d.exited))
    expect(codes).toEqual([0, 0, 0, 0])
    const crashed = results.filter((r) => r.code !== 0)
    expect(crashed.map((r) => `${r.args.join(' ')} → ${r.code}: ${r.output.slice(0, 300)}`)).toEqual([])
    expect(results).toHaveLength(operations.length * 3)

    // Invariants: every task is in exactly one table, once; leases are whole; results are known.
    const active = await storage.db.selectFrom('taskd_tasks').select(['id', 'lease_owner', 'lease_expires', 'failure_count']).execute()
    const archived = await storage.db.selectFrom('taskd_task_archive').select(['id', 'result']).execute()
    const ids = [...active.map((r) => Number(r.id)), ...archived.map((r) => Number(r.id))]
    expect(ids).toHaveLength(total)
    expect(new Set(ids).size).toBe(total)
    expect(active.filter((r) => (r.lease_owner === null) !== (r.lease_expires === null))).toEqual([])
    expect(active.filter((r) => Number(r.failure_count) < 0)).toEqual([])
    expect(archived.filter((r) => ![0, 1, 2].includes(Number(r.result)))).toEqual([])
  })
})

describe('SQLite: another writer holding the lock does not crash the daemon', () => {
  let storage: Storage
  let database: TestDatabase
  let cleanup: () => Promise<void>

  beforeAll(async () => {
    ;({storage, database, cleanup} = await openTestStorage('sqlite'))
  })
  afterAll(async () => cleanup())

  it('waits (busy timeout), then drains everything', async () => {
    await enqueueTasks(storage, Array.from({length: 500}, () => ({taskClass: 'taskd.noop'})))
    const file = database.url.slice('sqlite:'.length)
    const writer = new Database(file)
    writer.pragma('busy_timeout = 10000')
    writer.exec('begin immediate')
    const daemon = startDaemon(['--database', database.url, '--until-idle', '--concurrency', '8'], path.dirname(file))
    // Hold the write lock for a while: the daemon's registration and every lease attempt have to wait.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect(daemon.child.exitCode).toBeNull()
    writer.exec('commit')
    writer.close()
    const code = await daemon.exited
    expect(code, daemon.output).toBe(0)
    expect(await count(storage, 'taskd_task_archive')).toBe(500)
  })
})
