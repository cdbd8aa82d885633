import os from 'node:os'

import {sql, type Expression, type ExpressionBuilder, type Selectable, type SqlBool} from 'kysely'

import {TaskdError, usageError} from '../../core/errors.js'
import type {ResolvedHandler} from '../../core/handler.js'
import {parsePriority} from '../../core/priority.js'
import {formatRef, parseRef, type TaskOutcome} from '../../core/task.js'
import {daemonState} from '../../daemon/status.js'
import {runTask} from '../../daemon/run-task.js'
import {ARCHIVE_RESULT, type TaskArchiveTable, type TaskdSchema, type TasksTable} from '../../storage/schema.js'
import type {Storage} from '../../storage/storage.js'
import {enqueueTasks} from './enqueue.js'
import {QUEUE_KEY, queueGenerator, queueTaskFromRow} from './generator.js'

/**
 * Operator tools for the queue generator, Phabricator's `bin/worker` on taskd's tables: list, show,
 * retry, cancel, free, reprioritize, delay and execute tasks picked by a selector.
 *
 * Every mutation works the same way, on both dialects:
 * 1. select the matching ids (no locks; newest first when limited, as `bin/worker` does);
 * 2. per chunk of ids, in one transaction: re-read the rows with the selector re-applied, locked
 *    (`FOR UPDATE` where the dialect has row locks; SQLite's immediate transaction is the single
 *    writer), decide from the state found *then*, and write with the same conditions in the WHERE.
 * So a task a daemon leased (or finished) between steps 1 and 2 is judged by its new state, never
 * forced into an impossible one; and a second run finds nothing left to change.
 */

type ActiveRow = Selectable<TasksTable>
type ArchiveRow = Selectable<TaskArchiveTable>
type TaskTable = 'taskd_tasks' | 'taskd_task_archive'

/** Which tasks an operation applies to. Every constraint given must hold; none given selects every task. */
export interface TaskSelector {
  /** Only these ids (each must exist, in either table). */
  ids?: readonly number[]
  taskClass?: string
  objectRefs?: readonly string[]
  containerRefs?: readonly string[]
  /** Priority number bounds, inclusive (a lower number is more urgent). */
  minPriority?: number
  maxPriority?: number
  /** Failure count bounds, inclusive; each works alone. */
  minFailureCount?: number
  maxFailureCount?: number
  /** Which table(s) to look in: active (queued or running) tasks, archived (finished) ones, or both (default). */
  tables?: 'active' | 'archived' | 'both'
  /** At most this many tasks, the newest (highest ids) first; unset selects every match. */
  limit?: number
}

/** Default `--limit` of reads. */
export const DEFAULT_LIST_LIMIT = 100
/** Rows locked and written per transaction by a mutation. */
const MUTATION_CHUNK = 500

export type ActiveState = 'ready' | 'delayed' | 'leased' | 'expired'
export type ArchivedState = 'succeeded' | 'failed' | 'cancelled'
/** Where a task stands: active (ready, delayed, leased, lease expired) or archived with its result. */
export type TaskState = ActiveState | ArchivedState

const ARCHIVED_STATES: Record<number, ArchivedState> = {
  [ARCHIVE_RESULT.success]: 'succeeded',
  [ARCHIVE_RESULT.failure]: 'failed',
  [ARCHIVE_RESULT.cancelled]: 'cancelled',
}

export interface TaskInfo {
  ref: string
  id: number
  table: 'active' | 'archived'
  state: TaskState
  taskClass: string
  priority: number
  objectRef: string | null
  containerRef: string | null
  /** How many times it was leased (so run). */
  attempts: number
  failureCount: number
  createdAt: number
  /** Active: not leased before this time. */
  availableAt: number | null
  leaseOwner: string | null
  leaseExpires: number | null
  /** Active: when it last failed, and why (it waits for its retry). */
  failureTime: number | null
  lastError: string | null
  /** Archived: when, how long the last run took, and the failure or cancel reason. */
  archivedAt: number | null
  durationUs: number | null
  reason: string | null
  legacyId: number | null
}

export interface TaskDetail extends TaskInfo {
  /** The decoded task data (null when it is not valid JSON: see dataError). */
  data: unknown
  dataError: string | null
  dataBytes: number
}

export interface ListResult {
  tasks: TaskInfo[]
  limit: number
  /** More tasks match than the limit let through. */
  more: boolean
}

/** One task's outcome in a mutation (with dryRun: what would happen). */
export interface TaskChange {
  ref: string
  id: number
  action: 'changed' | 'skipped'
  before: TaskState | null
  after: TaskState | null
  /** What was done, or why not: one line. */
  detail: string
}

