import {Migrator, sql, type Kysely, type Migration} from 'kysely'

import {TaskdError} from '../core/errors.js'
import type {DialectProfile} from './dialect.js'
import type {Storage} from './storage.js'

/**
 * Migrations are bundled in code (a packed CLI must not read a folder at run time) and written once
 * for both dialects; the few type differences come from the DialectProfile.
 */
function buildMigrations(d: DialectProfile): Record<string, Migration> {
  // kysely's builder is typed against a schema; migrations run before that schema exists.
  type AnyDb = Kysely<unknown>
  const table = (db: AnyDb, name: string) => {
    const builder = db.schema.createTable(name)
    return d.tableOptions ? builder.modifyEnd(sql` ${d.tableOptions}`) : builder
  }
  return {
    '0001_init': {
      async up(db: AnyDb) {
        await table(db, 'taskd_tasks')
          .addColumn('id', d.autoIdType, (c) => c.primaryKey().autoIncrement())
          .addColumn('task_class', 'varchar(191)', (c) => c.notNull())
          .addColumn('priority', 'integer', (c) => c.notNull())
          .addColumn('data', d.largeText, (c) => c.notNull())
          .addColumn('object_ref', 'varchar(191)')
          .addColumn('container_ref', 'varchar(191)')
          .addColumn('available_at', 'bigint', (c) => c.notNull())
          .addColumn('lease_owner', 'varchar(64)')
          .addColumn('lease_expires', 'bigint')
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('failure_count', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('failure_time', 'bigint')
          .addColumn('last_error', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('legacy_id', 'bigint')
          .execute()
        // The lease query: unleased rows by priority then id, filtered on available_at; covering.
        await db.schema.createIndex('taskd_tasks_ready').on('taskd_tasks').columns(['lease_owner', 'priority', 'id', 'available_at']).execute()
        // The second lease phase and the rescuer: leases by expiry.
        await db.schema.createIndex('taskd_tasks_expires').on('taskd_tasks').columns(['lease_expires']).execute()
        await db.schema.createIndex('taskd_tasks_class').on('taskd_tasks').columns(['task_class']).execute()
        await db.schema.createIndex('taskd_tasks_object').on('taskd_tasks').columns(['object_ref']).execute()
        await db.schema.createIndex('taskd_tasks_container').on('taskd_tasks').columns(['container_ref']).execute()
        await db.schema.createIndex('taskd_tasks_legacy').on('taskd_tasks').columns(['legacy_id']).execute()

        await table(db, 'taskd_task_archive')
          .addColumn('id', 'bigint', (c) => c.primaryKey())
          .addColumn('task_class', 'varchar(191)', (c) => c.notNull())
          .addColumn('priority', 'integer', (c) => c.notNull())
          .addColumn('data', d.largeText, (c) => c.notNull())
          .addColumn('object_ref', 'varchar(191)')
          .addColumn('container_ref', 'varchar(191)')
          .addColumn('attempts', 'integer', (c) => c.notNull())
          .addColumn('failure_count', 'integer', (c) => c.notNull())
          .addColumn('result', 'integer', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('duration_us', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('archived_at', 'bigint', (c) => c.notNull())
          .addColumn('legacy_id', 'bigint')
          .execute()
        await db.schema.createIndex('taskd_archive_archived').on('taskd_task_archive').columns(['archived_at']).execute()
        await db.schema.createIndex('taskd_archive_class').on('taskd_task_archive').columns(['task_class']).execute()
        await db.schema.createIndex('taskd_archive_legacy').on('taskd_task_archive').columns(['legacy_id']).execute()

        await table(db, 'taskd_generator_state')
          .addColumn('generator', 'varchar(64)', (c) => c.notNull())
          .addColumn('state_key', 'varchar(191)', (c) => c.notNull().defaultTo(''))
          .addColumn('cursor', 'text')
          .addColumn('cursor_version', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_run_at', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('backoff_seconds', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('run_owner', 'varchar(64)')
          .addColumn('run_expires', 'bigint')
          .addColumn('last_run_at', 'bigint')
          .addColumn('last_count', 'integer')
          .addColumn('total_count', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('error_streak', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('last_error', 'text')
          .addColumn('paused', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('taskd_generator_state_pk', ['generator', 'state_key'])
          .execute()

        await table(db, 'taskd_daemons')
          .addColumn('id', 'varchar(64)', (c) => c.primaryKey())
          .addColumn('host', 'varchar(255)', (c) => c.notNull())
          .addColumn('pid', 'integer', (c) => c.notNull())
          .addColumn('started_at', 'bigint', (c) => c.notNull())
          .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
          .addColumn('concurrency', 'integer', (c) => c.notNull())
          .addColumn('status', 'varchar(16)', (c) => c.notNull())
          .addColumn('generators', 'text', (c) => c.notNull())
          .addColumn('running', d.largeText, (c) => c.notNull())
          .execute()
        await db.schema.createIndex('taskd_daemons_heartbeat').on('taskd_daemons').columns(['heartbeat_at']).execute()

        await table(db, 'taskd_gc_policies')
          .addColumn('collector', 'varchar(64)', (c) => c.primaryKey())
          .addColumn('retention_seconds', 'bigint')
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute()
      },
      async down(db: AnyDb) {
        for (const name of ['taskd_gc_policies', 'taskd_daemons', 'taskd_generator_state', 'taskd_task_archive', 'taskd_tasks']) {
          await db.schema.dropTable(name).ifExists().execute()
        }
      },
    },
    '0002_webhooks': {
      async up(db: AnyDb) {
        await table(db, 'taskd_webhooks')
          .addColumn('id', d.autoIdType, (c) => c.primaryKey().autoIncrement())
          .addColumn('name', 'varchar(191)', (c) => c.notNull())
          .addColumn('url', 'text', (c) => c.notNull())
          .addColumn('secret', 'varchar(191)', (c) => c.notNull())
          .addColumn('status', 'varchar(16)', (c) => c.notNull())
          .addColumn('events', 'text', (c) => c.notNull())
          .addColumn('paused_until', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('disabled_reason', 'text')
          .addColumn('lease_owner', 'varchar(64)')
          .addColumn('lease_expires', 'bigint')
          .addColumn('lease_request_id', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('legacy_id', 'bigint')
          .execute()
        await db.schema.createIndex('taskd_webhooks_status').on('taskd_webhooks').columns(['status']).execute()
        await db.schema.createIndex('taskd_webhooks_legacy').on('taskd_webhooks').columns(['legacy_id']).execute()

        await table(db, 'taskd_webhook_requests')
          .addColumn('id', d.autoIdType, (c) => c.primaryKey().autoIncrement())
          .addColumn('hook_id', 'bigint', (c) => c.notNull())
          .addColumn('event_type', 'varchar(191)', (c) => c.notNull())
          .addColumn('object_ref', 'varchar(191)')
          .addColumn('payload', d.largeText, (c) => c.notNull())
          .addColumn('status', 'varchar(16)', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
          .addColumn('last_attempt_at', 'bigint')
          .addColumn('last_error_type', 'varchar(32)')
          .addColumn('last_error_code', 'varchar(32)')
          .addColumn('last_error_message', 'text')
          .addColumn('response_status', 'integer')
          .addColumn('response_body', 'text')
          .addColumn('is_test', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('sent_at', 'bigint')
          .addColumn('legacy_id', 'bigint')
          .execute()
        // Operator filters (requests --status, purge) by status, oldest first.
        await db.schema.createIndex('taskd_webhook_requests_status').on('taskd_webhook_requests').columns(['status', 'id']).execute()
        // Per hook, the earliest due queued request: (hook, status, next_attempt_at, id) is a range scan.
        await db.schema.createIndex('taskd_webhook_requests_hook').on('taskd_webhook_requests').columns(['hook_id', 'status', 'next_attempt_at', 'id']).execute()
        // The error backoff count: a hook's recent failed attempts.
        await db.schema.createIndex('taskd_webhook_requests_attempt').on('taskd_webhook_requests').columns(['hook_id', 'last_attempt_at']).execute()
        await db.schema.createIndex('taskd_webhook_requests_created').on('taskd_webhook_requests').columns(['created_at']).execute()
        await db.schema.createIndex('taskd_webhook_requests_legacy').on('taskd_webhook_requests').columns(['legacy_id']).execute()
      },
      async down(db: AnyDb) {
        await db.schema.dropTable('taskd_webhook_requests').ifExists().execute()
        await db.schema.dropTable('taskd_webhooks').ifExists().execute()
      },
    },
    '0003_legacy_imports': {
      // What `taskd migrate legacy` imported: one row per source row (source table + legacy id), so
      // a rerun skips it and an interrupted run resumes. Written in the same transaction as the rows.
      async up(db: AnyDb) {
        await table(db, 'taskd_legacy_imports')
          .addColumn('source_table', 'varchar(128)', (c) => c.notNull())
          .addColumn('legacy_id', 'bigint', (c) => c.notNull())
          .addColumn('legacy_phid', 'varchar(64)')
          .addColumn('outcome', 'varchar(16)', (c) => c.notNull())
          .addColumn('target_table', 'varchar(64)')
          .addColumn('target_id', 'bigint')
          .addColumn('detail', 'text')
          .addColumn('imported_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('taskd_legacy_imports_pk', ['source_table', 'legacy_id'])
          .execute()
        await db.schema.createIndex('taskd_legacy_imports_phid').on('taskd_legacy_imports').columns(['source_table', 'legacy_phid']).execute()
      },
      async down(db: AnyDb) {
        await db.schema.dropTable('taskd_legacy_imports').ifExists().execute()
      },
    },
  }
}

function migratorFor(storage: Storage): Migrator {
  const migrations = buildMigrations(storage.dialect)
  return new Migrator({
    db: storage.db,
    provider: {getMigrations: async () => migrations},
    migrationTableName: 'taskd_migration',
    migrationLockTableName: 'taskd_migration_lock',
  })
}

export interface MigrationStatus {
  name: string
  applied: boolean
  appliedAt: string | null
}

/**
 * Applied and pending migrations, read from the migration table directly: every command checks this,
 * and kysely's Migrator would introspect information_schema (slow, and on MariaDB it queues behind
 * any DDL waiting for a metadata lock elsewhere on the server).
 */
export async function migrationStatus(storage: Storage): Promise<MigrationStatus[]> {
  let applied = new Map<string, string>()
  try {
    const {rows} = await sql<{name: string; timestamp: string}>`select name, timestamp from taskd_migration`.execute(storage.db)
    applied = new Map(rows.map((r) => [r.name, r.timestamp]))
  } catch (error) {
    if (!/no such table|doesn't exist|ER_NO_SUCH_TABLE/i.test(`${(error as {code?: string}).code ?? ''} ${(error as Error).message}`)) throw error
  }
  return Object.keys(buildMigrations(storage.dialect))
    .sort()
    .map((name) => ({name, applied: applied.has(name), appliedAt: applied.has(name) ? new Date(applied.get(name)!).toISOString() : null}))
}

/**
 * Applies pending migrations. Safe with many processes at once: kysely takes a lock first
 * (MySQL: GET_LOCK; SQLite: the immediate transaction the migrations run in).
 */
export async function migrateToLatest(storage: Storage): Promise<string[]> {
  const {error, results} = await migratorFor(storage).migrateToLatest()
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName
    throw new TaskdError('E_INTERNAL', `migration ${failed ?? ''} failed: ${(error as Error).message ?? String(error)}`, {cause: error})
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName)
}

/**
 * Makes sure the schema is current before a command uses it. The SQLite default creates its own
 * schema (nothing else shares the file by surprise); on MySQL the operator runs `taskd db migrate`.
 */
export async function ensureSchema(storage: Storage, options: {autoMigrate?: boolean} = {}): Promise<void> {
  const pending = (await migrationStatus(storage)).filter((m) => !m.applied)
  if (pending.length === 0) return
  if (options.autoMigrate ?? storage.dialect.autoMigrate) {
    await migrateToLatest(storage)
    return
  }
  throw new TaskdError(
    'E_SCHEMA_BEHIND',
    `the database schema at ${storage.target.url} is behind (${pending.length} pending migration${pending.length === 1 ? '' : 's'}: ${pending.map((m) => m.name).join(', ')}): run \`taskd db migrate\``,
  )
}
