import {sql, type Selectable} from 'kysely'

import {ARCHIVE_RESULT, type TasksTable, type WebhookRequestStatus} from '../../storage/schema.js'
import type {Storage} from '../../storage/storage.js'
import {deliverWebhook, type DeliveryResult} from './delivery.js'
import {leaseWebhookRequests, deliverRequest, recordAttempt} from './generator.js'
import {getHookRow, newRequestRow} from './hooks.js'
import {parseCidrs} from './outbound.js'

/**
 * Queue task classes that carry a webhook delivery: Phabricator's worker and taskd's own. Rows of
 * these classes in the task queue are "floating" tasks; the history table is the source of truth.
 */
export const FLOATING_WEBHOOK_CLASSES = ['HeraldWebhookWorker', 'taskd.webhooks.deliver']

function floatingRequestId(row: Selectable<TasksTable>): number | null {
  try {
    const data = JSON.parse(row.data) as Record<string, unknown>
    const id = data.webhookRequestID ?? data.requestID ?? data.requestId ?? data.webhookRequestId
    return id === undefined || id === null || !Number.isFinite(Number(id)) ? null : Number(id)
  } catch {
    return null
  }
}

async function floatingTasks(store: Storage, hookId?: number): Promise<{row: Selectable<TasksTable>; requestId: number | null; hookId: number | null}[]> {
  const rows = await store.db.selectFrom('taskd_tasks').selectAll().where('task_class', 'in', FLOATING_WEBHOOK_CLASSES).where('lease_owner', 'is', null).execute()
  const result = []
  for (const row of rows) {
    const requestId = floatingRequestId(row)
    const request = requestId === null ? undefined : await store.db.selectFrom('taskd_webhook_requests').select('hook_id').where('id', '=', requestId).executeTakeFirst()
    const owner = request ? Number(request.hook_id) : null
    if (hookId === undefined || owner === hookId) result.push({row, requestId: request ? requestId : null, hookId: owner})
  }
  return result
}

/** Archives floating queue tasks (cancelled, with the reason) so none remain in the queue. */
async function archiveFloating(store: Storage, ids: number[], reason: string): Promise<number> {
  if (ids.length === 0) return 0
  return store.transaction(async (trx) => {
    const now = trx.now()
    const owned = (await trx.db.selectFrom('taskd_tasks').select('id').where('id', 'in', ids).where('lease_owner', 'is', null).execute()).map((r) => Number(r.id))
    if (owned.length === 0) return 0
    await sql`insert into taskd_task_archive
        (id, task_class, priority, data, object_ref, container_ref, attempts, failure_count, result, reason, duration_us, created_at, archived_at, legacy_id)
      select id, task_class, priority, data, object_ref, container_ref, attempts, failure_count, ${ARCHIVE_RESULT.cancelled}, ${reason}, null, created_at, ${now}, legacy_id
      from taskd_tasks where id in (${sql.join(owned)})`.execute(trx.db)
    await trx.db.deleteFrom('taskd_tasks').where('id', 'in', owned).execute()
    return owned.length
  })
}

export interface DrainReport {
  dryRun: boolean
  /** Floating queue tasks turned into history-driven delivery (archived from the queue). */
  convertedFloating: number
  attempted: number
  sent: number
  /** Failed for good during this drain. */
  failed: number
  /** Still queued: waiting for a retry, or their hook is paused or busy. */
  stillQueued: number
  /** With --dry-run: queued requests that would be attempted. */
  wouldAttempt: number
}

/**
 * Delivers everything queued now, in the foreground, through the same per-hook leases the daemons
 * use (so it never doubles a delivery in flight). Each request is attempted at most once per drain.
 */