export type MutationName = 'retry' | 'cancel' | 'free' | 'priority' | 'delay'

export interface MutationResult {
  operation: MutationName
  dryRun: boolean
  /** Tasks the selector matched. */
  matched: number
  changed: number
  skipped: number
  tasks: TaskChange[]
}

export interface MutationOptions {
  /** Report what would change and write nothing. */
  dryRun?: boolean
}

// ---------------------------------------------------------------------------------------------------
// Selector

/** Parses `42` or `queue:42` into a task id. */
export function parseTaskId(input: string): number {
  let text = input.trim()
  if (text.includes(':')) {
    const {generator, identifier} = parseRef(text)
    if (generator !== QUEUE_KEY) throw usageError(`'${input}' is not a queue task: these commands manage the queue generator's tasks (queue:N)`)
    text = identifier
  }
  if (!/^\d+$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw usageError(`invalid task id '${input}': expected a positive integer or a ref such as queue:42`)
  }
  return Number(text)
}

/** True when the selector narrows the tasks down (the table choice and the limit alone do not). */
export function isConstrained(selector: TaskSelector): boolean {
  return Boolean(
    selector.ids?.length ||
      selector.taskClass !== undefined ||
      selector.objectRefs?.length ||
      selector.containerRefs?.length ||
      selector.minPriority !== undefined ||
      selector.maxPriority !== undefined ||
      selector.minFailureCount !== undefined ||
      selector.maxFailureCount !== undefined,
  )
}

/** Rejects contradictory bounds with a usage error (exit 2). */
export function validateSelector(selector: TaskSelector): void {
  const range = (what: string, min: number | undefined, max: number | undefined) => {
    if (min !== undefined && max !== undefined && min > max) throw usageError(`--min-${what} ${min} is above --max-${what} ${max}: no task can match`)
  }
  range('priority', selector.minPriority, selector.maxPriority)
  range('failure-count', selector.minFailureCount, selector.maxFailureCount)
  for (const [name, value] of [
    ['--min-failure-count', selector.minFailureCount],
    ['--max-failure-count', selector.maxFailureCount],
  ] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value < 0)) throw usageError(`${name} must be an integer >= 0, got ${value}`)
  }
  if (selector.limit !== undefined && (!Number.isInteger(selector.limit) || selector.limit < 1)) throw usageError(`--limit must be a positive integer, got ${selector.limit}`)
  for (const id of selector.ids ?? []) if (!Number.isSafeInteger(id) || id < 1) throw usageError(`invalid task id ${id}: expected a positive integer`)
}

/** The selector's constraints as one condition; the columns exist, with the same types, in both tables. */
function selectorCondition(eb: ExpressionBuilder<TaskdSchema, TaskTable>, selector: TaskSelector): Expression<SqlBool> {
  const conditions: Expression<SqlBool>[] = []
  if (selector.ids?.length) conditions.push(eb('id', 'in', [...selector.ids]))
  if (selector.taskClass !== undefined) conditions.push(eb('task_class', '=', selector.taskClass))
  if (selector.objectRefs?.length) conditions.push(eb('object_ref', 'in', [...selector.objectRefs]))
  if (selector.containerRefs?.length) conditions.push(eb('container_ref', 'in', [...selector.containerRefs]))
  if (selector.minPriority !== undefined) conditions.push(eb('priority', '>=', selector.minPriority))
  if (selector.maxPriority !== undefined) conditions.push(eb('priority', '<=', selector.maxPriority))
  if (selector.minFailureCount !== undefined) conditions.push(eb('failure_count', '>=', selector.minFailureCount))
  if (selector.maxFailureCount !== undefined) conditions.push(eb('failure_count', '<=', selector.maxFailureCount))
  return eb.and(conditions)
}

const wantsActive = (selector: TaskSelector) => (selector.tables ?? 'both') !== 'archived'
const wantsArchived = (selector: TaskSelector) => (selector.tables ?? 'both') !== 'active'

interface Candidate {
  id: number
  table: 'active' | 'archived'
}

/** Matching ids from the chosen tables, newest first, at most `limit` (plus one to tell whether there is more). */
async function selectCandidates(store: Storage, selector: TaskSelector, limit: number | undefined): Promise<Candidate[]> {
  const found: Candidate[] = []
  if (wantsActive(selector)) {
    let query = store.db.selectFrom('taskd_tasks').select('id').where((eb) => selectorCondition(eb, selector)).orderBy('id', 'desc')
    if (limit !== undefined) query = query.limit(limit)
    found.push(...(await query.execute()).map((r) => ({id: Number(r.id), table: 'active' as const})))
  }
  if (wantsArchived(selector)) {
    let query = store.db.selectFrom('taskd_task_archive').select('id').where((eb) => selectorCondition(eb, selector)).orderBy('id', 'desc')
    if (limit !== undefined) query = query.limit(limit)
    found.push(...(await query.execute()).map((r) => ({id: Number(r.id), table: 'archived' as const})))
  }
  found.sort((a, b) => b.id - a.id)
  return limit === undefined ? found : found.slice(0, limit)
}

