import {sql, type Insertable} from 'kysely'

import {TaskdError, usageError} from '../core/errors.js'
import type {LegacyImportOutcome, LegacyImportsTable, TaskArchiveTable, TasksTable} from '../storage/schema.js'
import type {Storage} from '../storage/storage.js'
import {
  WEBHOOK_WORKER_CLASS,
  activeTaskRow,
  archiveProblem,
  archiveTaskRow,
  dataProblem,
  failedActiveTaskRow,
  hookProblem,
  hookRow,
  mapLease,
  requestProblem,
  requestRow,
  targetClass,
  webhookRequestPhid,
  type ClassMap,
  type LeaseKind,
} from './legacy-mapping.js'
import type {LegacySource, LegacyTableKey} from './legacy-source.js'

export {LegacySource, parseSourceUrl, checkNamespace, type LegacyTableKey} from './legacy-source.js'

/**
 * `taskd migrate legacy`: moves a Phabricator worker queue (active and archived tasks) and its
 * webhooks (hooks and request history) into taskd. Every source row ends in exactly one outcome:
 * imported, converted (floating HeraldWebhookWorker tasks: their request stays queued in the
 * history), imported as failed (malformed rows), or skipped (nowhere to put it; listed). What was
 * imported is tracked in `taskd_legacy_imports`, written in the same transaction as the rows, so a
 * rerun changes nothing and an interrupted run resumes without duplicates.
 */

export const DEFAULT_BATCH_SIZE = 500
export const MAX_BATCH_SIZE = 5000
const INSERT_CHUNK = 500
const DUPLICATE_RETRIES = 3

export interface LegacyMigrationOptions {
  dryRun?: boolean
  batchSize?: number
  /** Also copy `worker_archivetask` (finished tasks). */
  includeArchive?: boolean
  /** Keep live Phabricator leases (taskd takes the task once the lease expires) instead of freeing them. */
  keepLeases?: boolean
  /** Delete each source row once its target row is committed. */
  deleteMigrated?: boolean
  /** Import active tasks whose class has no handler in the target configuration. */
  allowUnhandled?: boolean
  /** `--map-class Old=New`. */
  classMap?: ClassMap
  /** Task classes the target configuration has handlers for. */
  handledClasses: ReadonlySet<string>
  onProgress?: (progress: LegacyProgress) => void
}

export interface LegacyProgress {
  table: LegacyTableKey
  done: number
  total: number
}

export type RowOutcome = LegacyImportOutcome | 'skipped'

export interface LegacyTableCounts {
  /** `<schema>.<table>` on the source. */
  sourceTable: string
  /** False for worker_archivetask without --include-archive, or a table the source lacks. */
  included: boolean
  /** Source rows seen. */
  total: number
  /** Written this run (or, with --dry-run, that would be). */
  imported: number
  converted: number
  failed: number
  /** Not written (nowhere to put them); listed in problems. */
  skipped: number
  /** Written by an earlier run (found in taskd_legacy_imports). */
  alreadyImported: number
  /** Source rows deleted (--delete-migrated). */
  deleted: number
}

export interface LegacyClassCounts {
  taskClass: string
  /** After --map-class. */
  targetClass: string
  /** Source rows of this class in worker_activetask. */
  active: number
  /** Source rows in worker_archivetask (counted with --include-archive). */
  archived: number
  /** Active rows that go (or went) onto taskd's queue. */
  queued: number
  handled: boolean
}

export interface LegacyProblem {
  table: LegacyTableKey
  legacyId: number
  /** failed: imported in a failed state; skipped: not in taskd. */
  outcome: 'failed' | 'skipped'
  reason: string
  /** Imported as failed by an earlier run (this run found it in the tracking table). */
  earlierRun: boolean
}

