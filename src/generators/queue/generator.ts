import {sql, type Selectable} from 'kysely'

import type {GeneratorContext, GeneratorSummary, LeaseRequest, PeekRequest, TaskGenerator} from '../../core/generator.js'
import {MAX_PRIORITY} from '../../core/priority.js'
import {formatRef, type DynamicTask, type TaskOutcome} from '../../core/task.js'
import {ARCHIVE_RESULT, type TasksTable} from '../../storage/schema.js'
import type {Storage} from '../../storage/storage.js'

export const QUEUE_KEY = 'queue'
/** Phabricator clamps yields to at least 5 s so a yielding task cannot spin. */
export const MIN_YIELD_SECONDS = 5

type TaskRow = Selectable<TasksTable>
type Ctx = GeneratorContext<Storage>

export function queueTaskFromRow(row: TaskRow, lease: DynamicTask['lease']): DynamicTask {
  let data: unknown = null
  let dataError: string | undefined
  try {
    data = JSON.parse(row.data)
  } catch (error) {
    dataError = `task data is not valid JSON: ${(error as Error).message}`
  }
  return {
    ref: formatRef(QUEUE_KEY, row.id),
    generator: QUEUE_KEY,
    identifier: String(row.id),
    taskClass: row.task_class,
    priority: row.priority,
    data,
    lease,
    attempt: Number(row.attempts),
    failureCount: Number(row.failure_count),
    ...(dataError ? {dataError} : {}),
  }
}

const idOf = (task: DynamicTask): number => Number(task.identifier)

/** Unleased rows that are due, in lease order: priority, then id. */
function readyQuery(store: Storage, now: number, ceiling: number | undefined) {
  let query = store.db.selectFrom('taskd_tasks').where('lease_owner', 'is', null).where('available_at', '<=', now)
  if (ceiling !== undefined) query = query.where('priority', '<=', ceiling)
  return query.orderBy('priority').orderBy('id')
}

/** Rows whose lease expired (their daemon died), oldest expiry first. */
function expiredQuery(store: Storage, now: number, ceiling: number | undefined) {
  let query = store.db.selectFrom('taskd_tasks').where('lease_expires', '<=', now)
  if (ceiling !== undefined) query = query.where('priority', '<=', ceiling)
  return query.orderBy('lease_expires').orderBy('id')
}

/**
 * The classic table queue as a generator: Phabricator's worker queue semantics (two-phase leasing,
 * archive on success or permanent failure, yield, retry wait), plus delays that actually hold.
 */