export async function drainWebhooks(
  store: Storage,
  options: {owner: string; hookId?: number; dryRun?: boolean; allowCidrs?: string[]; timeoutSeconds?: number; concurrency?: number; onProgress?: (report: DrainReport) => void},
): Promise<DrainReport> {
  const report: DrainReport = {dryRun: Boolean(options.dryRun), convertedFloating: 0, attempted: 0, sent: 0, failed: 0, stillQueued: 0, wouldAttempt: 0}
  if (options.hookId !== undefined) await getHookRow(store, options.hookId)
  const floating = await floatingTasks(store, options.hookId)
  const countQueued = async () => {
    let q = store.db.selectFrom('taskd_webhook_requests').select(sql<number>`count(*)`.as('n')).where('status', '=', 'queued')
    if (options.hookId !== undefined) q = q.where('hook_id', '=', options.hookId)
    return Number((await q.executeTakeFirstOrThrow()).n)
  }
  if (options.dryRun) {
    report.convertedFloating = floating.length
    report.wouldAttempt = await countQueued()
    return report
  }
  // Floating tasks: their request is already in the history (queued); the queue row goes.
  for (const f of floating) {
    if (f.requestId !== null) {
      await store.db
        .updateTable('taskd_webhook_requests')
        .set({next_attempt_at: store.now()})
        .where('id', '=', f.requestId)
        .where('status', '=', 'queued')
        .execute()
    }
  }
  report.convertedFloating = await archiveFloating(
    store,
    floating.map((f) => Number(f.row.id)),
    'floating webhook task converted: delivered from the webhook request history',
  )
  // "Now" means now: queued requests waiting for a retry are due for this drain.
  const startedAt = store.now()
  let due = store.db.updateTable('taskd_webhook_requests').set({next_attempt_at: startedAt}).where('status', '=', 'queued').where('next_attempt_at', '>', startedAt)
  if (options.hookId !== undefined) due = due.where('hook_id', '=', options.hookId)
  await due.execute()

  const allow = parseCidrs(options.allowCidrs)
  const attempted = new Set<number>()
  for (;;) {
    // Only what was due when the drain started: a retry it scheduled itself is not leased again.
    const leased = await leaseWebhookRequests(store, options.owner, {limit: options.concurrency ?? 8, leaseSeconds: 60, hookId: options.hookId, dueBy: startedAt})
    const tasks: typeof leased = []
    for (const task of leased) {
      const {requestId, hookId} = task.data as {requestId: number; hookId: number}
      if (!attempted.has(requestId)) {
        tasks.push(task)
        continue
      }
      // Already attempted in this drain (made due again meanwhile): give the hook back at once.
      await store.db
        .updateTable('taskd_webhooks')
        .set({lease_owner: null, lease_expires: null, lease_request_id: null})
        .where('id', '=', hookId)
        .where('lease_owner', '=', options.owner)
        .where('lease_request_id', '=', requestId)
        .execute()
    }
    if (tasks.length === 0) break
    await Promise.all(
      tasks.map(async (task) => {
        const {requestId, hookId} = task.data as {requestId: number; hookId: number}
        attempted.add(requestId)
        const result = await deliverRequest(store, requestId, {allow, timeoutSeconds: options.timeoutSeconds})
        await store.transaction(async (trx) => {
          await recordAttempt(trx, hookId, requestId, result)
          await trx.db.updateTable('taskd_webhooks').set({lease_owner: null, lease_expires: null, lease_request_id: null}).where('id', '=', hookId).where('lease_owner', '=', options.owner).execute()
        })
        report.attempted++
        const status = (await store.db.selectFrom('taskd_webhook_requests').select('status').where('id', '=', requestId).executeTakeFirst())?.status
        if (status === 'sent') report.sent++
        else if (status === 'failed') report.failed++
        options.onProgress?.(report)
      }),
    )
  }
  report.stillQueued = await countQueued()
  return report
}

export interface PurgeReport {
  dryRun: boolean
  /** Queued requests marked failed with reason "purged". */
  purgedRequests: number
  /** Floating webhook tasks archived as cancelled. */
  purgedFloating: number
}

/** Stop trying: queued requests that match are failed with reason "purged" (not deleted). Safe to rerun. */
export async function purgeWebhooks(store: Storage, options: {hookId?: number; olderThanSeconds?: number; dryRun?: boolean}): Promise<PurgeReport> {
  if (options.hookId !== undefined) await getHookRow(store, options.hookId)
  const now = store.now()
  const cutoff = options.olderThanSeconds === undefined ? undefined : now - options.olderThanSeconds
  const floating = (await floatingTasks(store, options.hookId)).filter((f) => cutoff === undefined || Number(f.row.created_at) < cutoff)
  let select = store.db.selectFrom('taskd_webhook_requests').select(sql<number>`count(*)`.as('n')).where('status', '=', 'queued')
  let update = store.db
    .updateTable('taskd_webhook_requests')
    .set({status: 'failed', last_error_type: 'purged', last_error_code: 'purged', last_error_message: 'purged by an operator (taskd webhooks purge)', updated_at: now})
    .where('status', '=', 'queued')
  if (options.hookId !== undefined) {
    select = select.where('hook_id', '=', options.hookId)
    update = update.where('hook_id', '=', options.hookId)
  }
  if (cutoff !== undefined) {
    select = select.where('created_at', '<', cutoff)
    update = update.where('created_at', '<', cutoff)
  }
  if (options.dryRun) return {dryRun: true, purgedRequests: Number((await select.executeTakeFirstOrThrow()).n), purgedFloating: floating.length}
  const purged = await update.executeTakeFirst()
  const purgedFloating = await archiveFloating(store, floating.map((f) => Number(f.row.id)), 'purged by an operator (taskd webhooks purge)')
  return {dryRun: false, purgedRequests: Number(purged.numUpdatedRows), purgedFloating}
}

