import {sql} from 'kysely'

import {usageError} from '../../core/errors.js'
import type {Storage} from '../../storage/storage.js'

const DAY = 86_400

/**
 * A collector deletes rows older than its retention from one history table, oldest first, in
 * bounded batches. The same shape serves taskd's archive, dead daemons' rows, and later
 * generators' history tables (webhook requests).
 */
export interface Collector {
  name: string
  description: string
  table: string
  /** Epoch-seconds column the age is measured from (indexed). */
  timeColumn: string
  idColumn: string
  /** null = keep indefinitely by default. */
  defaultRetentionSeconds: number | null
  /** Only rows that are finished may go (e.g. webhook requests not still queued). */
  extraCondition?: ReturnType<typeof sql>
}

export const COLLECTORS: readonly Collector[] = [
  {
    name: 'archived-tasks',
    description: 'Archived (finished) queue tasks and their data',
    table: 'taskd_task_archive',
    timeColumn: 'archived_at',
    idColumn: 'id',
    defaultRetentionSeconds: 14 * DAY,
  },
  {
    name: 'daemons',
    description: 'Heartbeat rows of daemons that stopped or died',
    table: 'taskd_daemons',
    timeColumn: 'heartbeat_at',
    idColumn: 'id',
    defaultRetentionSeconds: 7 * DAY,
  },
  {
    name: 'webhook-requests',
    description: 'Webhook request history that is finished (sent or failed)',
    table: 'taskd_webhook_requests',
    timeColumn: 'created_at',
    idColumn: 'id',
    defaultRetentionSeconds: 7 * DAY,
    // A request still queued is work, not history: it is never collected.
    extraCondition: sql`status <> 'queued'`,
  },
]

export function findCollector(name: string, collectors: readonly Collector[] = COLLECTORS): Collector {
  const found = collectors.find((c) => c.name === name)
  if (!found) throw usageError(`unknown collector '${name}': valid collectors are ${collectors.map((c) => c.name).join(', ')}`, 'E_UNKNOWN_COLLECTOR')
  return found
}

/** Retention per collector: the stored policy, else the collector's default. */
export async function effectiveRetention(store: Storage, collector: Collector): Promise<{retentionSeconds: number | null; source: 'policy' | 'default'}> {
  const row = await store.db.selectFrom('taskd_gc_policies').select('retention_seconds').where('collector', '=', collector.name).executeTakeFirst()
  if (!row) return {retentionSeconds: collector.defaultRetentionSeconds, source: 'default'}
  return {retentionSeconds: row.retention_seconds === null ? null : Number(row.retention_seconds), source: 'policy'}
}

/** Sets a policy: seconds, null (indefinite), or 'default' (removes the stored policy). */
export async function setRetention(store: Storage, collector: Collector, retention: number | null | 'default'): Promise<void> {
  await store.db.deleteFrom('taskd_gc_policies').where('collector', '=', collector.name).execute()
  if (retention === 'default') return
  await store.db.insertInto('taskd_gc_policies').values({collector: collector.name, retention_seconds: retention, updated_at: store.now()}).execute()
}

function expiredRows(collector: Collector, cutoff: number) {
  const condition = collector.extraCondition ? sql` and (${collector.extraCondition})` : sql``
  return sql`from ${sql.table(collector.table)} where ${sql.ref(collector.timeColumn)} < ${cutoff}${condition}`
}

/** Rows a collector would delete now (for --dry-run and list). */
export async function countCollectable(store: Storage, collector: Collector, retentionSeconds: number | null): Promise<number> {
  if (retentionSeconds === null) return 0
  const {rows} = await sql<{n: number}>`select count(*) as n ${expiredRows(collector, store.now() - retentionSeconds)}`.execute(store.db)
  return Number(rows[0]?.n ?? 0)
}

/**
 * Deletes one bounded batch, oldest first: select the ids, then delete by id (MySQL has no LIMIT in
 * an IN subquery). Short transactions, no long locks. Returns how many rows went.
 */
export async function collectBatch(store: Storage, collector: Collector, retentionSeconds: number | null, batchSize: number): Promise<number> {
  if (retentionSeconds === null) return 0
  const cutoff = store.now() - retentionSeconds
  return store.transaction(async (trx) => {
    const {rows} = await sql<{id: string | number}>`select ${sql.ref(collector.idColumn)} as id ${expiredRows(collector, cutoff)} order by ${sql.ref(collector.timeColumn)} limit ${batchSize}`.execute(trx.db)
    if (rows.length === 0) return 0
    await sql`delete from ${sql.table(collector.table)} where ${sql.ref(collector.idColumn)} in (${sql.join(rows.map((r) => r.id))})`.execute(trx.db)
    return rows.length
  })
}
