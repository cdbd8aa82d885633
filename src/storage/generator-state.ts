import {sql, type Selectable} from 'kysely'

import type {GeneratorStateTable} from './schema.js'
import type {Storage} from './storage.js'

/**
 * Generator state primitives: one row per generator key and sub-key (e.g. per GC collector).
 * They answer the seed's open questions: "found nothing recently, sleep until T" (next run with
 * backoff), "a cursor iterating over a table" (a cursor advanced by compare-and-set), and
 * "singleton work on one daemon at a time" (a run lease). All of it survives daemon restarts.
 */
export interface GeneratorState {
  generator: string
  key: string
  cursor: string | null
  /** Compare-and-set token for the cursor. */
  cursorVersion: number
  nextRunAt: number
  backoffSeconds: number
  runOwner: string | null
  runExpires: number | null
  lastRunAt: number | null
  lastCount: number | null
  totalCount: number
  errorStreak: number
  lastError: string | null
  paused: boolean
}

/** The row that holds a generator's own flags (paused); sub-keys hold per-unit state. */
export const GENERATOR_ROW = ''

function fromRow(row: Selectable<GeneratorStateTable>): GeneratorState {
  return {
    generator: row.generator,
    key: row.state_key,
    cursor: row.cursor,
    cursorVersion: Number(row.cursor_version),
    nextRunAt: Number(row.next_run_at),
    backoffSeconds: Number(row.backoff_seconds),
    runOwner: row.run_owner,
    runExpires: row.run_expires === null ? null : Number(row.run_expires),
    lastRunAt: row.last_run_at === null ? null : Number(row.last_run_at),
    lastCount: row.last_count === null ? null : Number(row.last_count),
    totalCount: Number(row.total_count),
    errorStreak: Number(row.error_streak),
    lastError: row.last_error,
    paused: Number(row.paused) === 1,
  }
}

function emptyState(generator: string, key: string): GeneratorState {
  return {
    generator,
    key,
    cursor: null,
    cursorVersion: 0,
    nextRunAt: 0,
    backoffSeconds: 0,
    runOwner: null,
    runExpires: null,
    lastRunAt: null,
    lastCount: null,
    totalCount: 0,
    errorStreak: 0,
    lastError: null,
    paused: false,
  }
}

/** Creates the row if it is missing (idempotent, safe under races: insert-or-ignore). */
export async function ensureState(store: Storage, generator: string, key = GENERATOR_ROW): Promise<void> {
  const values = {generator, state_key: key, updated_at: store.now()}
  // INSERT IGNORE on MySQL, INSERT OR IGNORE on SQLite: kysely compiles orIgnore() for each.
  await store.db.insertInto('taskd_generator_state').values(values).orIgnore().execute()
}

export async function getState(store: Storage, generator: string, key = GENERATOR_ROW): Promise<GeneratorState> {
  const row = await store.db.selectFrom('taskd_generator_state').selectAll().where('generator', '=', generator).where('state_key', '=', key).executeTakeFirst()
  return row ? fromRow(row) : emptyState(generator, key)
}

/** Every state row of a generator (its own row and its sub-keys), by key. */
export async function listStates(store: Storage, generator?: string): Promise<GeneratorState[]> {
  let query = store.db.selectFrom('taskd_generator_state').selectAll().orderBy('generator').orderBy('state_key')
  if (generator !== undefined) query = query.where('generator', '=', generator)
  return (await query.execute()).map(fromRow)
}

export async function setPaused(store: Storage, generator: string, paused: boolean): Promise<void> {
  await ensureState(store, generator)
  await store.db
    .updateTable('taskd_generator_state')
    .set({paused: paused ? 1 : 0, updated_at: store.now()})
    .where('generator', '=', generator)
    .where('state_key', '=', GENERATOR_ROW)
    .execute()
}

/** Makes a sub-key due now (e.g. after a policy change), unless it is running. */
export async function wakeState(store: Storage, generator: string, key: string): Promise<void> {
  await ensureState(store, generator, key)
  await store.db
    .updateTable('taskd_generator_state')
    .set({next_run_at: 0, backoff_seconds: 0, updated_at: store.now()})
    .where('generator', '=', generator)
    .where('state_key', '=', key)
    .execute()
}

/**
 * Takes the run lease of (generator, key) for `owner` if the key is due and nobody holds a live
 * lease: one guarded UPDATE, so two daemons can never both win. `ignoreSchedule` takes it even if the
 * key is sleeping (a foreground `gc collect`).
 */
export async function acquireRun(
  store: Storage,
  generator: string,
  key: string,
  owner: string,
  leaseSeconds: number,
  options: {ignoreSchedule?: boolean} = {},
): Promise<boolean> {
  await ensureState(store, generator, key)
  const now = store.now()
  let update = store.db
    .updateTable('taskd_generator_state')
    .set({run_owner: owner, run_expires: now + leaseSeconds, updated_at: now})
    .where('generator', '=', generator)
    .where('state_key', '=', key)
    .where((eb) => eb.or([eb('run_owner', 'is', null), eb('run_expires', '<=', now)]))
  if (!options.ignoreSchedule) update = update.where('next_run_at', '<=', now)
  const result = await update.executeTakeFirst()
  return Number(result.numUpdatedRows) === 1
}