export interface LegacyMigrationReport {
  source: string
  namespace: string
  target: string
  dryRun: boolean
  tables: Record<LegacyTableKey, LegacyTableCounts>
  outcomes: {imported: number; converted: number; failed: number; skipped: number; alreadyImported: number}
  classes: LegacyClassCounts[]
  /** Classes of queued tasks that no handler in the target configuration runs (after --map-class). */
  unhandledClasses: {taskClass: string; count: number}[]
  /** How the active tasks' lease states were carried over (this run). */
  leases: Partial<Record<LeaseKind, number>>
  /** Task ids (active and archived) that kept their legacy id, and those that got a new one. */
  ids: {kept: number; renumbered: number}
  problems: LegacyProblem[]
  notes: string[]
  rowsRead: number
  seconds: number
  rowsPerSecond: number
}

const TABLES: readonly LegacyTableKey[] = ['herald_webhook', 'herald_webhookrequest', 'worker_activetask', 'worker_archivetask']

interface RowResult {
  legacyId: number
  outcome: RowOutcome | 'already'
  /** Failed or skipped: why. Already: the tracked outcome and detail. */
  reason?: string
  tracked?: LegacyImportOutcome
  taskClass?: string
  /** The row went onto (or is on) the queue. */
  queued?: boolean
  leaseKind?: LeaseKind
  idKept?: boolean
  dataId?: number | null
}

type Tracked = Map<number, Pick<LegacyImportsTable, 'outcome' | 'detail' | 'target_id'>>
type TaskValues = Insertable<TasksTable>
type ArchiveValues = Insertable<TaskArchiveTable>

async function insertChunked<T>(rows: readonly T[], insert: (chunk: T[]) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) await insert(rows.slice(i, i + INSERT_CHUNK))
}

/** Parses `--map-class Old=New` values. */
export function parseClassMap(values: readonly string[] = []): Map<string, string> {
  const map = new Map<string, string>()
  for (const value of values) {
    const match = /^([^=\s]+)=([^=\s]+)$/.exec(value.trim())
    if (!match) throw usageError(`invalid --map-class '${value}': expected Old=New, e.g. --map-class PhabricatorSearchWorker=app.reindex`)
    if (match[2].length > 191) throw usageError(`invalid --map-class '${value}': the new class is longer than 191 characters`)
    if (map.has(match[1]) && map.get(match[1]) !== match[2]) throw usageError(`--map-class maps '${match[1]}' twice`)
    map.set(match[1], match[2])
  }
  return map
}

const PLACEHOLDER_CLASS = 'taskd.migrate-id-reservation'

function placeholder(now: number): Omit<TaskValues, 'id'> {
  return {task_class: PLACEHOLDER_CLASS, priority: 2_147_483_647, data: 'null', object_ref: null, container_ref: null, available_at: 2_147_483_647, lease_owner: null, lease_expires: null, created_at: now, legacy_id: null}
}

/**
 * Makes sure taskd_tasks hands out ids above `through` from now on (Phabricator never reused an id,
 * and archived ids imported as they are must not collide with a future task's): inserting an
 * explicit id moves the auto-increment past it on both dialects (InnoDB counter, sqlite_sequence).
 */
export async function reserveTaskIds(storage: Storage, through: number): Promise<void> {
  if (through <= 0) return
  await storage.transaction(async (store) => {
    const row = await store.db.selectFrom('taskd_tasks').select(sql<number | null>`max(id)`.as('m')).executeTakeFirst()
    if (Number(row?.m ?? 0) >= through) return
    await store.db.insertInto('taskd_tasks').values({id: through, ...placeholder(store.now())}).execute()
    await store.db.deleteFrom('taskd_tasks').where('id', '=', through).execute()
  })
}

/** A fresh task id from taskd_tasks' sequence, free in the archive too (for a row whose legacy id is taken). */
async function allocateTaskId(store: Storage): Promise<number> {
  for (;;) {
    const result = await store.db.insertInto('taskd_tasks').values(placeholder(store.now())).executeTakeFirstOrThrow()
    const id = Number(result.insertId)
    await store.db.deleteFrom('taskd_tasks').where('id', '=', id).execute()
    const inArchive = await store.db.selectFrom('taskd_task_archive').select('id').where('id', '=', id).executeTakeFirst()
    if (!inArchive) return id
  }
}

