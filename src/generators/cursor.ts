import {sql, type SelectQueryBuilder, type SqlBool} from 'kysely'

import {advanceCursor, getState} from '../storage/generator-state.js'
import type {Storage} from '../storage/storage.js'
import {defineSingletonGenerator} from './singleton.js'

/**
 * The cursor walk: read a bounded page of rows after the cursor in a stable order `(at, id)`, leave
 * rows changed in the last `settleSeconds` for later (Phabricator's fact cursors use 15 s), do the
 * page's work, and advance the cursor in the same transaction as that work, by compare-and-set.
 * A crash before the commit repeats the page; nothing is skipped.
 */
export interface CursorPosition {
  /** The row's modification time (epoch seconds) or any monotonic ordering column. */
  at: number
  id: number
}

export function encodeCursor(position: CursorPosition): string {
  return `${position.at}:${position.id}`
}

export function decodeCursor(cursor: string | null): CursorPosition | null {
  if (!cursor) return null
  const match = /^(-?\d+):(-?\d+)$/.exec(cursor)
  if (!match) throw new Error(`malformed cursor '${cursor}': expected <at>:<id>`)
  return {at: Number(match[1]), id: Number(match[2])}
}

/**
 * Narrows a query to the page after `after`: `(at, id) > after`, `at < settleBefore`, ordered by
 * (at, id), at most `limit` rows. Column names are the caller's (e.g. 'updated_at', 'id').
 */
// The caller's query is over its own schema, which taskd cannot know.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function pageAfter<QB extends SelectQueryBuilder<any, any, any>>(query: QB, columns: {at: string; id: string}, after: CursorPosition | null, settleBefore: number, limit: number): QB {
  const at = sql.ref(columns.at)
  const id = sql.ref(columns.id)
  let q = query.where(sql<SqlBool>`${at} < ${settleBefore}`)
  if (after) q = q.where(sql<SqlBool>`(${at} > ${after.at} or (${at} = ${after.at} and ${id} > ${after.id}))`)
  return q.orderBy(at).orderBy(id).limit(limit) as QB
}

export interface CursorGeneratorOptions<Row> {
  key: string
  description: string
  priority: number
  taskClass: string
  /** Rows per run; a full page means "more": the next run starts at once. Default 100. */
  pageSize?: number
  /** Rows modified this recently are left for a later run. Default 15 s. */
  settleSeconds?: number
  /** Sleep after a short page: base, doubling to max while pages come back empty. Default 5 s to 60 s. */
  sleep?: {baseSeconds: number; maxSeconds: number}
  fetchPage(store: Storage, after: CursorPosition | null, settleBefore: number, limit: number): Promise<Row[]>
  positionOf(row: Row): CursorPosition
  /** The page's work; runs in the transaction that advances the cursor. */
  processPage(store: Storage, rows: Row[]): Promise<void>
}

const CURSOR_UNIT = 'cursor'

/** A generator that walks a table with a persisted cursor: one task `key:cursor`, run on one daemon at a time. */
export function defineCursorGenerator<Row>(options: CursorGeneratorOptions<Row>) {
  const pageSize = options.pageSize ?? 100
  return defineSingletonGenerator({
    key: options.key,
    description: options.description,
    priority: options.priority,
    taskClass: options.taskClass,
    units: () => [CURSOR_UNIT],
    sleep: options.sleep ?? {baseSeconds: 5, maxSeconds: 60},
    run: async ({store}) => {
      const state = await getState(store, options.key, CURSOR_UNIT)
      const rows = await options.fetchPage(store, decodeCursor(state.cursor), store.now() - (options.settleSeconds ?? 15), pageSize)
      if (rows.length === 0) return {count: 0, more: false}
      await store.transaction(async (trx) => {
        await options.processPage(trx, rows)
        const next = encodeCursor(options.positionOf(rows[rows.length - 1]))
        if (!(await advanceCursor(trx, options.key, CURSOR_UNIT, state.cursorVersion, next))) {
          throw new Error(`cursor of ${options.key} moved during the run; the page is rolled back and will be read again`)
        }
      })
      return {count: rows.length, more: rows.length === pageSize}
    },
  })
}
