import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import Database from 'better-sqlite3'
import {createConnection, type Connection, type RowDataPacket} from 'mysql2/promise'

import {migrateToLatest} from '../src/storage/migrations.js'
import {Storage} from '../src/storage/storage.js'
import type {Dialect} from './options.js'

/** A raw driver handle on the bench database, for ceilings and fast fills (no kysely, no taskd). */
export type RawHandle = {kind: 'sqlite'; db: Database.Database} | {kind: 'mysql'; conn: Connection}

/** One scratch database for one dialect: taskd's Storage on it, and a raw driver handle beside it. */
export interface BenchDatabase {
  dialect: Dialect
  /** taskd database URL (for child processes). */
  url: string
  storage: Storage
  raw: RawHandle
  /** Empties the task, archive and daemon tables. */
  reset(): Promise<void>
  /** Adds `count` ready `taskd.noop` tasks quickly (server-side generation, not enqueueTasks). */
  fillTasks(count: number): Promise<void>
  /** Adds `count` archive rows archived over the day up to `archivedAt` (epoch seconds). */
  fillArchive(count: number, archivedAt: number): Promise<void>
  count(table: 'taskd_tasks' | 'taskd_task_archive'): Promise<number>
  /** Whether any task row is left (cheap: one index probe). */
  hasTasks(): Promise<boolean>
  /** Closes every handle and drops the database (MySQL) or deletes its directory (SQLite). */
  drop(): Promise<void>
}

/** The same pragmas taskd's Storage sets, so the raw ceiling runs on equal terms. */
export function openRawSqlite(file: string): Database.Database {
  const db = new Database(file)
  db.pragma('journal_mode = WAL')
  db.pragma('busy_timeout = 10000')
  db.pragma('synchronous = NORMAL')
  return db
}

interface ServerAddress {
  host: string
  port: number
  user: string
  password: string
}

function serverAddress(url: string): ServerAddress {
  const parsed = new URL(url)
  return {host: parsed.hostname, port: Number(parsed.port || 3306), user: decodeURIComponent(parsed.username || 'root'), password: decodeURIComponent(parsed.password)}
}

export function connectRawMysql(server: ServerAddress, database?: string): Promise<Connection> {
  return createConnection({...server, database, connectTimeout: 3000, supportBigNumbers: true, multipleStatements: false})
}

/** Why MariaDB cannot be used, or null when it can. */
export async function probeMysql(serverUrl: string): Promise<string | null> {
  try {
    const conn = await connectRawMysql(serverAddress(serverUrl))
    await conn.end()
    return null
  } catch (error) {
    return (error as Error).message
  }
}

/** MariaDB's SEQUENCE engine (seq_1_to_N) generates rows server-side; ids go in chunks so a statement stays moderate. */
const MYSQL_FILL_CHUNK = 100_000