export interface RequestView {
  id: number
  hookId: number
  eventType: string
  objectRef: string | null
  status: WebhookRequestStatus
  attempts: number
  nextAttemptAt: number
  lastAttemptAt: number | null
  lastError: {type: string; code: string | null; message: string | null} | null
  responseStatus: number | null
  responseBody: string | null
  test: boolean
  createdAt: number
  sentAt: number | null
}

export async function listRequests(store: Storage, options: {hookId?: number; status?: WebhookRequestStatus; limit: number}): Promise<RequestView[]> {
  let query = store.db.selectFrom('taskd_webhook_requests').selectAll().orderBy('id', 'desc').limit(options.limit)
  if (options.hookId !== undefined) query = query.where('hook_id', '=', options.hookId)
  if (options.status !== undefined) query = query.where('status', '=', options.status)
  return (await query.execute()).map((r) => ({
    id: Number(r.id),
    hookId: Number(r.hook_id),
    eventType: r.event_type,
    objectRef: r.object_ref,
    status: r.status,
    attempts: Number(r.attempts),
    nextAttemptAt: Number(r.next_attempt_at),
    lastAttemptAt: r.last_attempt_at === null ? null : Number(r.last_attempt_at),
    lastError: r.last_error_type ? {type: r.last_error_type, code: r.last_error_code, message: r.last_error_message} : null,
    responseStatus: r.response_status === null ? null : Number(r.response_status),
    responseBody: r.response_body,
    test: Number(r.is_test) === 1,
    createdAt: Number(r.created_at),
    sentAt: r.sent_at === null ? null : Number(r.sent_at),
  }))
}

/** One test request, delivered now in the foreground and recorded in the history (never retried). */
export async function testHook(store: Storage, hookId: number, options: {allowCidrs?: string[]; timeoutSeconds?: number}): Promise<{requestId: number; result: DeliveryResult}> {
  const hook = await getHookRow(store, hookId)
  const now = store.now()
  const inserted = await store.db
    .insertInto('taskd_webhook_requests')
    // Recorded as failed until the answer says otherwise: a test is never queued for a retry.
    .values(newRequestRow({hookId, eventType: 'taskd.test', objectRef: null, payload: JSON.stringify({message: 'test request from taskd webhooks test'}), now, status: 'failed', test: true}))
    .executeTakeFirstOrThrow()
  const requestId = Number(inserted.insertId)
  const result = await deliverWebhook(
    hook.url,
    hook.secret,
    {requestId, eventType: 'taskd.test', objectRef: null, payload: {message: 'test request from taskd webhooks test'}, createdAt: now, test: true},
    {allow: parseCidrs(options.allowCidrs), timeoutSeconds: options.timeoutSeconds, now},
  )
  // Recorded as a test: no retry, and a 410 or a failure does not count against the hook.
  await store.db
    .updateTable('taskd_webhook_requests')
    .set({
      status: result.ok ? 'sent' : 'failed',
      attempts: 1,
      last_attempt_at: now,
      sent_at: result.ok ? now : null,
      response_status: result.ok ? result.status : (result.status ?? null),
      response_body: result.ok ? result.body : (result.body ?? null),
      last_error_type: result.ok ? null : 'test',
      last_error_code: result.ok ? null : result.code.slice(0, 32),
      last_error_message: result.ok ? null : result.message.slice(0, 1000),
      updated_at: now,
    })
    .where('id', '=', requestId)
    .execute()
  return {requestId, result}
}