/** Named ids that exist in neither table are an error; those that exist but were not selected are returned. */
async function checkNamedIds(store: Storage, selector: TaskSelector, selected: readonly Candidate[]): Promise<number[]> {
  const wanted = [...new Set(selector.ids ?? [])]
  const seen = new Set(selected.map((c) => c.id))
  const unseen = wanted.filter((id) => !seen.has(id))
  if (unseen.length === 0) return []
  const [active, archived] = await Promise.all([
    store.db.selectFrom('taskd_tasks').select('id').where('id', 'in', unseen).execute(),
    store.db.selectFrom('taskd_task_archive').select('id').where('id', 'in', unseen).execute(),
  ])
  const exist = new Set([...active, ...archived].map((r) => Number(r.id)))
  const missing = unseen.filter((id) => !exist.has(id))
  if (missing.length > 0) throw notFound(missing)
  return unseen
}

function notFound(ids: readonly number[]): TaskdError {
  const refs = ids.map((id) => formatRef(QUEUE_KEY, id))
  return new TaskdError('E_NOT_FOUND', `${refs.length === 1 ? 'task' : 'tasks'} ${refs.join(', ')} not found (neither active nor archived)`)
}

// ---------------------------------------------------------------------------------------------------
// Reading

function activeState(row: Pick<ActiveRow, 'lease_owner' | 'lease_expires' | 'available_at'>, now: number): ActiveState {
  if (row.lease_owner !== null) return row.lease_expires !== null && Number(row.lease_expires) <= now ? 'expired' : 'leased'
  return Number(row.available_at) > now ? 'delayed' : 'ready'
}

/** The schema knows three results; anything else (a foreign writer) reads as a failure, never as a success. */
function archivedState(result: number): ArchivedState {
  return ARCHIVED_STATES[Number(result)] ?? 'failed'
}

const num = (value: number | string | bigint | null): number | null => (value === null ? null : Number(value))

const ACTIVE_COLUMNS = [
  'id',
  'task_class',
  'priority',
  'object_ref',
  'container_ref',
  'available_at',
  'lease_owner',
  'lease_expires',
  'attempts',
  'failure_count',
  'failure_time',
  'last_error',
  'created_at',
  'legacy_id',
] as const
const ARCHIVE_COLUMNS = [
  'id',
  'task_class',
  'priority',
  'object_ref',
  'container_ref',
  'attempts',
  'failure_count',
  'result',
  'reason',
  'duration_us',
  'created_at',
  'archived_at',
  'legacy_id',
] as const

function activeInfo(row: Omit<ActiveRow, 'data'>, now: number): TaskInfo {
  const id = Number(row.id)
  return {
    ref: formatRef(QUEUE_KEY, id),
    id,
    table: 'active',
    state: activeState(row, now),
    taskClass: row.task_class,
    priority: Number(row.priority),
    objectRef: row.object_ref,
    containerRef: row.container_ref,
    attempts: Number(row.attempts),
    failureCount: Number(row.failure_count),
    createdAt: Number(row.created_at),
    availableAt: Number(row.available_at),
    leaseOwner: row.lease_owner,
    leaseExpires: num(row.lease_expires),
    failureTime: num(row.failure_time),
    lastError: row.last_error,
    archivedAt: null,
    durationUs: null,
    reason: null,
    legacyId: num(row.legacy_id),
  }
}

function archivedInfo(row: Omit<ArchiveRow, 'data'>): TaskInfo {
  const id = Number(row.id)
  return {
    ref: formatRef(QUEUE_KEY, id),
    id,
    table: 'archived',
    state: archivedState(row.result),
    taskClass: row.task_class,
    priority: Number(row.priority),
    objectRef: row.object_ref,
    containerRef: row.container_ref,
    attempts: Number(row.attempts),
    failureCount: Number(row.failure_count),
    createdAt: Number(row.created_at),
    availableAt: null,
    leaseOwner: null,
    leaseExpires: null,
    failureTime: null,
    lastError: null,
    archivedAt: Number(row.archived_at),
    durationUs: num(row.duration_us),
    reason: row.reason,
    legacyId: num(row.legacy_id),
  }
}