export async function createBenchDatabase(dialect: Dialect, mysqlServerUrl: string): Promise<BenchDatabase> {
  const now = () => Math.floor(Date.now() / 1000)
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'taskd-bench-'))
    const file = path.join(dir, 'bench.sqlite')
    const url = `sqlite:${file}`
    const storage = await Storage.open(url)
    await migrateToLatest(storage)
    const db = openRawSqlite(file)
    const fillTasks = db.prepare(`with recursive s(n) as (select 1 union all select n + 1 from s where n < ?)
      insert into taskd_tasks (task_class, priority, data, available_at, created_at)
      select 'taskd.noop', 2000, '{"n":' || n || '}', ?, ? from s`)
    const fillArchive = db.prepare(`with recursive s(n) as (select 1 union all select n + 1 from s where n < ?)
      insert into taskd_task_archive (id, task_class, priority, data, attempts, failure_count, result, duration_us, created_at, archived_at)
      select ? + n, 'taskd.noop', 2000, '{"n":' || n || '}', 1, 0, 0, 10, ?, ? - (n % 86400) from s`)
    return {
      dialect,
      url,
      storage,
      raw: {kind: 'sqlite', db},
      reset: async () => {
        db.exec('delete from taskd_tasks; delete from taskd_task_archive; delete from taskd_daemons;')
        db.pragma('wal_checkpoint(TRUNCATE)')
      },
      fillTasks: async (count) => {
        const t = now()
        fillTasks.run(count, t - 1, t)
      },
      fillArchive: async (count, archivedAt) => {
        const max = (db.prepare('select coalesce(max(id), 0) as m from taskd_task_archive').get() as {m: number}).m
        fillArchive.run(count, max, archivedAt - 86_400, archivedAt)
      },
      count: async (table) => (db.prepare(`select count(*) as n from ${table}`).get() as {n: number}).n,
      hasTasks: async () => db.prepare('select 1 from taskd_tasks limit 1').get() !== undefined,
      drop: async () => {
        db.close()
        await storage.close()
        rmSync(dir, {recursive: true, force: true})
      },
    }
  }
  const server = serverAddress(mysqlServerUrl)
  const name = `taskd_bench_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
  const admin = await connectRawMysql(server)
  await admin.query(`CREATE DATABASE \`${name}\``)
  await admin.end()
  const credentials = `${encodeURIComponent(server.user)}${server.password ? ':' + encodeURIComponent(server.password) : ''}`
  const url = `mysql://${credentials}@${server.host}:${server.port}/${name}`
  let storage: Storage
  let conn: Connection
  try {
    storage = await Storage.open(url)
    await migrateToLatest(storage)
    conn = await connectRawMysql(server, name)
  } catch (error) {
    const cleanup = await connectRawMysql(server)
    await cleanup.query(`DROP DATABASE IF EXISTS \`${name}\``)
    await cleanup.end()
    throw error
  }
  return {
    dialect,
    url,
    storage,
    raw: {kind: 'mysql', conn},
    reset: async () => {
      for (const table of ['taskd_tasks', 'taskd_task_archive', 'taskd_daemons']) await conn.query(`TRUNCATE TABLE ${table}`)
    },
    fillTasks: async (count) => {
      const t = now()
      for (let done = 0; done < count; done += MYSQL_FILL_CHUNK) {
        const n = Math.min(MYSQL_FILL_CHUNK, count - done)
        await conn.query(
          `INSERT INTO taskd_tasks (task_class, priority, data, available_at, created_at)
           SELECT 'taskd.noop', 2000, CONCAT('{"n":', seq, '}'), ?, ? FROM seq_1_to_${n}`,
          [t - 1, t],
        )
      }
    },
    fillArchive: async (count, archivedAt) => {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT COALESCE(MAX(id), 0) AS m FROM taskd_task_archive')
      let base = Number(rows[0].m)
      for (let done = 0; done < count; done += MYSQL_FILL_CHUNK) {
        const n = Math.min(MYSQL_FILL_CHUNK, count - done)
        await conn.query(
          `INSERT INTO taskd_task_archive (id, task_class, priority, data, attempts, failure_count, result, duration_us, created_at, archived_at)
           SELECT ? + seq, 'taskd.noop', 2000, CONCAT('{"n":', seq, '}'), 1, 0, 0, 10, ?, ? - (seq % 86400) FROM seq_1_to_${n}`,
          [base, archivedAt - 86_400, archivedAt],
        )
        base += n
      }
    },
    count: async (table) => {
      const [rows] = await conn.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${table}`)
      return Number(rows[0].n)
    },
    hasTasks: async () => {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT 1 FROM taskd_tasks LIMIT 1')
      return rows.length > 0
    },
    drop: async () => {
      await conn.end().catch(() => undefined)
      await storage.close().catch(() => undefined)
      const cleanup = await connectRawMysql(server)
      await cleanup.query(`DROP DATABASE IF EXISTS \`${name}\``)
      await cleanup.end()
    },
  }
}