/** Extends a run lease; false when `owner` no longer holds it. */
export async function renewRun(store: Storage, generator: string, key: string, owner: string, leaseSeconds: number): Promise<boolean> {
  const now = store.now()
  const result = await store.db
    .updateTable('taskd_generator_state')
    .set({run_expires: now + leaseSeconds})
    .where('generator', '=', generator)
    .where('state_key', '=', key)
    .where('run_owner', '=', owner)
    .executeTakeFirst()
  // MySQL counts changed rows, so a renewal within the same second reports 0: confirm by reading.
  if (Number(result.numUpdatedRows) === 1) return true
  const row = await store.db.selectFrom('taskd_generator_state').select('run_owner').where('generator', '=', generator).where('state_key', '=', key).executeTakeFirst()
  return row?.run_owner === owner
}

export interface RunResult {
  /** Work done by this run (rows deleted, events delivered…). */
  count: number
  /** True when the run stopped early with more to do (a full batch): run again at once. */
  more: boolean
  /** Sleep after a run that is done: `base` after work, doubling up to `max` while runs find nothing. */
  sleep: {baseSeconds: number; maxSeconds: number}
}

/** Records a finished run, schedules the next one and releases the run lease (fenced on owner). */
export async function finishRun(store: Storage, generator: string, key: string, owner: string, result: RunResult): Promise<boolean> {
  const state = await getState(store, generator, key)
  const now = store.now()
  let backoff = 0
  if (!result.more) {
    backoff = result.count > 0 ? result.sleep.baseSeconds : Math.min(result.sleep.maxSeconds, Math.max(result.sleep.baseSeconds, state.backoffSeconds * 2))
  }
  const updated = await store.db
    .updateTable('taskd_generator_state')
    .set({
      run_owner: null,
      run_expires: null,
      next_run_at: now + backoff,
      backoff_seconds: backoff,
      last_run_at: now,
      last_count: result.count,
      total_count: sql`total_count + ${result.count}`,
      error_streak: 0,
      last_error: null,
      updated_at: now,
    })
    .where('generator', '=', generator)
    .where('state_key', '=', key)
    .where('run_owner', '=', owner)
    .executeTakeFirst()
  return Number(updated.numUpdatedRows) === 1
}

/** Records a failed run: the error streak grows and the next try backs off (5 s doubling, at most `maxSeconds`). */
export async function failRun(store: Storage, generator: string, key: string, owner: string, error: string, retryAt?: number, maxSeconds = 3600): Promise<boolean> {
  const state = await getState(store, generator, key)
  const now = store.now()
  const next = retryAt ?? now + Math.min(maxSeconds, 5 * 2 ** Math.min(state.errorStreak, 20))
  const updated = await store.db
    .updateTable('taskd_generator_state')
    .set({
      run_owner: null,
      run_expires: null,
      next_run_at: Math.ceil(next),
      last_run_at: now,
      error_streak: sql`error_streak + 1`,
      last_error: error.slice(0, 4000),
      updated_at: now,
    })
    .where('generator', '=', generator)
    .where('state_key', '=', key)
    .where('run_owner', '=', owner)
    .executeTakeFirst()
  return Number(updated.numUpdatedRows) === 1
}

/** Gives a run lease back without recording a run, optionally not before `nextRunAt` (a yield). */
export async function releaseRun(store: Storage, generator: string, key: string, owner: string, nextRunAt?: number): Promise<boolean> {
  const updated = await store.db
    .updateTable('taskd_generator_state')
    .set({run_owner: null, run_expires: null, ...(nextRunAt === undefined ? {} : {next_run_at: Math.ceil(nextRunAt)}), updated_at: store.now()})
    .where('generator', '=', generator)
    .where('state_key', '=', key)
    .where('run_owner', '=', owner)
    .executeTakeFirst()
  return Number(updated.numUpdatedRows) === 1
}

/**
 * Moves the cursor from the version the caller read to a new value; false if someone else moved it
 * first (the caller's page is then stale and must not be committed).
 */
export async function advanceCursor(store: Storage, generator: string, key: string, expectedVersion: number, cursor: string): Promise<boolean> {
  await ensureState(store, generator, key)
  const updated = await store.db
    .updateTable('taskd_generator_state')
    .set({cursor, cursor_version: expectedVersion + 1, updated_at: store.now()})
    .where('generator', '=', generator)
    .where('state_key', '=', key)
    .where('cursor_version', '=', expectedVersion)
    .executeTakeFirst()
  return Number(updated.numUpdatedRows) === 1
}