/**
 * The tasks the selector matches, newest first, at most `limit` (default 100). Both tables are read
 * in one transaction, so a task moving between them is seen exactly once.
 */
export async function listTasks(storage: Storage, selector: TaskSelector = {}): Promise<ListResult> {
  validateSelector(selector)
  const limit = selector.limit ?? DEFAULT_LIST_LIMIT
  return storage.transaction(async (store) => {
    const candidates = await selectCandidates(store, selector, limit + 1)
    const more = candidates.length > limit
    const page = candidates.slice(0, limit)
    await checkNamedIds(store, selector, page)
    const activeIds = page.filter((c) => c.table === 'active').map((c) => c.id)
    const archivedIds = page.filter((c) => c.table === 'archived').map((c) => c.id)
    const now = store.now()
    const tasks: TaskInfo[] = []
    if (activeIds.length) {
      const rows = await store.db.selectFrom('taskd_tasks').select(ACTIVE_COLUMNS).where('id', 'in', activeIds).execute()
      tasks.push(...rows.map((row) => activeInfo(row, now)))
    }
    if (archivedIds.length) {
      const rows = await store.db.selectFrom('taskd_task_archive').select(ARCHIVE_COLUMNS).where('id', 'in', archivedIds).execute()
      tasks.push(...rows.map((row) => archivedInfo(row)))
    }
    tasks.sort((a, b) => b.id - a.id)
    return {tasks, limit, more}
  })
}

function decode(data: string): {data: unknown; dataError: string | null; dataBytes: number} {
  const dataBytes = Buffer.byteLength(data)
  try {
    return {data: JSON.parse(data) as unknown, dataError: null, dataBytes}
  } catch (error) {
    return {data: null, dataError: `task data is not valid JSON: ${(error as Error).message}`, dataBytes}
  }
}

/** One task by id, active or archived, with every field and its decoded data. Unknown id: E_NOT_FOUND (exit 1). */
export async function showTask(storage: Storage, id: number): Promise<TaskDetail> {
  validateSelector({ids: [id]})
  return storage.transaction(async (store) => {
    const active = await store.db.selectFrom('taskd_tasks').selectAll().where('id', '=', id).executeTakeFirst()
    if (active) return {...activeInfo(active, store.now()), ...decode(active.data)}
    const archived = await store.db.selectFrom('taskd_task_archive').selectAll().where('id', '=', id).executeTakeFirst()
    if (archived) return {...archivedInfo(archived), ...decode(archived.data)}
    throw notFound([id])
  })
}

// ---------------------------------------------------------------------------------------------------
// Mutations

interface LockedRows {
  active: ActiveRow[]
  archived: ArchiveRow[]
}

/** Decides, from the rows as locked now, each task's outcome, and writes the changes unless dryRun. */
type ChunkStep = (store: Storage, rows: LockedRows, now: number, dryRun: boolean) => Promise<TaskChange[]>

/** Re-reads the chunk's rows with the selector re-applied, locked against daemons and other operators. */
async function lockRows(store: Storage, selector: TaskSelector, ids: readonly number[]): Promise<LockedRows> {
  const rows: LockedRows = {active: [], archived: []}
  const chunk = {...selector, ids: [...ids]}
  if (wantsActive(selector)) {
    let query = store.db.selectFrom('taskd_tasks').selectAll().where((eb) => selectorCondition(eb, chunk)).orderBy('id')
    if (store.dialect.rowLocks) query = query.forUpdate()
    rows.active = await query.execute()
  }
  if (wantsArchived(selector)) {
    let query = store.db.selectFrom('taskd_task_archive').selectAll().where((eb) => selectorCondition(eb, chunk)).orderBy('id')
    if (store.dialect.rowLocks) query = query.forUpdate()
    rows.archived = await query.execute()
  }
  return rows
}

function changed(id: number, before: TaskState, after: TaskState, detail: string): TaskChange {
  return {ref: formatRef(QUEUE_KEY, id), id, action: 'changed', before, after, detail}
}

function skipped(id: number, state: TaskState | null, detail: string): TaskChange {
  return {ref: formatRef(QUEUE_KEY, id), id, action: 'skipped', before: state, after: state, detail}
}

