import {EventEmitter} from 'node:events'

import type {Insertable, Kysely} from 'kysely'

import {TaskdError} from '../../core/errors.js'
import {PRIORITIES, parsePriority} from '../../core/priority.js'
import {formatRef, type TaskSpec} from '../../core/task.js'
import type {TaskdSchema, TasksTable} from '../../storage/schema.js'
import {Storage} from '../../storage/storage.js'

/** Largest JSON payload accepted at enqueue (bytes). Bigger data belongs in the application's tables. */
export const MAX_DATA_BYTES = 1_048_576

const INSERT_CHUNK = 1000

/** Fired after a local enqueue so a daemon in the same process wakes at once instead of polling. */
export const localEnqueueSignal = new EventEmitter()
localEnqueueSignal.setMaxListeners(0)

/** Where to enqueue: taskd's Storage, or the application's own kysely handle or transaction on the same database. */
// The application's kysely instance is typed with its own schema, which taskd cannot know.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EnqueueTarget = Storage | Kysely<any>

export function encodeTaskData(data: unknown): string {
  let text: string | undefined
  try {
    text = JSON.stringify(data ?? null)
  } catch (error) {
    throw new TaskdError('E_BAD_DATA', `task data is not JSON-serialisable: ${(error as Error).message}`, {exit: 2})
  }
  if (text === undefined) throw new TaskdError('E_BAD_DATA', 'task data is not JSON-serialisable', {exit: 2})
  const bytes = Buffer.byteLength(text)
  if (bytes > MAX_DATA_BYTES) {
    throw new TaskdError('E_PAYLOAD_TOO_LARGE', `task data is ${bytes} bytes, over the limit of ${MAX_DATA_BYTES} bytes: store large payloads in your own table and enqueue a reference`, {exit: 2})
  }
  return text
}

function toRow(spec: TaskSpec, now: number): Insertable<TasksTable> {
  if (typeof spec.taskClass !== 'string' || spec.taskClass.trim() === '' || spec.taskClass.length > 191) {
    throw new TaskdError('E_BAD_DATA', `invalid task class '${String(spec.taskClass)}': expected 1 to 191 characters`, {exit: 2})
  }
  const delay = spec.delaySeconds ?? 0
  if (!Number.isFinite(delay) || delay < 0) throw new TaskdError('E_BAD_DATA', `invalid delay '${delay}': expected seconds >= 0`, {exit: 2})
  return {
    task_class: spec.taskClass,
    priority: spec.priority === undefined ? PRIORITIES.default : parsePriority(spec.priority),
    data: encodeTaskData(spec.data),
    object_ref: spec.objectRef ?? null,
    container_ref: spec.containerRef ?? null,
    available_at: now + Math.ceil(delay),
    created_at: now,
  }
}

/**
 * Validates a spec exactly as enqueueing it would (class, priority, delay, data size) and returns a
 * copy whose data is frozen as JSON now: a handler's follow-up is checked when the handler calls
 * `ctx.enqueue`, so an invalid one fails that handler instead of the batch that records outcomes.
 */
export function snapshotTaskSpec(spec: TaskSpec): TaskSpec {
  const row = toRow(spec, 0)
  return {...spec, data: JSON.parse(row.data) as unknown}
}

function resolve(target: EnqueueTarget): {db: Kysely<TaskdSchema>; now: number; local: boolean} {
  if (target instanceof Storage) return {db: target.db, now: target.now(), local: !target.inTransaction}
  // An application's handle: the same database, so taskd's tables are there; its clock is the local one.
  return {db: target as unknown as Kysely<TaskdSchema>, now: Math.floor(Date.now() / 1000), local: !target.isTransaction}
}

/** Enqueues one task on the queue generator; returns its ref (`queue:<id>`). */
export async function enqueueTask(target: EnqueueTarget, spec: TaskSpec): Promise<{ref: string; id: number}> {
  const {db, now} = resolve(target)
  const result = await db.insertInto('taskd_tasks').values(toRow(spec, now)).executeTakeFirstOrThrow()
  const id = Number(result.insertId)
  localEnqueueSignal.emit('enqueued')
  return {ref: formatRef('queue', id), id}
}

/** Enqueues many tasks in multi-row inserts of up to 1000 rows; pass a transaction to make it atomic. */
export async function enqueueTasks(target: EnqueueTarget, specs: readonly TaskSpec[]): Promise<{count: number}> {
  const {db, now} = resolve(target)
  const rows = specs.map((spec) => toRow(spec, now))
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await db.insertInto('taskd_tasks').values(rows.slice(i, i + INSERT_CHUNK)).execute()
  }
  if (rows.length > 0) localEnqueueSignal.emit('enqueued')
  return {count: rows.length}
}