/** Of these ids, the ones free in both taskd_tasks and taskd_task_archive. */
async function freeTaskIds(store: Storage, ids: readonly number[]): Promise<Set<number>> {
  const free = new Set(ids)
  if (ids.length === 0) return free
  for (const table of ['taskd_tasks', 'taskd_task_archive'] as const) {
    const taken = await store.db.selectFrom(table).select('id').where('id', 'in', [...ids]).execute()
    for (const r of taken) free.delete(Number(r.id))
  }
  return free
}

function emptyCounts(sourceTable: string, included: boolean): LegacyTableCounts {
  return {sourceTable, included, total: 0, imported: 0, converted: 0, failed: 0, skipped: 0, alreadyImported: 0, deleted: 0}
}

class LegacyMigration {
  private readonly report: LegacyMigrationReport
  private readonly classMap: ClassMap
  private readonly batchSize: number
  private readonly dryRun: boolean
  private readonly classes = new Map<string, LegacyClassCounts>()
  /** Hook PHID → taskd hook id (−1 for hooks a dry run would import). */
  private readonly hookTargets = new Map<string, number>()
  private now = 0

  constructor(
    private readonly storage: Storage,
    private readonly source: LegacySource,
    private readonly options: LegacyMigrationOptions,
  ) {
    this.classMap = options.classMap ?? new Map()
    this.batchSize = Math.min(Math.max(1, options.batchSize ?? DEFAULT_BATCH_SIZE), MAX_BATCH_SIZE)
    this.dryRun = options.dryRun ?? false
    const tables = Object.fromEntries(TABLES.map((t) => [t, emptyCounts(source.qualified(t), t !== 'worker_archivetask' || Boolean(options.includeArchive))])) as Record<
      LegacyTableKey,
      LegacyTableCounts
    >
    this.report = {
      source: source.target.url,
      namespace: source.namespace,
      target: storage.target.url,
      dryRun: this.dryRun,
      tables,
      outcomes: {imported: 0, converted: 0, failed: 0, skipped: 0, alreadyImported: 0},
      classes: [],
      unhandledClasses: [],
      leases: {},
      ids: {kept: 0, renumbered: 0},
      problems: [],
      notes: [],
      rowsRead: 0,
      seconds: 0,
      rowsPerSecond: 0,
    }
  }

  async run(): Promise<LegacyMigrationReport> {
    const started = Date.now()
    if (!(await this.source.hasTable('worker_activetask'))) {
      throw new TaskdError('E_NOT_FOUND', `no Phabricator queue at ${this.source.target.url}: table ${this.source.qualified('worker_activetask')} does not exist (check --source and --namespace)`)
    }
    this.now = await this.source.now()
    if (!this.dryRun) {
      await this.checkHandlers()
      await reserveTaskIds(this.storage, await this.source.highestTaskId())
    }
    if (await this.source.hasTable('herald_webhook')) {
      await this.walk('herald_webhook', (after, limit) => this.source.hooks(after, limit), (rows) => this.hookBatch(rows))
      await this.walk('herald_webhookrequest', (after, limit) => this.source.requests(after, limit), (rows) => this.requestBatch(rows))
    } else {
      this.report.tables.herald_webhook.included = false
      this.report.tables.herald_webhookrequest.included = false
      this.report.notes.push(`${this.source.heraldSchema}.herald_webhook does not exist: no webhooks to migrate`)
    }
    await this.walk('worker_activetask', (after, limit) => this.source.activeTasks(after, limit), (rows) => this.activeBatch(rows))
    if (this.options.includeArchive) {
      await this.walk('worker_archivetask', (after, limit) => this.source.archivedTasks(after, limit), (rows) => this.archiveBatch(rows))
    } else {
      this.report.tables.worker_archivetask.total = await this.source.count('worker_archivetask')
      this.report.notes.push(`${this.report.tables.worker_archivetask.total} archived tasks were left out: pass --include-archive to copy them`)
    }
    return this.finish(started)
  }