async function mutate(storage: Storage, operation: MutationName, selector: TaskSelector, options: MutationOptions, step: ChunkStep): Promise<MutationResult> {
  validateSelector(selector)
  const dryRun = options.dryRun ?? false
  const candidates = await selectCandidates(storage, selector, selector.limit)
  const notSelected = await checkNamedIds(storage, selector, candidates)
  // A task archived between the two tables' reads is seen in both: it counts once.
  const ids = [...new Set(candidates.map((c) => c.id))].sort((a, b) => a - b)
  const tasks: TaskChange[] = []
  for (let i = 0; i < ids.length; i += MUTATION_CHUNK) {
    const chunk = ids.slice(i, i + MUTATION_CHUNK)
    // A retried transaction (deadlock, busy) re-runs the step from scratch on fresh rows.
    const outcomes = await storage.transaction(async (store) => {
      const rows = await lockRows(store, selector, chunk)
      const decided = await step(store, rows, store.now(), dryRun)
      const seen = new Set(decided.map((t) => t.id))
      for (const id of chunk) if (!seen.has(id)) decided.push(skipped(id, null, 'changed meanwhile: no longer matches the selection'))
      return decided
    })
    tasks.push(...outcomes)
  }
  for (const id of notSelected) tasks.push(skipped(id, null, 'does not match the other constraints (or was left out by --limit)'))
  tasks.sort((a, b) => a.id - b.id)
  const changedCount = tasks.filter((t) => t.action === 'changed').length
  return {operation, dryRun, matched: ids.length, changed: changedCount, skipped: tasks.length - changedCount, tasks}
}

function iso(epochSeconds: number | string | bigint | null): string {
  return epochSeconds === null ? '?' : new Date(Number(epochSeconds) * 1000).toISOString().replace('.000Z', 'Z')
}

function leaseNote(row: ActiveRow, state: ActiveState): string {
  return state === 'expired' ? `lease of ${row.lease_owner} expired at ${iso(row.lease_expires)}` : `running: leased by ${row.lease_owner} until ${iso(row.lease_expires)}`
}

/** Ids in both tables at once should not exist; if they do, the archived copy is left alone. */
function archivedOnly(rows: LockedRows): ArchiveRow[] {
  const active = new Set(rows.active.map((r) => Number(r.id)))
  return rows.archived.filter((r) => !active.has(Number(r.id)))
}

export interface RetryOptions extends MutationOptions {
  /** Also bring back archived tasks that succeeded (run them again). */
  includeSucceeded?: boolean
}

/**
 * Retry: archived failed or cancelled tasks go back to the active queue with the same id (failure
 * count 0, available now, no lease); active tasks waiting on a retry become available now. Archived
 * successes stay archived unless `includeSucceeded`. Leased tasks are left alone.
 */
export async function retryTasks(storage: Storage, selector: TaskSelector, options: RetryOptions = {}): Promise<MutationResult> {
  return mutate(storage, 'retry', selector, options, async (store, rows, now, dryRun) => {
    const out: TaskChange[] = []
    const unarchive: number[] = []
    const hurry: number[] = []
    for (const row of archivedOnly(rows)) {
      const id = Number(row.id)
      const state = archivedState(row.result)
      if (state === 'succeeded' && !options.includeSucceeded) {
        out.push(skipped(id, state, 'succeeded; pass --include-succeeded to run it again'))
        continue
      }
      unarchive.push(id)
      out.push(changed(id, state, 'ready', `back in the active queue with the same id (was ${state} after ${row.attempts} attempt(s), ${row.failure_count} failure(s))`))
    }
    for (const row of rows.active) {
      const id = Number(row.id)
      const state = activeState(row, now)
      if (state === 'leased' || state === 'expired') out.push(skipped(id, state, `${leaseNote(row, state)}; not retried`))
      else if (state === 'ready') out.push(skipped(id, state, 'already ready to run'))
      else if (Number(row.failure_count) === 0) out.push(skipped(id, state, `delayed until ${iso(row.available_at)}, not waiting on a retry (\`taskd tasks delay 0\` makes it ready)`))
      else {
        hurry.push(id)
        out.push(changed(id, state, 'ready', `retry wait skipped (was due ${iso(row.available_at)}, ${row.failure_count} failure(s) so far)`))
      }
    }
    if (!dryRun && unarchive.length > 0) {
      await store.db
        .insertInto('taskd_tasks')
        .columns(['id', 'task_class', 'priority', 'data', 'object_ref', 'container_ref', 'available_at', 'lease_owner', 'lease_expires', 'attempts', 'failure_count', 'failure_time', 'last_error', 'created_at', 'legacy_id'])
        .expression(
          store.db
            .selectFrom('taskd_task_archive')
            .select([
              'id',
              'task_class',
              'priority',
              'data',
              'object_ref',
              'container_ref',
              sql<number>`${now}`.as('available_at'),
              sql<null>`null`.as('lease_owner'),
              sql<null>`null`.as('lease_expires'),
              'attempts',
              sql<number>`0`.as('failure_count'),
              sql<null>`null`.as('failure_time'),
              sql<null>`null`.as('last_error'),
              'created_at',
              'legacy_id',
            ])
            .where('id', 'in', unarchive),
        )
        .execute()
      await store.db.deleteFrom('taskd_task_archive').where('id', 'in', unarchive).execute()
    }
    if (!dryRun && hurry.length > 0) {
      await store.db
        .updateTable('taskd_tasks')
        .set({available_at: now})
        .where('id', 'in', hurry)
        .where('lease_owner', 'is', null)
        .where('available_at', '>', now)
        .where('failure_count', '>', 0)
        .execute()
    }
    return out
  })
}

