import {sql} from 'kysely'

import type {GeneratorContext, TaskGenerator} from '../../core/generator.js'
import type {HandlerContext} from '../../core/handler.js'
import {PRIORITIES} from '../../core/priority.js'
import {formatRef, type DynamicTask, type TaskOutcome} from '../../core/task.js'
import type {Storage} from '../../storage/storage.js'
import {deliverWebhook, DELIVERY_TIMEOUT_SECONDS, type DeliveryResult} from './delivery.js'
import {parseCidrs, type Cidr} from './outbound.js'

export const WEBHOOKS_KEY = 'webhooks'
export const WEBHOOK_TASK_CLASS = 'taskd.webhooks.deliver'
export const WEBHOOK_PRIORITY = PRIORITIES.default

/** Waits after failed attempts 1..7 (jittered ±10%); the 8th failure fails the request. */
export const RETRY_SCHEDULE_SECONDS = [5, 300, 1800, 7200, 18_000, 36_000, 36_000] as const
/** Phabricator's error backoff: this many failures of one hook within the window pause it. */
export const BACKOFF_FAILURES = 10
export const BACKOFF_WINDOW_SECONDS = 300
export const BACKOFF_PAUSE_SECONDS = 300

export interface WebhookOptions {
  /** CIDRs that delivery may reach although they are special-purpose (e.g. 127.0.0.1/32 in tests). */
  allowCidrs?: string[]
  timeoutSeconds?: number
}

type Ctx = GeneratorContext<Storage>

interface RequestTaskData {
  requestId: number
  hookId: number
  hook: string
  event: string
}

export function jitter(seconds: number, random = Math.random): number {
  return Math.max(1, Math.round(seconds * (0.9 + 0.2 * random())))
}

/**
 * Hooks that may be delivered to now and have a queued request due by `dueBy` (default: now), without
 * a live delivery.
 */
function deliverableHooks(store: Storage, now: number, hookId?: number, dueBy = now) {
  let query = store.db
    .selectFrom('taskd_webhooks as h')
    .select(['h.id', 'h.name'])
    .where('h.status', '!=', 'disabled')
    .where('h.paused_until', '<=', now)
    .where((eb) => eb.or([eb('h.lease_owner', 'is', null), eb('h.lease_expires', '<=', now)]))
    .where(({exists, selectFrom}) =>
      exists(
        selectFrom('taskd_webhook_requests as r')
          .select(sql`1`.as('one'))
          .whereRef('r.hook_id', '=', 'h.id')
          .where('r.status', '=', 'queued')
          .where('r.next_attempt_at', '<=', dueBy),
      ),
    )
    .orderBy('h.id')
  if (hookId !== undefined) query = query.where('h.id', '=', hookId)
  return query
}

/** The earliest due queued request of a hook (oldest first among equals). */
function nextRequest(store: Storage, hookId: number, now: number) {
  return store.db
    .selectFrom('taskd_webhook_requests')
    .select(['id', 'event_type', 'attempts'])
    .where('hook_id', '=', hookId)
    .where('status', '=', 'queued')
    .where('next_attempt_at', '<=', now)
    .orderBy('next_attempt_at')
    .orderBy('id')
    .limit(1)
    .executeTakeFirst()
}

function requestTask(hook: {id: number; name: string}, request: {id: number; event_type: string}, lease: DynamicTask['lease'], attempts: number): DynamicTask {
  const data: RequestTaskData = {requestId: Number(request.id), hookId: Number(hook.id), hook: hook.name, event: request.event_type}
  return {
    ref: formatRef(WEBHOOKS_KEY, `request/${request.id}`),
    generator: WEBHOOKS_KEY,
    identifier: `request/${request.id}`,
    taskClass: WEBHOOK_TASK_CLASS,
    priority: WEBHOOK_PRIORITY,
    data,
    lease,
    attempt: attempts + 1,
    failureCount: attempts,
  }
}

/**
 * Leases up to `limit` requests, at most one per hook: the hook row is the mutex (a guarded update of
 * its lease), so across all daemons a hook has at most one delivery in flight. `dueBy` leases only
 * requests due by then (a drain: what was due when it started, not the retries it scheduled itself).
 */
