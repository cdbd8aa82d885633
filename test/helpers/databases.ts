import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {createConnection} from 'mysql2/promise'

import {migrateToLatest} from '../../src/storage/migrations.js'
import {Storage} from '../../src/storage/storage.js'

/** The MariaDB server the tests use; each test file works in a database of its own. */
export const MYSQL_URL = process.env.TASKD_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test'

async function probeMysql(): Promise<string | null> {
  const url = new URL(MYSQL_URL)
  try {
    const conn = await createConnection({host: url.hostname, port: Number(url.port || 3306), user: decodeURIComponent(url.username || 'root'), password: decodeURIComponent(url.password), connectTimeout: 3000})
    await conn.end()
    return null
  } catch (error) {
    return (error as Error).message
  }
}

const mysqlProblem = await probeMysql()
if (mysqlProblem) {
  if (process.env.CI === 'true') throw new Error(`CI=true but MariaDB at ${MYSQL_URL} is unreachable (${mysqlProblem}): the MySQL half of the suite cannot be skipped in CI`)
  console.warn(`\n!!!!!!!!\n!!! MariaDB at ${MYSQL_URL} is unreachable (${mysqlProblem}): SKIPPING every MySQL test. Set TASKD_TEST_MYSQL_URL or start MariaDB.\n!!!!!!!!\n`)
}

export interface TestDatabase {
  dialect: 'sqlite' | 'mysql'
  url: string
  /** Drops the database (MySQL) or deletes the file (SQLite). */
  drop(): Promise<void>
}

/** A fresh, empty database of the given dialect (no schema yet). */
export async function createTestDatabase(dialect: 'sqlite' | 'mysql'): Promise<TestDatabase> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'taskd-test-'))
    return {dialect, url: `sqlite:${path.join(dir, 'taskd.sqlite')}`, drop: async () => rmSync(dir, {recursive: true, force: true})}
  }
  const server = new URL(MYSQL_URL)
  const name = `taskd_t_${process.pid}_${Math.random().toString(36).slice(2, 8)}`
  const connect = () =>
    createConnection({host: server.hostname, port: Number(server.port || 3306), user: decodeURIComponent(server.username || 'root'), password: decodeURIComponent(server.password)})
  const conn = await connect()
  await conn.query(`CREATE DATABASE \`${name}\``)
  await conn.end()
  const url = `mysql://${server.username || 'root'}${server.password ? ':' + server.password : ''}@${server.hostname}:${server.port || 3306}/${name}`
  return {
    dialect,
    url,
    drop: async () => {
      const c = await connect()
      await c.query(`DROP DATABASE IF EXISTS \`${name}\``)
      await c.end()
    },
  }
}

export interface DialectCase {
  name: 'sqlite' | 'mysql'
  skip: boolean
}

/** Both dialects, for `describe.each(DIALECTS)`; the MySQL one is skipped (loudly) only outside CI. */
export const DIALECTS: DialectCase[] = [
  {name: 'sqlite', skip: false},
  {name: 'mysql', skip: mysqlProblem !== null},
]

/** Opens a migrated Storage on a fresh database; call `cleanup` in afterAll/afterEach. */
export async function openTestStorage(dialect: 'sqlite' | 'mysql'): Promise<{storage: Storage; database: TestDatabase; cleanup(): Promise<void>}> {
  const database = await createTestDatabase(dialect)
  const storage = await Storage.open(database.url)
  await migrateToLatest(storage)
  return {
    storage,
    database,
    cleanup: async () => {
      await storage.close()
      await database.drop()
    },
  }
}

/** Waits for a condition instead of sleeping blindly. */
export async function until<T>(probe: () => Promise<T> | T, options: {timeoutMs?: number; intervalMs?: number; what?: string} = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000)
  for (;;) {
    const value = await probe()
    if (value) return value as NonNullable<T>
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what ?? 'condition'}`)
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 25))
  }
}