export interface CancelOptions extends MutationOptions {
  /** Also cancel tasks a daemon holds (running, or with an expired lease); that daemon's result is then dropped. */
  force?: boolean
  /** Stored as the archive reason. */
  reason?: string
}

/**
 * Cancel: active tasks are archived with result cancelled. Leased tasks (running, or whose lease
 * expired) are skipped and reported unless `force`. Archived tasks are skipped.
 */
export async function cancelTasks(storage: Storage, selector: TaskSelector, options: CancelOptions = {}): Promise<MutationResult> {
  const reason = (options.reason ?? 'cancelled by an operator').slice(0, 4000)
  return mutate(storage, 'cancel', selector, options, async (store, rows, now, dryRun) => {
    const out: TaskChange[] = []
    const free: number[] = []
    const held: number[] = []
    for (const row of archivedOnly(rows)) out.push(skipped(Number(row.id), archivedState(row.result), `already archived (${archivedState(row.result)})`))
    for (const row of rows.active) {
      const id = Number(row.id)
      const state = activeState(row, now)
      if (state === 'leased' || state === 'expired') {
        if (!options.force) {
          out.push(skipped(id, state, `${leaseNote(row, state)}; pass --force to cancel it anyway`))
          continue
        }
        held.push(id)
        out.push(changed(id, state, 'cancelled', `cancelled although ${leaseNote(row, state)} (its daemon's result will be dropped)`))
      } else {
        free.push(id)
        out.push(changed(id, state, 'cancelled', 'archived as cancelled'))
      }
    }
    if (!dryRun) {
      // Unleased and leased tasks are archived separately so each write carries its own fence.
      for (const [ids, leased] of [
        [free, false],
        [held, true],
      ] as const) {
        if (ids.length === 0) continue
        const fence = leased ? sql`lease_owner is not null` : sql`lease_owner is null`
        await sql`insert into taskd_task_archive
            (id, task_class, priority, data, object_ref, container_ref, attempts, failure_count, result, reason, duration_us, created_at, archived_at, legacy_id)
          select id, task_class, priority, data, object_ref, container_ref, attempts, failure_count,
            ${ARCHIVE_RESULT.cancelled}, ${reason}, 0, created_at, ${now}, legacy_id
          from taskd_tasks where id in (${sql.join(ids)}) and ${fence}`.execute(store.db)
        await store.db
          .deleteFrom('taskd_tasks')
          .where('id', 'in', ids)
          .where('lease_owner', leased ? 'is not' : 'is', null)
          .execute()
      }
    }
    return out
  })
}

export interface FreeOptions extends MutationOptions {
  /** Also free leases held by a daemon that is alive (its heartbeat is recent): the task may then run twice. */
  force?: boolean
}

/**
 * Free: releases the leases of active tasks (owner and expiry NULL) so any daemon can take them
 * now: for tasks stuck on a dead daemon. A lease that has not expired and belongs to a daemon whose
 * heartbeat is alive is skipped unless `force`. Unleased and archived tasks are skipped.
 */
export async function freeTasks(storage: Storage, selector: TaskSelector, options: FreeOptions = {}): Promise<MutationResult> {
  return mutate(storage, 'free', selector, options, async (store, rows, now, dryRun) => {
    const out: TaskChange[] = []
    for (const row of archivedOnly(rows)) out.push(skipped(Number(row.id), archivedState(row.result), 'archived: it holds no lease'))
    const owners = [...new Set(rows.active.map((r) => r.lease_owner).filter((o): o is string => o !== null))]
    const daemons = owners.length ? await store.db.selectFrom('taskd_daemons').select(['id', 'status', 'heartbeat_at']).where('id', 'in', owners).execute() : []
    // Owner -> heartbeat age, for owners that are daemons alive right now.
    const live = new Map<string, number>()
    for (const d of daemons) {
      const age = now - Number(d.heartbeat_at)
      if (daemonState(d.status, age) === 'alive') live.set(d.id, age)
    }
    const byOwner = new Map<string, number[]>()
    for (const row of rows.active) {
      const id = Number(row.id)
      const state = activeState(row, now)
      if (row.lease_owner === null) {
        out.push(skipped(id, state, 'not leased'))
        continue
      }
      const age = live.get(row.lease_owner)
      if (state === 'leased' && age !== undefined && !options.force) {
        out.push(skipped(id, state, `${leaseNote(row, state)}, a live daemon (heartbeat ${age}s ago); pass --force to free it anyway (it may run twice)`))
        continue
      }
      byOwner.set(row.lease_owner, [...(byOwner.get(row.lease_owner) ?? []), id])
      out.push(changed(id, state, Number(row.available_at) > now ? 'delayed' : 'ready', `lease of ${row.lease_owner} released (it ${state === 'expired' ? 'expired' : 'would expire'} at ${iso(row.lease_expires)})`))
    }
    if (!dryRun) {
      for (const [owner, ids] of byOwner) {
        await store.db.updateTable('taskd_tasks').set({lease_owner: null, lease_expires: null}).where('id', 'in', ids).where('lease_owner', '=', owner).execute()
      }
    }
    return out
  })
}