export async function leaseWebhookRequests(store: Storage, owner: string, options: {limit: number; leaseSeconds: number; hookId?: number; dueBy?: number}): Promise<DynamicTask[]> {
  const now = store.now()
  const dueBy = Math.min(now, options.dueBy ?? now)
  const hooks = await deliverableHooks(store, now, options.hookId, dueBy).limit(options.limit).execute()
  const tasks: DynamicTask[] = []
  for (const hook of hooks) {
    const request = await nextRequest(store, Number(hook.id), dueBy)
    if (!request) continue
    const won = await store.db
      .updateTable('taskd_webhooks')
      .set({lease_owner: owner, lease_expires: now + options.leaseSeconds, lease_request_id: Number(request.id)})
      .where('id', '=', Number(hook.id))
      .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_expires', '<=', now)]))
      .executeTakeFirst()
    if (Number(won.numUpdatedRows) !== 1) continue
    // Re-read under the lease: the request may have been purged or sent in between.
    const current = await store.db.selectFrom('taskd_webhook_requests').select(['id', 'event_type', 'status', 'attempts']).where('id', '=', Number(request.id)).executeTakeFirst()
    if (!current || current.status !== 'queued') {
      await store.db.updateTable('taskd_webhooks').set({lease_owner: null, lease_expires: null, lease_request_id: null}).where('id', '=', Number(hook.id)).where('lease_owner', '=', owner).execute()
      continue
    }
    tasks.push(requestTask({id: Number(hook.id), name: hook.name}, current, {owner, expiresAt: now + options.leaseSeconds}, Number(current.attempts)))
  }
  return tasks
}

/** Delivers one request (loaded fresh, with its hook's current URL and secret). */
export async function deliverRequest(store: Storage, requestId: number, options: {allow: readonly Cidr[]; timeoutSeconds?: number; signal?: AbortSignal}): Promise<DeliveryResult> {
  const row = await store.db
    .selectFrom('taskd_webhook_requests as r')
    .innerJoin('taskd_webhooks as h', 'h.id', 'r.hook_id')
    .select(['r.id', 'r.event_type', 'r.object_ref', 'r.payload', 'r.created_at', 'r.is_test', 'h.url', 'h.secret'])
    .where('r.id', '=', requestId)
    .executeTakeFirst()
  if (!row) return {ok: false, errorType: 'url', code: 'missing', message: `webhook request ${requestId} or its hook no longer exists`}
  let payload: unknown
  try {
    payload = JSON.parse(row.payload)
  } catch {
    payload = row.payload
  }
  return deliverWebhook(
    row.url,
    row.secret,
    {requestId: Number(row.id), eventType: row.event_type, objectRef: row.object_ref, payload, createdAt: Number(row.created_at), test: Number(row.is_test) === 1},
    {allow: options.allow, timeoutSeconds: options.timeoutSeconds, signal: options.signal, now: store.now()},
  )
}

/**
 * Records one delivery attempt: sent, or failed and scheduled for a retry (or failed for good after
 * the schedule, or at once on 410, which also disables the hook), then applies the error backoff.
 * A failed attempt of a request that is no longer queued (purged, or its hook disabled, while it was
 * in flight) only counts the attempt; one the receiver accepted is recorded as sent.
 */
