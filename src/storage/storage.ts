import {mkdirSync} from 'node:fs'
import path from 'node:path'

import Database from 'better-sqlite3'
import {CompiledQuery, Kysely, MysqlDialect, SqliteAdapter, SqliteDialect, SqliteDriver, sql, type DatabaseConnection} from 'kysely'
import {createPool} from 'mysql2'

import {TaskdError} from '../core/errors.js'
import {MYSQL, SQLITE, type DialectProfile} from './dialect.js'
import type {TaskdSchema} from './schema.js'
import {parseDatabaseUrl, type DatabaseTarget} from './url.js'

/** SQLite has one writer: take the write lock when the transaction starts, so select-then-update is atomic. */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'))
  }
}

/**
 * kysely's SQLite adapter says DDL is not transactional, so its Migrator would take no lock and run
 * migrations outside a transaction: two processes migrating a fresh file then race. SQLite DDL is
 * transactional; saying so makes the Migrator run in one BEGIN IMMEDIATE, which serialises processes.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly database: Database.Database) {
    super({database})
  }

  override createDriver() {
    return new ImmediateSqliteDriver({database: this.database})
  }

  override createAdapter() {
    return new TransactionalDdlSqliteAdapter()
  }
}

const MAX_TRANSACTION_ATTEMPTS = 8
const STATEMENT_CACHE_SIZE = 256

/**
 * kysely's SQLite driver prepares every statement anew, and preparing is a third of the daemon's CPU
 * on SQLite. The hot statements repeat (same SQL text, new parameters): reuse them, least recently
 * prepared first out.
 */
function withStatementCache(database: Database.Database): Database.Database {
  const cache = new Map<string, Database.Statement>()
  const prepare = (source: string): Database.Statement => {
    let statement = cache.get(source)
    if (statement) {
      cache.delete(source)
    } else {
      statement = database.prepare(source)
      if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!)
    }
    cache.set(source, statement)
    return statement
  }
  return new Proxy(database, {
    get(target, property) {
      if (property === 'prepare') return prepare
      const value = Reflect.get(target, property, target) as unknown
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

/**
 * The storage port every generator, command and the daemon use: a kysely handle (possibly a
 * transaction), the dialect's capabilities, and the database clock.
 */
export class Storage {
  private constructor(
    readonly db: Kysely<TaskdSchema>,
    readonly dialect: DialectProfile,
    readonly target: DatabaseTarget,
    private readonly clock: {offsetSeconds: number},
  ) {}

  static async open(urlOrTarget: string | DatabaseTarget): Promise<Storage> {
    const target = typeof urlOrTarget === 'string' ? parseDatabaseUrl(urlOrTarget) : urlOrTarget
    if (target.kind === 'sqlite') {
      if (target.path !== ':memory:') mkdirSync(path.dirname(target.path), {recursive: true})
      let database: Database.Database
      try {
        database = new Database(target.path)
        database.pragma('journal_mode = WAL')
        database.pragma('busy_timeout = 10000')
        database.pragma('synchronous = NORMAL')
      } catch (error) {
        throw new TaskdError('E_DB_UNREACHABLE', `cannot open SQLite database ${target.path}: ${(error as Error).message}`, {cause: error})
      }
      const db = new Kysely<TaskdSchema>({dialect: new ImmediateSqliteDialect(withStatementCache(database))})
      return new Storage(db, SQLITE, target, {offsetSeconds: 0})
    }
    const pool = createPool({
      host: target.host,
      port: target.port,
      user: target.user,
      password: target.password,
      database: target.database,
      connectionLimit: 10,
      dateStrings: true,
      supportBigNumbers: true,
      connectTimeout: 5000,
    })
    // mysql2's pool type and kysely's MysqlPool differ only in overload signatures.
    const db = new Kysely<TaskdSchema>({dialect: new MysqlDialect({pool: pool as never})})
    const storage = new Storage(db, MYSQL, target, {offsetSeconds: 0})
    try {
      await storage.syncClock()
    } catch (error) {
      await db.destroy().catch(() => {})
      throw describeConnectError(target, error)
    }
    return storage
  }

  /** Current epoch seconds on the database's clock (local clock plus the offset measured at connect). */
  now(): number {
    return Math.floor(this.nowPrecise())
  }

  nowPrecise(): number {
    return Date.now() / 1000 + this.clock.offsetSeconds
  }

  /** Measures the offset between the local clock and the database's, so every daemon shares one clock. */
  async syncClock(): Promise<void> {
    if (!this.dialect.serverClock) return
    const before = Date.now()
    const {rows} = await sql<{t: string}>`select unix_timestamp(now(6)) as t`.execute(this.db)
    const local = (before + Date.now()) / 2000
    this.clock.offsetSeconds = Number(rows[0].t) - local
  }

  get inTransaction(): boolean {
    return this.db.isTransaction
  }

  /**
   * Runs fn in a transaction (or inside the current one). A deadlock, lock wait timeout or busy
   * database retries the whole transaction with a short jittered backoff: normal control flow on InnoDB.
   */
  async transaction<T>(fn: (storage: Storage) => Promise<T>): Promise<T> {
    if (this.db.isTransaction) return fn(this)
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.transaction().execute((trx) => fn(new Storage(trx, this.dialect, this.target, this.clock)))
      } catch (error) {
        if (attempt >= MAX_TRANSACTION_ATTEMPTS || !this.dialect.isRetryable(error)) throw error
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * 2 ** attempt))
      }
    }
  }

  async close(): Promise<void> {
    if (!this.db.isTransaction) await this.db.destroy()
  }
}

function describeConnectError(target: Extract<DatabaseTarget, {kind: 'mysql'}>, error: unknown): TaskdError {
  const code = (error as {code?: string}).code ?? 'error'
  const where = `${target.host}:${target.port}`
  let message: string
  if (code === 'ER_ACCESS_DENIED_ERROR') message = `MySQL at ${where} refused user '${target.user}' (${code}): check the user and password in the database URL`
  else if (code === 'ER_BAD_DB_ERROR') message = `database '${target.database}' does not exist on ${where}: create it (CREATE DATABASE \`${target.database}\`) or fix the URL`
  else message = `cannot reach MySQL at ${where} (${code}): check that the server is running and the host and port are right`
  return new TaskdError('E_DB_UNREACHABLE', message, {cause: error})
}