/** Priority: sets a new priority (a number or band name) on active tasks; unchanged and archived ones are skipped. */
export async function setPriority(storage: Storage, selector: TaskSelector, priority: number | string, options: MutationOptions = {}): Promise<MutationResult> {
  const target = parsePriority(priority)
  return mutate(storage, 'priority', selector, options, async (store, rows, now, dryRun) => {
    const out: TaskChange[] = []
    const ids: number[] = []
    for (const row of archivedOnly(rows)) out.push(skipped(Number(row.id), archivedState(row.result), `archived (${archivedState(row.result)}): priority applies to active tasks`))
    for (const row of rows.active) {
      const id = Number(row.id)
      const state = activeState(row, now)
      if (Number(row.priority) === target) out.push(skipped(id, state, `already at priority ${target}`))
      else {
        ids.push(id)
        out.push(changed(id, state, state, `priority ${row.priority} → ${target}`))
      }
    }
    if (!dryRun && ids.length > 0) await store.db.updateTable('taskd_tasks').set({priority: target}).where('id', 'in', ids).execute()
    return out
  })
}

/** How long to hold tasks back: `seconds` from now, or `until` an absolute epoch second. */
export type DelaySpec = {seconds: number} | {until: number}

/**
 * Delay: unleased active tasks become available at the given time (now + seconds, or `until`);
 * a shorter delay brings a task forward, 0 makes it ready now. Leased and archived tasks are skipped.
 */
export async function delayTasks(storage: Storage, selector: TaskSelector, delay: DelaySpec, options: MutationOptions = {}): Promise<MutationResult> {
  const amount = 'seconds' in delay ? delay.seconds : delay.until
  if (!Number.isFinite(amount) || amount < 0) throw usageError(`invalid delay ${amount}: expected seconds >= 0`)
  // One target for every chunk, fixed before the first one.
  const until = 'until' in delay ? Math.ceil(delay.until) : storage.now() + Math.ceil(delay.seconds)
  return mutate(storage, 'delay', selector, options, async (store, rows, now, dryRun) => {
    const out: TaskChange[] = []
    const ids: number[] = []
    for (const row of archivedOnly(rows)) out.push(skipped(Number(row.id), archivedState(row.result), `archived (${archivedState(row.result)}): delay applies to active tasks`))
    for (const row of rows.active) {
      const id = Number(row.id)
      const state = activeState(row, now)
      if (state === 'leased' || state === 'expired') out.push(skipped(id, state, `${leaseNote(row, state)}; not delayed`))
      else if (Number(row.available_at) === until) out.push(skipped(id, state, `already available at ${iso(until)}`))
      else {
        ids.push(id)
        out.push(changed(id, state, until > now ? 'delayed' : 'ready', `available ${iso(row.available_at)} → ${iso(until)}`))
      }
    }
    if (!dryRun && ids.length > 0) {
      await store.db.updateTable('taskd_tasks').set({available_at: until}).where('id', 'in', ids).where('lease_owner', 'is', null).execute()
    }
    return out
  })
}

// ---------------------------------------------------------------------------------------------------
// Execute

/** The lease owner `taskd tasks execute` writes: `execute:<host>:<pid>` (fits the 64-character column). */
export function executeOwnerId(): string {
  return `execute:${os.hostname().slice(0, 40)}:${process.pid}`
}

export interface ExecuteOptions {
  /** Handlers by task class (see buildHandlerRegistry). */
  handlers: ReadonlyMap<string, ResolvedHandler>
  /** Lease owner to write; default executeOwnerId(). */
  owner?: string
  /** Receives the handler's ctx.log lines. */
  log?: (message: string) => void
  /** Aborts the handler (e.g. on SIGINT). */
  signal?: AbortSignal
}