  /** Before writing anything: active tasks still to import whose class no handler runs. */
  private async checkHandlers(): Promise<void> {
    if (this.options.allowUnhandled) return
    const table = this.source.qualified('worker_activetask')
    const unhandled = new Map<string, number>()
    for (let after = 0; ; ) {
      const rows = await this.source.activeClasses(after, MAX_BATCH_SIZE)
      if (rows.length === 0) break
      after = rows[rows.length - 1].id
      const tracked = await this.tracked(this.storage, table, rows.map((r) => r.id))
      for (const r of rows) {
        if (tracked.has(r.id) || r.taskClass === WEBHOOK_WORKER_CLASS) continue
        const cls = targetClass(r.taskClass, this.classMap)
        if (!this.options.handledClasses.has(cls)) unhandled.set(cls, (unhandled.get(cls) ?? 0) + 1)
      }
    }
    if (unhandled.size === 0) return
    const list = [...unhandled].sort((a, b) => b[1] - a[1]).map(([cls, n]) => `${cls} (${n})`)
    const total = [...unhandled.values()].reduce((a, b) => a + b, 0)
    throw usageError(
      `${total} active task${total === 1 ? '' : 's'} would be queued with no handler in the target configuration: ${list.join(', ')}. ` +
        `Map them with --map-class Old=New, register handlers in the config module, or pass --allow-unhandled (a daemon fails such tasks permanently); --dry-run shows the full report`,
    )
  }

  private async tracked(store: Storage, sourceTable: string, ids: readonly number[]): Promise<Tracked> {
    const map: Tracked = new Map()
    if (ids.length === 0) return map
    const rows = await store.db
      .selectFrom('taskd_legacy_imports')
      .select(['legacy_id', 'outcome', 'detail', 'target_id'])
      .where('source_table', '=', sourceTable)
      .where('legacy_id', 'in', [...ids])
      .execute()
    for (const r of rows) map.set(Number(r.legacy_id), {outcome: r.outcome, detail: r.detail, target_id: r.target_id === null ? null : Number(r.target_id)})
    return map
  }

  private async track(store: Storage, rows: Insertable<LegacyImportsTable>[]): Promise<void> {
    await insertChunked(rows, (chunk) => store.db.insertInto('taskd_legacy_imports').values(chunk).execute())
  }

  private async walk<R extends {id: number}>(table: LegacyTableKey, fetch: (after: number, limit: number) => Promise<R[]>, batch: (rows: R[]) => Promise<RowResult[]>): Promise<void> {
    const counts = this.report.tables[table]
    const total = await this.source.count(table)
    let seen = 0
    for (let after = 0; ; ) {
      const rows = await fetch(after, this.batchSize)
      if (rows.length === 0) break
      after = rows[rows.length - 1].id
      const results = await this.withDuplicateRetry(() => batch(rows))
      this.account(table, results)
      seen += rows.length
      this.report.rowsRead += rows.length
      if (this.options.deleteMigrated && !this.dryRun) {
        const done = results.filter((r) => r.outcome !== 'skipped')
        counts.deleted += await this.source.deleteRows(
          table,
          done.map((r) => r.legacyId),
          done.flatMap((r) => (r.dataId === null || r.dataId === undefined ? [] : [r.dataId])),
        )
      }
      this.options.onProgress?.({table, done: seen, total: Math.max(total, seen)})
    }
    counts.total = seen
  }