export const queueGenerator: TaskGenerator<Storage> = {
  key: QUEUE_KEY,
  description: 'The task table: tasks enqueued by applications (lease, retry, archive)',
  priorityRange: {min: 1, max: MAX_PRIORITY},

  async ready({store}: Ctx, {priorityCeiling}) {
    const now = store.now()
    const [fresh, expired] = await Promise.all([
      readyQuery(store, now, priorityCeiling).select('priority').limit(1).executeTakeFirst(),
      expiredQuery(store, now, priorityCeiling).select('priority').limit(1).executeTakeFirst(),
    ])
    const candidates = [fresh?.priority, expired?.priority].filter((p): p is number => p !== undefined)
    return candidates.length ? Math.min(...candidates) : null
  },

  async lease(ctx: Ctx, {limit, leaseSeconds, priorityCeiling}: LeaseRequest) {
    return ctx.store.transaction(async (store) => {
      const now = store.now()
      let fresh = readyQuery(store, now, priorityCeiling).selectAll().limit(limit)
      if (store.dialect.rowLocks) fresh = fresh.forUpdate().skipLocked()
      const rows = await fresh.execute()
      if (rows.length < limit) {
        let expired = expiredQuery(store, now, priorityCeiling).selectAll().limit(limit - rows.length)
        if (store.dialect.rowLocks) expired = expired.forUpdate().skipLocked()
        rows.push(...(await expired.execute()))
      }
      if (rows.length === 0) return []
      const expiresAt = now + leaseSeconds
      await store.db
        .updateTable('taskd_tasks')
        .set({lease_owner: ctx.owner, lease_expires: expiresAt, attempts: sql`attempts + 1`})
        .where('id', 'in', rows.map((r) => r.id))
        .execute()
      return rows.map((row) => queueTaskFromRow({...row, attempts: Number(row.attempts) + 1}, {owner: ctx.owner, expiresAt}))
    })
  },

  async peek({store}: Ctx, {limit, priorityCeiling}: PeekRequest) {
    const now = store.now()
    const rows = await readyQuery(store, now, priorityCeiling).selectAll().limit(limit).execute()
    if (rows.length < limit) rows.push(...(await expiredQuery(store, now, priorityCeiling).selectAll().limit(limit - rows.length).execute()))
    return rows.map((row) => queueTaskFromRow(row, null))
  },

  async renew({store, owner}: Ctx, tasks, leaseSeconds) {
    if (tasks.length === 0) return []
    const ids = tasks.map(idOf)
    await store.db
      .updateTable('taskd_tasks')
      .set({lease_expires: store.now() + leaseSeconds})
      .where('id', 'in', ids)
      .where('lease_owner', '=', owner)
      .execute()
    const held = await store.db.selectFrom('taskd_tasks').select('id').where('id', 'in', ids).where('lease_owner', '=', owner).execute()
    return held.map((r) => formatRef(QUEUE_KEY, r.id))
  },

  async complete({store, owner}: Ctx, outcomes: readonly TaskOutcome[]) {
    if (outcomes.length === 0) return []
    // Fence: only rows this owner still holds are touched (a lease taken over is not completed twice).
    let fence = store.db
      .selectFrom('taskd_tasks')
      .select('id')
      .where('id', 'in', outcomes.map((o) => idOf(o.task)))
      .where('lease_owner', '=', owner)
    if (store.dialect.rowLocks) fence = fence.forUpdate()
    const owned = new Set((await fence.execute()).map((r) => Number(r.id)))
    const mine = outcomes.filter((o) => owned.has(idOf(o.task)))
    const now = store.now()

    const archived = mine.filter((o) => o.kind === 'success' || o.kind === 'fail')
    if (archived.length > 0) {
      const caseOf = <T>(pick: (o: TaskOutcome) => T) =>
        sql`case id ${sql.join(archived.map((o) => sql`when ${idOf(o.task)} then ${pick(o)}`), sql` `)} end`
      const ids = archived.map((o) => idOf(o.task))
      await sql`insert into taskd_task_archive
          (id, task_class, priority, data, object_ref, container_ref, attempts, failure_count, result, reason, duration_us, created_at, archived_at, legacy_id)
        select id, task_class, priority, data, object_ref, container_ref, attempts,
          ${caseOf((o) => (o.kind === 'fail' ? sql`failure_count + 1` : sql`failure_count`))},
          ${caseOf((o) => (o.kind === 'success' ? ARCHIVE_RESULT.success : ARCHIVE_RESULT.failure))},
          ${caseOf((o) => (o.kind === 'fail' ? o.reason.slice(0, 4000) : null))},
          ${caseOf((o) => ('durationUs' in o ? Math.round(o.durationUs) : null))},
          created_at, ${now}, legacy_id
        from taskd_tasks where id in (${sql.join(ids)})`.execute(store.db)
      await store.db.deleteFrom('taskd_tasks').where('id', 'in', ids).execute()
    }

    const released = mine.filter((o) => o.kind === 'release').map((o) => idOf(o.task))
    if (released.length > 0) {
      await store.db.updateTable('taskd_tasks').set({lease_owner: null, lease_expires: null}).where('id', 'in', released).execute()
    }
    for (const o of mine) {
      if (o.kind === 'retry') {
        await store.db
          .updateTable('taskd_tasks')
          .set({
            lease_owner: null,
            lease_expires: null,
            available_at: Math.ceil(o.retryAt),
            failure_count: sql`failure_count + 1`,
            failure_time: now,
            last_error: o.error.slice(0, 4000),
          })
          .where('id', '=', idOf(o.task))
          .execute()
      } else if (o.kind === 'yield') {
        await store.db
          .updateTable('taskd_tasks')
          .set({lease_owner: null, lease_expires: null, available_at: Math.max(Math.ceil(o.until), now + MIN_YIELD_SECONDS)})
          .where('id', '=', idOf(o.task))
          .execute()
      }
    }
    return mine.map((o) => o.task.ref)
  },

  async reclaim({store, owner}: Ctx, held) {
    const keep = held.map((ref) => Number(ref.slice(QUEUE_KEY.length + 1)))
    let update = store.db.updateTable('taskd_tasks').set({lease_owner: null, lease_expires: null}).where('lease_owner', '=', owner)
    if (keep.length > 0) update = update.where('id', 'not in', keep)
    return Number((await update.executeTakeFirst()).numUpdatedRows)
  },

  async summarize({store}: Ctx): Promise<GeneratorSummary> {
    const now = store.now()
    const row = await store.db
      .selectFrom('taskd_tasks')
      .select([
        sql<number>`coalesce(sum(case when lease_owner is null and available_at <= ${now} then 1 else 0 end), 0)`.as('ready'),
        sql<number>`coalesce(sum(case when lease_owner is null and available_at > ${now} then 1 else 0 end), 0)`.as('delayed'),
        sql<number>`coalesce(sum(case when lease_expires > ${now} then 1 else 0 end), 0)`.as('leased'),
        sql<number>`coalesce(sum(case when lease_expires <= ${now} then 1 else 0 end), 0)`.as('expired'),
        sql<number>`coalesce(sum(case when failure_count > 0 then 1 else 0 end), 0)`.as('failing'),
      ])
      .executeTakeFirstOrThrow()
    return {
      backlog: {
        ready: Number(row.ready),
        leased: Number(row.leased),
        delayed: Number(row.delayed),
        expired: Number(row.expired),
        failing: Number(row.failing),
      },
    }
  },
}