export interface ExecuteResult {
  ref: string
  id: number
  taskClass: string
  attempt: number
  /** The lease this run took over (a daemon's or another execute's), if the task was leased. */
  tookOverFrom: string | null
  outcome: TaskOutcome['kind']
  durationUs: number | null
  /** The error (retry) or reason (fail). */
  error: string | null
  retryAt: number | null
  yieldUntil: number | null
  /** False when the lease was taken from this run meanwhile, so the outcome was dropped. */
  recorded: boolean
  followUps: number
  /** The task's state afterwards. */
  state: TaskState | null
}

/**
 * Runs one active task in the foreground, ignoring leases and delays (Phabricator's `bin/worker
 * execute`): takes the lease forcibly, runs the handler with runTask, and records the outcome through
 * the queue generator (fenced on this run's lease, like a daemon's). Archived tasks must be retried first.
 */
export async function executeTask(storage: Storage, id: number, options: ExecuteOptions): Promise<ExecuteResult> {
  validateSelector({ids: [id]})
  const owner = options.owner ?? executeOwnerId()
  const {task, handler, tookOverFrom} = await storage.transaction(async (store) => {
    let query = store.db.selectFrom('taskd_tasks').selectAll().where('id', '=', id)
    if (store.dialect.rowLocks) query = query.forUpdate()
    const row = await query.executeTakeFirst()
    if (!row) {
      const archived = await store.db.selectFrom('taskd_task_archive').select(['result']).where('id', '=', id).executeTakeFirst()
      if (!archived) throw notFound([id])
      const state = archivedState(archived.result)
      throw new TaskdError('E_NOT_FOUND', `task ${formatRef(QUEUE_KEY, id)} is archived (${state}), not active: bring it back first with \`taskd tasks retry --id ${id}${state === 'succeeded' ? ' --include-succeeded' : ''}\``)
    }
    const resolved = options.handlers.get(row.task_class)
    // A daemon fails such a task permanently; a debugging run should not, so nothing is touched.
    if (!resolved) throw usageError(`no handler for task class '${row.task_class}' in this process: load the config module that defines it (--config or TASKD_CONFIG)`, 'E_CONFIG')
    // Long enough for the whole run (runTask abandons the handler at its timeout), so no daemon takes it over.
    const leaseSeconds = Math.max(resolved.leaseSeconds ?? 0, resolved.timeoutSeconds + 60)
    const expiresAt = store.now() + leaseSeconds
    await store.db
      .updateTable('taskd_tasks')
      .set({lease_owner: owner, lease_expires: expiresAt, attempts: sql`attempts + 1`})
      .where('id', '=', id)
      .execute()
    const leased = queueTaskFromRow({...row, attempts: Number(row.attempts) + 1}, {owner, expiresAt})
    return {task: leased, handler: resolved, tookOverFrom: row.lease_owner !== null && row.lease_owner !== owner ? row.lease_owner : null}
  })

  const ctx = {store: storage, owner}
  const {outcome, followUps} = await runTask(task, handler, {
    store: storage,
    now: () => storage.nowPrecise(),
    signal: options.signal ?? new AbortController().signal,
    extendLease: async (seconds) => {
      const held = await queueGenerator.renew(ctx, [task], seconds)
      if (!held.includes(task.ref)) throw new Error(`lease on ${task.ref} was lost`)
    },
    log: options.log ?? (() => undefined),
  })
  const recorded = await storage.transaction(async (store) => {
    const applied = (await queueGenerator.complete({store, owner}, [outcome])).includes(task.ref)
    if (applied && followUps.length > 0) await enqueueTasks(store, followUps)
    return applied
  })
  const after = await findState(storage, id)
  return {
    ref: task.ref,
    id,
    taskClass: task.taskClass,
    attempt: task.attempt,
    tookOverFrom,
    outcome: outcome.kind,
    durationUs: 'durationUs' in outcome ? outcome.durationUs : null,
    error: outcome.kind === 'retry' ? outcome.error : outcome.kind === 'fail' ? outcome.reason : null,
    retryAt: outcome.kind === 'retry' ? outcome.retryAt : null,
    yieldUntil: outcome.kind === 'yield' ? outcome.until : null,
    recorded,
    followUps: recorded ? followUps.length : 0,
    state: after,
  }
}

async function findState(storage: Storage, id: number): Promise<TaskState | null> {
  try {
    return (await showTask(storage, id)).state
  } catch (error) {
    if (error instanceof TaskdError && error.code === 'E_NOT_FOUND') return null
    throw error
  }
}