  /** A concurrent writer (another run, a daemon's insert) can take an id between check and insert: redo the batch. */
  private async withDuplicateRetry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn()
      } catch (error) {
        if (attempt >= DUPLICATE_RETRIES || !this.storage.dialect.isDuplicateKey(error)) throw error
      }
    }
  }

  /** Runs a batch's reads and writes in one target transaction (a dry run only reads). */
  private inTarget<T>(fn: (store: Storage) => Promise<T>): Promise<T> {
    return this.dryRun ? fn(this.storage) : this.storage.transaction(fn)
  }

  private account(table: LegacyTableKey, results: readonly RowResult[]): void {
    const counts = this.report.tables[table]
    for (const r of results) {
      if (r.outcome === 'already') {
        counts.alreadyImported++
        this.report.outcomes.alreadyImported++
        if (r.tracked === 'failed') this.report.problems.push({table, legacyId: r.legacyId, outcome: 'failed', reason: r.reason ?? '', earlierRun: true})
      } else {
        counts[r.outcome]++
        this.report.outcomes[r.outcome]++
        if (r.outcome === 'failed' || r.outcome === 'skipped') this.report.problems.push({table, legacyId: r.legacyId, outcome: r.outcome, reason: r.reason ?? '', earlierRun: false})
      }
      if (r.leaseKind) this.report.leases[r.leaseKind] = (this.report.leases[r.leaseKind] ?? 0) + 1
      if (r.idKept !== undefined) this.report.ids[r.idKept ? 'kept' : 'renumbered']++
      if (r.taskClass !== undefined) {
        const entry = this.classEntry(r.taskClass)
        if (table === 'worker_activetask') entry.active++
        else entry.archived++
        if (r.queued) entry.queued++
      }
    }
  }

  private classEntry(taskClass: string): LegacyClassCounts {
    let entry = this.classes.get(taskClass)
    if (!entry) {
      const target = targetClass(taskClass, this.classMap)
      entry = {taskClass, targetClass: target, active: 0, archived: 0, queued: 0, handled: this.options.handledClasses.has(target)}
      this.classes.set(taskClass, entry)
    }
    return entry
  }

  private already(legacyId: number, tracked: Tracked, extra: Partial<RowResult> = {}): RowResult | null {
    const t = tracked.get(legacyId)
    if (!t) return null
    return {legacyId, outcome: 'already', tracked: t.outcome, reason: t.detail ?? undefined, ...extra}
  }

  // ---- herald_webhook -------------------------------------------------------------------------

  private async hookBatch(rows: Awaited<ReturnType<LegacySource['hooks']>>): Promise<RowResult[]> {
    const sourceTable = this.source.qualified('herald_webhook')
    const results = await this.inTarget(async (store) => {
      const tracked = await this.tracked(store, sourceTable, rows.map((r) => r.id))
      const out: RowResult[] = []
      const fresh = rows.filter((r) => {
        const done = this.already(r.id, tracked)
        if (done) out.push(done)
        return !done
      })
      out.push(
        ...(await this.importWithNewIds(store, {
          sourceTable,
          targetTable: 'taskd_webhooks',
          rows: fresh,
          insert: (chunk) => store.db.insertInto('taskd_webhooks').values(chunk.map(hookRow)).execute(),
          problemOf: hookProblem,
        })),
      )
      return out
    })
    return results
  }

  /**
   * Inserts rows whose target ids come from auto-increment (hooks, requests), tracks each under the
   * id it got (in the same transaction), and reports every row's outcome. Nothing is written on a dry run.
   */
  private async importWithNewIds<R extends {id: number; phid: string}>(
    store: Storage,
    options: {sourceTable: string; targetTable: 'taskd_webhooks' | 'taskd_webhook_requests'; rows: R[]; insert: (chunk: R[]) => Promise<unknown>; problemOf: (row: R) => string | null},
  ): Promise<RowResult[]> {
    const {sourceTable, targetTable, rows, problemOf} = options
    if (rows.length > 0 && !this.dryRun) {
      const before = await store.db.selectFrom(targetTable).select(sql<number | null>`max(id)`.as('m')).executeTakeFirst()
      await insertChunked(rows, options.insert)
      const ids = await this.newIds(store, targetTable, Number(before?.m ?? 0), rows.map((r) => r.id))
      const now = store.now()
      await this.track(
        store,
        rows.map((r) => {
          const problem = problemOf(r)
          return {source_table: sourceTable, legacy_id: r.id, legacy_phid: r.phid, outcome: problem ? 'failed' : 'imported', target_table: targetTable, target_id: ids.get(r.id) ?? null, detail: problem, imported_at: now}
        }),
      )
    }
    return rows.map((r) => {
      const problem = problemOf(r)
      return {legacyId: r.id, outcome: problem ? 'failed' : 'imported', reason: problem ?? undefined}
    })
  }

  /** Ids the target gave rows just inserted (auto-increment), by legacy id. */
  private async newIds(store: Storage, table: 'taskd_webhooks' | 'taskd_webhook_requests', maxBefore: number, legacyIds: readonly number[]): Promise<Map<number, number>> {
    const map = new Map<number, number>()
    for (let i = 0; i < legacyIds.length; i += INSERT_CHUNK) {
      const rows = await store.db
        .selectFrom(table)
        .select(['id', 'legacy_id'])
        .where('id', '>', maxBefore)
        .where('legacy_id', 'in', legacyIds.slice(i, i + INSERT_CHUNK))
        .execute()
      for (const r of rows) map.set(Number(r.legacy_id), Number(r.id))
    }
    return map
  }

  /** Hook PHID → taskd id, from the tracking table (and, in a dry run, the hooks it would import). */
  private async loadHookTargets(): Promise<void> {
    if (this.hookTargets.size > 0) return
    const rows = await this.storage.db
      .selectFrom('taskd_legacy_imports')
      .select(['legacy_phid', 'target_id'])
      .where('source_table', '=', this.source.qualified('herald_webhook'))
      .execute()
    for (const r of rows) if (r.legacy_phid !== null && r.target_id !== null) this.hookTargets.set(r.legacy_phid, Number(r.target_id))
    if (this.dryRun) {
      for (let after = 0; ; ) {
        const hooks = await this.source.hooks(after, MAX_BATCH_SIZE)
        if (hooks.length === 0) break
        after = hooks[hooks.length - 1].id
        for (const h of hooks) if (!this.hookTargets.has(h.phid)) this.hookTargets.set(h.phid, -1)
      }
    }
  }

  // ---- herald_webhookrequest ------------------------------------------------------------------

  private async requestBatch(rows: Awaited<ReturnType<LegacySource['requests']>>): Promise<RowResult[]> {
    await this.loadHookTargets()
    const sourceTable = this.source.qualified('herald_webhookrequest')
    const orphanHooks = [...new Set(rows.filter((r) => !this.hookTargets.has(r.webhookPHID)).map((r) => r.webhookPHID))]
    const existing = await this.source.existingHookPhids(orphanHooks)
    return this.inTarget(async (store) => {
      const tracked = await this.tracked(store, sourceTable, rows.map((r) => r.id))
      const out: RowResult[] = []
      const fresh: typeof rows = []
      for (const r of rows) {
        const done = this.already(r.id, tracked)
        if (done) out.push(done)
        else if (!this.hookTargets.has(r.webhookPHID)) {
          const why = existing.has(r.webhookPHID) ? `its hook ${r.webhookPHID} was not migrated (created during the run?): rerun` : `its hook ${r.webhookPHID} does not exist in ${this.source.qualified('herald_webhook')}`
          out.push({legacyId: r.id, outcome: 'skipped', reason: why})
        } else fresh.push(r)
      }
      out.push(
        ...(await this.importWithNewIds(store, {
          sourceTable,
          targetTable: 'taskd_webhook_requests',
          rows: fresh,
          insert: (chunk) =>
            store.db
              .insertInto('taskd_webhook_requests')
              .values(chunk.map((r) => ({...requestRow(r), hook_id: this.hookTargets.get(r.webhookPHID) ?? 0})))
              .execute(),
          problemOf: requestProblem,
        })),
      )
      return out
    })
  }

  // ---- worker_activetask ----------------------------------------------------------------------

  private async activeBatch(rows: Awaited<ReturnType<LegacySource['activeTasks']>>): Promise<RowResult[]> {
    const sourceTable = this.source.qualified('worker_activetask')
    const requestsTable = this.source.qualified('herald_webhookrequest')
    const webhookPhids = new Map<number, string | null>()
    for (const r of rows) if (r.taskClass === WEBHOOK_WORKER_CLASS) webhookPhids.set(r.id, webhookRequestPhid(r.data))
    const phids = [...new Set([...webhookPhids.values()].filter((p): p is string => p !== null))]
    const inSource = await this.source.requestsByPhid(phids)

    return this.inTarget(async (store) => {
      const tracked = await this.tracked(store, sourceTable, rows.map((r) => r.id))
      const requestTargets = new Map<string, number>()
      if (phids.length > 0) {
        const found = await store.db
          .selectFrom('taskd_legacy_imports')
          .select(['legacy_phid', 'target_id', 'outcome'])
          .where('source_table', '=', requestsTable)
          .where('legacy_phid', 'in', phids)
          .execute()
        for (const f of found) if (f.legacy_phid !== null) requestTargets.set(f.legacy_phid, Number(f.target_id ?? 0))
      }

      const out: RowResult[] = []
      const queue: {row: (typeof rows)[number]; values: Omit<TaskValues, 'id'>; lease: LeaseKind}[] = []
      const failed: {row: (typeof rows)[number]; values: Omit<ArchiveValues, 'id'>; reason: string}[] = []
      const converted: {row: (typeof rows)[number]; requestId: number | null; phid: string}[] = []

      for (const row of rows) {
        const base = {taskClass: row.taskClass, dataId: row.dataID}
        const done = this.already(row.id, tracked, {...base, queued: tracked.get(row.id)?.outcome === 'imported'})
        if (done) {
          out.push(done)
          continue
        }
        if (row.taskClass === WEBHOOK_WORKER_CLASS) {
          const phid = webhookPhids.get(row.id) ?? null
          if (phid === null) {
            const reason = `a ${WEBHOOK_WORKER_CLASS} task whose data names no webhook request (${dataProblem(row) ?? 'no webhookRequestPHID'})`
            failed.push({row, values: failedActiveTaskRow(row, reason, this.now, this.classMap), reason})
            continue
          }
          const target = requestTargets.get(phid)
          const legacy = inSource.get(phid)
          if (target !== undefined) converted.push({row, requestId: target, phid})
          else if (legacy && legacy.hookExists && this.dryRun) converted.push({row, requestId: null, phid})
          else if (legacy) {
            const why = legacy.hookExists ? 'was not migrated (created during the run?): rerun' : 'was skipped: its hook does not exist'
            out.push({...base, legacyId: row.id, outcome: 'skipped', reason: `its webhook request ${phid} (#${legacy.id}) ${why}`})
          } else {
            const reason = `its webhook request ${phid} no longer exists (garbage-collected); Phabricator would fail it permanently`
            failed.push({row, values: failedActiveTaskRow(row, reason, this.now, this.classMap), reason})
          }
          continue
        }
        const problem = dataProblem(row)
        if (problem) {
          failed.push({row, values: failedActiveTaskRow(row, problem, this.now, this.classMap), reason: problem})
          continue
        }
        const lease = mapLease(row, this.now, Boolean(this.options.keepLeases))
        queue.push({row, values: activeTaskRow(row, lease, this.classMap), lease: lease.kind})
      }

      // Ids: the legacy id where it is free in both task tables, else a new one from taskd's sequence.
      const free = await freeTaskIds(store, [...queue.map((q) => q.row.id), ...failed.map((f) => f.row.id)])
      const idFor = async (legacyId: number): Promise<number> => (free.has(legacyId) ? legacyId : this.dryRun ? -1 : allocateTaskId(store))
      const now = store.now()
      const tracking: Insertable<LegacyImportsTable>[] = []
      const tasks: TaskValues[] = []
      for (const q of queue) {
        const id = await idFor(q.row.id)
        tasks.push({...q.values, id})
        tracking.push({source_table: sourceTable, legacy_id: q.row.id, legacy_phid: null, outcome: 'imported', target_table: 'taskd_tasks', target_id: id, detail: q.lease, imported_at: now})
        out.push({legacyId: q.row.id, outcome: 'imported', taskClass: q.row.taskClass, dataId: q.row.dataID, queued: true, leaseKind: q.lease, idKept: free.has(q.row.id)})
      }
      const archived: ArchiveValues[] = []
      for (const f of failed) {
        const id = await idFor(f.row.id)
        archived.push({...f.values, id})
        tracking.push({source_table: sourceTable, legacy_id: f.row.id, legacy_phid: null, outcome: 'failed', target_table: 'taskd_task_archive', target_id: id, detail: f.reason, imported_at: now})
        out.push({legacyId: f.row.id, outcome: 'failed', reason: f.reason, taskClass: f.row.taskClass, dataId: f.row.dataID, idKept: free.has(f.row.id)})
      }
      for (const c of converted) {
        tracking.push({
          source_table: sourceTable,
          legacy_id: c.row.id,
          legacy_phid: null,
          outcome: 'converted',
          target_table: 'taskd_webhook_requests',
          target_id: c.requestId,
          detail: `webhook request ${c.phid}`,
          imported_at: now,
        })
        out.push({legacyId: c.row.id, outcome: 'converted', taskClass: c.row.taskClass, dataId: c.row.dataID})
      }
      if (!this.dryRun) {
        await insertChunked(tasks, (chunk) => store.db.insertInto('taskd_tasks').values(chunk).execute())
        await insertChunked(archived, (chunk) => store.db.insertInto('taskd_task_archive').values(chunk).execute())
        await this.track(store, tracking)
      }
      return out
    })
  }

  // ---- worker_archivetask ---------------------------------------------------------------------

  private async archiveBatch(rows: Awaited<ReturnType<LegacySource['archivedTasks']>>): Promise<RowResult[]> {
    const sourceTable = this.source.qualified('worker_archivetask')
    return this.inTarget(async (store) => {
      const tracked = await this.tracked(store, sourceTable, rows.map((r) => r.id))
      const out: RowResult[] = []
      const fresh = rows.filter((r) => {
        const done = this.already(r.id, tracked, {taskClass: r.taskClass, dataId: r.dataID})
        if (done) out.push(done)
        return !done
      })
      const free = await freeTaskIds(store, fresh.map((r) => r.id))
      const now = store.now()
      const values: ArchiveValues[] = []
      const tracking: Insertable<LegacyImportsTable>[] = []
      for (const r of fresh) {
        const id = free.has(r.id) ? r.id : this.dryRun ? -1 : await allocateTaskId(store)
        const problem = archiveProblem(r)
        values.push({...archiveTaskRow(r, this.classMap), id})
        tracking.push({source_table: sourceTable, legacy_id: r.id, legacy_phid: null, outcome: problem ? 'failed' : 'imported', target_table: 'taskd_task_archive', target_id: id, detail: problem, imported_at: now})
        out.push({legacyId: r.id, outcome: problem ? 'failed' : 'imported', reason: problem ?? undefined, taskClass: r.taskClass, dataId: r.dataID, idKept: free.has(r.id)})
      }
      if (!this.dryRun) {
        await insertChunked(values, (chunk) => store.db.insertInto('taskd_task_archive').values(chunk).execute())
        await this.track(store, tracking)
      }
      return out
    })
  }

  private finish(started: number): LegacyMigrationReport {
    const report = this.report
    report.classes = [...this.classes.values()].sort((a, b) => b.active + b.archived - (a.active + a.archived) || a.taskClass.localeCompare(b.taskClass))
    const unhandled = new Map<string, number>()
    for (const c of report.classes) if (c.queued > 0 && !c.handled) unhandled.set(c.targetClass, (unhandled.get(c.targetClass) ?? 0) + c.queued)
    report.unhandledClasses = [...unhandled].map(([taskClass, count]) => ({taskClass, count})).sort((a, b) => b.count - a.count || a.taskClass.localeCompare(b.taskClass))
    report.problems.sort((a, b) => TABLES.indexOf(a.table) - TABLES.indexOf(b.table) || a.legacyId - b.legacyId)
    report.seconds = (Date.now() - started) / 1000
    report.rowsPerSecond = Math.round(report.rowsRead / Math.max(report.seconds, 0.001))
    return report
  }
}

/** Moves a Phabricator-shaped queue and webhooks into taskd (see LegacyMigration). */
export async function migrateLegacy(storage: Storage, source: LegacySource, options: LegacyMigrationOptions): Promise<LegacyMigrationReport> {
  return new LegacyMigration(storage, source, options).run()
}