export async function recordAttempt(store: Storage, hookId: number, requestId: number, result: DeliveryResult): Promise<void> {
  const now = store.now()
  const request = await store.db.selectFrom('taskd_webhook_requests').select(['attempts', 'is_test']).where('id', '=', requestId).executeTakeFirst()
  if (!request) return
  const attempts = Number(request.attempts) + 1
  if (result.ok) {
    await store.db
      .updateTable('taskd_webhook_requests')
      .set({status: 'sent', attempts, last_attempt_at: now, sent_at: now, response_status: result.status, response_body: result.body, last_error_type: null, last_error_code: null, last_error_message: null, updated_at: now})
      .where('id', '=', requestId)
      .execute()
    return
  }
  const gone = result.errorType === 'http' && result.status === 410
  const final = gone || Number(request.is_test) === 1 || result.errorType === 'url' || attempts > RETRY_SCHEDULE_SECONDS.length
  // Guarded on 'queued': a request purged, or failed by a disable, while in flight stays failed.
  const recorded = await store.db
    .updateTable('taskd_webhook_requests')
    .set({
      status: final ? 'failed' : 'queued',
      attempts,
      last_attempt_at: now,
      next_attempt_at: final ? now : now + jitter(RETRY_SCHEDULE_SECONDS[attempts - 1]),
      last_error_type: result.errorType,
      last_error_code: result.code.slice(0, 32),
      last_error_message: result.message.slice(0, 1000),
      response_status: result.status ?? null,
      response_body: result.body ?? null,
      updated_at: now,
    })
    .where('id', '=', requestId)
    .where('status', '=', 'queued')
    .executeTakeFirst()
  if (Number(recorded.numUpdatedRows) === 0) {
    await store.db.updateTable('taskd_webhook_requests').set({attempts, last_attempt_at: now, updated_at: now}).where('id', '=', requestId).execute()
  }
  if (gone) {
    const reason = 'receiver answered 410 Gone: hook disabled'
    await store.db.updateTable('taskd_webhooks').set({status: 'disabled', disabled_reason: reason, updated_at: now}).where('id', '=', hookId).execute()
    await store.db
      .updateTable('taskd_webhook_requests')
      .set({status: 'failed', last_error_type: 'hook', last_error_code: 'disabled', last_error_message: reason, updated_at: now})
      .where('hook_id', '=', hookId)
      .where('status', '=', 'queued')
      .execute()
    return
  }
  const recent = await store.db
    .selectFrom('taskd_webhook_requests')
    .select(sql<number>`count(*)`.as('n'))
    .where('hook_id', '=', hookId)
    .where('last_attempt_at', '>=', now - BACKOFF_WINDOW_SECONDS)
    .where('is_test', '=', 0)
    .where('last_error_type', 'in', ['http', 'timeout', 'network', 'blocked', 'url'])
    .executeTakeFirstOrThrow()
  if (Number(recent.n) >= BACKOFF_FAILURES) {
    await store.db.updateTable('taskd_webhooks').set({paused_until: now + BACKOFF_PAUSE_SECONDS, updated_at: now}).where('id', '=', hookId).execute()
  }
}

/** Gives a hook's delivery lease back (fenced on owner and request). */
async function releaseHook(store: Storage, hookId: number, requestId: number, owner: string): Promise<boolean> {
  const result = await store.db
    .updateTable('taskd_webhooks')
    .set({lease_owner: null, lease_expires: null, lease_request_id: null})
    .where('id', '=', hookId)
    .where('lease_owner', '=', owner)
    .where('lease_request_id', '=', requestId)
    .executeTakeFirst()
  return Number(result.numUpdatedRows) === 1
}

const taskIds = (task: DynamicTask) => task.data as RequestTaskData

/**
 * Webhook delivery as a generator: requests live in a history table and this generator walks the
 * queued, due ones; nothing floats in the task queue. Tasks are `webhooks:request/<id>`.
 */
