import type {Insertable, Kysely, Selectable} from 'kysely'

import {TaskdError, usageError} from '../../core/errors.js'
import type {TaskdSchema, WebhookRequestStatus, WebhookRequestsTable, WebhookStatus, WebhooksTable} from '../../storage/schema.js'
import {Storage} from '../../storage/storage.js'
import {encodeTaskData, localEnqueueSignal} from '../queue/enqueue.js'
import {generateSecret, maskSecret} from './delivery.js'

/** A hook as shown to operators: the secret is masked. */
export interface WebhookView {
  id: number
  name: string
  url: string
  secret: string
  status: WebhookStatus
  events: string[]
  pausedUntil: number
  disabledReason: string | null
  createdAt: number
  updatedAt: number
}

export function viewHook(row: Selectable<WebhooksTable>): WebhookView {
  return {
    id: Number(row.id),
    name: row.name,
    url: row.url,
    secret: maskSecret(row.secret),
    status: row.status,
    events: JSON.parse(row.events) as string[],
    pausedUntil: Number(row.paused_until),
    disabledReason: row.disabled_reason,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  }
}

export function checkWebhookUrl(url: string): string {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw usageError(`invalid webhook URL '${url}': expected http(s)://host[:port]/path`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw usageError(`invalid webhook URL '${url}': only http and https are allowed`)
  return parsed.toString()
}

export async function addHook(store: Storage, input: {name: string; url: string; secret?: string; firehose?: boolean; events?: string[]}): Promise<WebhookView> {
  if (!input.name.trim()) throw usageError('a webhook needs a --name')
  const url = checkWebhookUrl(input.url)
  const events = input.events?.length ? input.events : ['*']
  const now = store.now()
  const result = await store.db
    .insertInto('taskd_webhooks')
    .values({
      name: input.name,
      url,
      secret: input.secret ?? generateSecret(),
      status: input.firehose ? 'firehose' : 'enabled',
      events: JSON.stringify(events),
      created_at: now,
      updated_at: now,
      legacy_id: null,
    })
    .executeTakeFirstOrThrow()
  return getHook(store, Number(result.insertId))
}

export async function getHookRow(store: Storage, id: number): Promise<Selectable<WebhooksTable>> {
  const row = await store.db.selectFrom('taskd_webhooks').selectAll().where('id', '=', id).executeTakeFirst()
  if (!row) throw new TaskdError('E_NOT_FOUND', `webhook ${id} not found: see \`taskd webhooks list\``)
  return row
}

export async function getHook(store: Storage, id: number): Promise<WebhookView> {
  return viewHook(await getHookRow(store, id))
}

export async function listHooks(store: Storage): Promise<WebhookView[]> {
  return (await store.db.selectFrom('taskd_webhooks').selectAll().orderBy('id').execute()).map(viewHook)
}

/** Enables a hook (as firehose or with its event subscriptions) and clears any error pause. */
export async function enableHook(store: Storage, id: number, firehose?: boolean): Promise<WebhookView> {
  const row = await getHookRow(store, id)
  const status: WebhookStatus = firehose ?? row.status === 'firehose' ? 'firehose' : 'enabled'
  await store.db.updateTable('taskd_webhooks').set({status, disabled_reason: null, paused_until: 0, updated_at: store.now()}).where('id', '=', id).execute()
  return getHook(store, id)
}

/**
 * Disables a hook and fails its queued requests with that reason, in one transaction: requests to a
 * disabled hook are not retried forever.
 */
export async function disableHook(store: Storage, id: number, reason = 'hook disabled by an operator'): Promise<{hook: WebhookView; failedRequests: number}> {
  return store.transaction(async (trx) => {
    await getHookRow(trx, id)
    const now = trx.now()
    await trx.db.updateTable('taskd_webhooks').set({status: 'disabled', disabled_reason: reason, updated_at: now}).where('id', '=', id).execute()
    const failed = await trx.db
      .updateTable('taskd_webhook_requests')
      .set({status: 'failed', last_error_type: 'hook', last_error_code: 'disabled', last_error_message: reason, updated_at: now})
      .where('hook_id', '=', id)
      .where('status', '=', 'queued')
      .executeTakeFirst()
    return {hook: await getHook(trx, id), failedRequests: Number(failed.numUpdatedRows)}
  })
}

export async function rotateSecret(store: Storage, id: number): Promise<{hook: WebhookView; secret: string}> {
  await getHookRow(store, id)
  const secret = generateSecret()
  await store.db.updateTable('taskd_webhooks').set({secret, updated_at: store.now()}).where('id', '=', id).execute()
  return {hook: await getHook(store, id), secret}
}

/** `*` matches anything (including dots): `task.*` matches `task.created`. */
export function eventMatches(pattern: string, eventType: string): boolean {
  const regex = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`)
  return regex.test(eventType)
}

/** A fresh request row: queued and due now unless told otherwise. */
export function newRequestRow(input: {hookId: number; eventType: string; objectRef: string | null; payload: string; now: number; status?: WebhookRequestStatus; test?: boolean}): Insertable<WebhookRequestsTable> {
  return {
    hook_id: input.hookId,
    event_type: input.eventType,
    object_ref: input.objectRef,
    payload: input.payload,
    status: input.status ?? 'queued',
    attempts: 0,
    next_attempt_at: input.now,
    last_attempt_at: null,
    last_error_type: null,
    last_error_code: null,
    last_error_message: null,
    response_status: null,
    response_body: null,
    is_test: input.test ? 1 : 0,
    created_at: input.now,
    updated_at: input.now,
    sent_at: null,
    legacy_id: null,
  }
}

export interface PublishedEvent {
  eventType: string
  objectRef: string | null
  requests: {id: number; hookId: number}[]
}

/**
 * Publishes an event: one request per matching hook, in one transaction (pass the application's own
 * transaction to make it atomic with its writes). Firehose hooks get everything; enabled hooks get
 * the event types they subscribe to; disabled hooks get nothing. Nothing goes into the task queue.
 */
// The application's kysely handle is typed with its own schema, which taskd cannot know.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function publishWebhookEvent(target: Storage | Kysely<any>, event: {eventType: string; objectRef?: string | null; data?: unknown}): Promise<PublishedEvent> {
  if (!event.eventType || event.eventType.length > 191) throw usageError(`invalid event type '${event.eventType}': expected 1 to 191 characters`)
  const payload = encodeTaskData(event.data)
  const run = async (db: Kysely<TaskdSchema>, now: number) => {
    const hooks = await db.selectFrom('taskd_webhooks').select(['id', 'status', 'events']).where('status', '!=', 'disabled').execute()
    const matching = hooks.filter((h) => h.status === 'firehose' || (JSON.parse(h.events) as string[]).some((p) => eventMatches(p, event.eventType)))
    const requests: {id: number; hookId: number}[] = []
    for (const hook of matching) {
      const result = await db
        .insertInto('taskd_webhook_requests')
        .values(newRequestRow({hookId: Number(hook.id), eventType: event.eventType, objectRef: event.objectRef ?? null, payload, now}))
        .executeTakeFirstOrThrow()
      requests.push({id: Number(result.insertId), hookId: Number(hook.id)})
    }
    return requests
  }
  let requests: {id: number; hookId: number}[]
  if (target instanceof Storage) requests = await target.transaction((trx) => run(trx.db, trx.now()))
  else if (target.isTransaction) requests = await run(target as unknown as Kysely<TaskdSchema>, Math.floor(Date.now() / 1000))
  else requests = await target.transaction().execute((trx) => run(trx as unknown as Kysely<TaskdSchema>, Math.floor(Date.now() / 1000)))
  if (requests.length > 0) localEnqueueSignal.emit('enqueued')
  return {eventType: event.eventType, objectRef: event.objectRef ?? null, requests}
}
