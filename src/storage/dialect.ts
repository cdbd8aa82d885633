import {sql, type RawBuilder} from 'kysely'

/**
 * Every difference between SQLite and MySQL/MariaDB lives here, as capability flags and small values.
 * Code elsewhere asks "does this dialect have row locks?", never "is this MySQL?".
 */
export interface DialectProfile {
  readonly name: 'sqlite' | 'mysql'
  /**
   * `SELECT … FOR UPDATE SKIP LOCKED` exists (MySQL 8, MariaDB 10.6+). Without it (SQLite) every
   * transaction is `BEGIN IMMEDIATE`, so the single writer makes select-then-update atomic anyway.
   */
  readonly rowLocks: boolean
  /** Column type of an auto-increment primary key (SQLite needs exactly INTEGER for AUTOINCREMENT). */
  readonly autoIdType: 'integer' | 'bigint'
  /** A text column that holds large JSON payloads. */
  readonly largeText: RawBuilder<unknown>
  /** Appended to CREATE TABLE. */
  readonly tableOptions: RawBuilder<unknown> | null
  /** Errors that mean "try the whole transaction again": deadlocks, lock wait timeouts, a busy database. */
  isRetryable(error: unknown): boolean
  /** Errors that mean the connection to the server is gone (the pool reconnects on the next query). */
  isConnectionLoss(error: unknown): boolean
  /** One clock for every process: a server's clock is read at connect (SQLite's is the local one). */
  readonly serverClock: boolean
  /** The schema may be created on demand by any command (an embedded file has no operator to ask). */
  readonly autoMigrate: boolean
  /** A primary-key or unique-key collision. */
  isDuplicateKey(error: unknown): boolean
}

const errorCode = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error ? String((error as {code: unknown}).code) : undefined

export const SQLITE: DialectProfile = {
  name: 'sqlite',
  rowLocks: false,
  serverClock: false,
  autoMigrate: true,
  autoIdType: 'integer',
  largeText: sql`text`,
  tableOptions: null,
  isRetryable: (error) => ['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED'].includes(errorCode(error) ?? ''),
  isConnectionLoss: () => false,
  isDuplicateKey: (error) => ['SQLITE_CONSTRAINT_PRIMARYKEY', 'SQLITE_CONSTRAINT_UNIQUE'].includes(errorCode(error) ?? ''),
}

export const MYSQL: DialectProfile = {
  name: 'mysql',
  rowLocks: true,
  serverClock: true,
  autoMigrate: false,
  autoIdType: 'bigint',
  largeText: sql`longtext`,
  tableOptions: sql`ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
  isRetryable: (error) => ['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT'].includes(errorCode(error) ?? ''),
  isConnectionLoss: (error) =>
    [
      'PROTOCOL_CONNECTION_LOST',
      'ECONNRESET',
      'ECONNREFUSED',
      'EPIPE',
      'ETIMEDOUT',
      'ER_SERVER_SHUTDOWN',
      'ER_CONNECTION_KILLED',
      'ER_QUERY_INTERRUPTED',
      'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
    ].includes(errorCode(error) ?? '') || /closed state|Connection lost/i.test(String((error as Error)?.message ?? '')),
  isDuplicateKey: (error) => errorCode(error) === 'ER_DUP_ENTRY',
}