export function webhooksGenerator(options: WebhookOptions = {}): TaskGenerator<Storage> {
  const allow = parseCidrs(options.allowCidrs)
  const timeoutSeconds = options.timeoutSeconds ?? DELIVERY_TIMEOUT_SECONDS
  return {
    key: WEBHOOKS_KEY,
    description: 'Webhook delivery from the request history (one request in flight per hook)',
    priorityRange: {min: WEBHOOK_PRIORITY, max: WEBHOOK_PRIORITY},
    handlers: {
      [WEBHOOK_TASK_CLASS]: {
        timeoutSeconds: timeoutSeconds + 15,
        maxRetries: null,
        run: (data: unknown, ctx: HandlerContext<Storage>) => {
          // Handlers are registered for every generator: a floating queue row of this class must not
          // deliver outside the hook's lease (and unrecorded); its request is delivered from the history.
          if (ctx.task.generator !== WEBHOOKS_KEY) {
            ctx.fail(`floating webhook task ${ctx.task.ref}: webhook requests are delivered from the request history, not the task queue (\`taskd webhooks drain\` converts such tasks)`)
          }
          return deliverRequest(ctx.store, (data as RequestTaskData).requestId, {allow, timeoutSeconds, signal: ctx.signal})
        },
      },
    },

    async ready({store}: Ctx, {priorityCeiling}) {
      if (priorityCeiling !== undefined && WEBHOOK_PRIORITY > priorityCeiling) return null
      return (await deliverableHooks(store, store.now()).limit(1).executeTakeFirst()) ? WEBHOOK_PRIORITY : null
    },

    async lease({store, owner}: Ctx, {limit, leaseSeconds, priorityCeiling}) {
      if (priorityCeiling !== undefined && WEBHOOK_PRIORITY > priorityCeiling) return []
      return leaseWebhookRequests(store, owner, {limit, leaseSeconds})
    },

    async peek({store}: Ctx, {limit}) {
      const now = store.now()
      const hooks = await deliverableHooks(store, now).limit(limit).execute()
      const tasks: DynamicTask[] = []
      for (const hook of hooks) {
        const request = await nextRequest(store, Number(hook.id), now)
        if (request) tasks.push(requestTask({id: Number(hook.id), name: hook.name}, request, null, Number(request.attempts)))
      }
      return tasks
    },

    async renew({store, owner}: Ctx, tasks, leaseSeconds) {
      const held: string[] = []
      for (const task of tasks) {
        const {hookId, requestId} = taskIds(task)
        const result = await store.db
          .updateTable('taskd_webhooks')
          .set({lease_expires: store.now() + leaseSeconds})
          .where('id', '=', hookId)
          .where('lease_owner', '=', owner)
          .where('lease_request_id', '=', requestId)
          .executeTakeFirst()
        if (Number(result.numUpdatedRows) === 1) held.push(task.ref)
      }
      return held
    },

    async complete({store, owner}: Ctx, outcomes: readonly TaskOutcome[]) {
      const applied: string[] = []
      for (const outcome of outcomes) {
        const {hookId, requestId} = taskIds(outcome.task)
        // Fence: only the daemon that holds the hook's lease for this request records its outcome.
        let fence = store.db.selectFrom('taskd_webhooks').select('id').where('id', '=', hookId).where('lease_owner', '=', owner).where('lease_request_id', '=', requestId)
        if (store.dialect.rowLocks) fence = fence.forUpdate()
        if (!(await fence.executeTakeFirst())) continue
        if (outcome.kind === 'success') {
          await recordAttempt(store, hookId, requestId, outcome.result as DeliveryResult)
        } else if (outcome.kind === 'retry' || outcome.kind === 'fail') {
          const message = outcome.kind === 'retry' ? outcome.error : outcome.reason
          await recordAttempt(store, hookId, requestId, {ok: false, errorType: 'network', code: 'internal', message: `delivery crashed: ${message}`})
        } else if (outcome.kind === 'yield') {
          await store.db.updateTable('taskd_webhook_requests').set({next_attempt_at: Math.ceil(outcome.until)}).where('id', '=', requestId).execute()
        }
        await releaseHook(store, hookId, requestId, owner)
        applied.push(outcome.task.ref)
      }
      return applied
    },

    async reclaim({store, owner}: Ctx, held) {
      const keep = held.map((ref) => Number(ref.slice(`${WEBHOOKS_KEY}:request/`.length)))
      let update = store.db.updateTable('taskd_webhooks').set({lease_owner: null, lease_expires: null, lease_request_id: null}).where('lease_owner', '=', owner)
      if (keep.length > 0) update = update.where((eb) => eb.or([eb('lease_request_id', 'is', null), eb('lease_request_id', 'not in', keep)]))
      return Number((await update.executeTakeFirst()).numUpdatedRows)
    },

    async summarize({store}: Ctx) {
      const rows = await store.db.selectFrom('taskd_webhook_requests').select(['status', sql<number>`count(*)`.as('n')]).groupBy('status').execute()
      const backlog: Record<string, number> = {queued: 0, sent: 0, failed: 0}
      for (const row of rows) backlog[row.status] = Number(row.n)
      return {backlog}
    },
  }
}
