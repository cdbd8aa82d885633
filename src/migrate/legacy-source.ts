import {Kysely, MysqlDialect, sql, type RawBuilder} from 'kysely'
import {createPool} from 'mysql2'

import {TaskdError, usageError} from '../core/errors.js'
import {redactUrl} from '../storage/url.js'

/**
 * The read side of `taskd migrate legacy`: a Phabricator-shaped MySQL/MariaDB server whose queue
 * lives in `<namespace>_worker` and whose webhooks live in `<namespace>_herald`. Rows come back
 * normalised (varbinary PHIDs as strings, unsigned bigints as numbers); nothing here writes,
 * except `deleteRows` for `--delete-migrated`.
 */

export interface LegacySourceTarget {
  host: string
  port: number
  user: string
  password: string
  /** Safe to print: `mysql://user:***@host:port`. The URL's database part is ignored. */
  url: string
}

const EXPECTED = 'expected mysql://user[:password]@host[:port][/ignored]'

/**
 * Parses `--source`. The database part of the URL may be omitted and is ignored when present: the
 * schemas are always `<namespace>_worker` and `<namespace>_herald` (one server holds them all).
 */
export function parseSourceUrl(input: string): LegacySourceTarget {
  const raw = input.trim()
  if (!/^(mysql|mariadb):\/\//i.test(raw)) throw usageError(`invalid --source '${redactUrl(raw)}': ${EXPECTED}`, 'E_BAD_URL')
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    throw usageError(`invalid --source '${redactUrl(raw)}': ${EXPECTED}`, 'E_BAD_URL')
  }
  if (!parsed.hostname) throw usageError(`invalid --source '${redactUrl(raw)}': ${EXPECTED} (the host is required)`, 'E_BAD_URL')
  const port = parsed.port ? Number(parsed.port) : 3306
  const user = decodeURIComponent(parsed.username || 'root')
  const password = decodeURIComponent(parsed.password)
  const url = `mysql://${encodeURIComponent(user)}${password ? ':***' : ''}@${parsed.hostname}:${port}`
  return {host: parsed.hostname, port, user, password, url}
}

export function checkNamespace(namespace: string): string {
  if (!/^[A-Za-z0-9_]{1,56}$/.test(namespace)) throw usageError(`invalid --namespace '${namespace}': expected letters, digits and _ (the schemas are <namespace>_worker and <namespace>_herald)`)
  return namespace
}

/** An active (`worker_activetask`) row with its payload (`worker_taskdata.data`, null when the row is missing). */
export interface LegacyTaskRow {
  id: number
  taskClass: string
  leaseOwner: string | null
  leaseExpires: number | null
  failureCount: number
  failureTime: number | null
  priority: number
  objectPHID: string | null
  containerPHID: string | null
  dataID: number | null
  /** The payload text; null when dataID is null or names no worker_taskdata row. */
  data: string | null
  dateCreated: number
  dateModified: number
}

/** An archived (`worker_archivetask`) row with its payload. */
export interface LegacyArchiveRow extends Omit<LegacyTaskRow, 'failureTime'> {
  result: number
  duration: number
  archivedEpoch: number | null
}

export interface LegacyHookRow {
  id: number
  phid: string
  name: string
  webhookURI: string
  status: string
  hmacKey: string
  dateCreated: number
  dateModified: number
}

export interface LegacyRequestRow {
  id: number
  phid: string
  webhookPHID: string
  objectPHID: string
  status: string
  properties: string
  lastRequestResult: string
  lastRequestEpoch: number
  dateCreated: number
  dateModified: number
}

export type LegacyTableKey = 'herald_webhook' | 'herald_webhookrequest' | 'worker_activetask' | 'worker_archivetask'

type RawValue = string | number | bigint | Buffer | null | undefined

/** varbinary/varchar values arrive as Buffer or string depending on the column's charset. */
function text(value: RawValue): string {
  if (value === null || value === undefined) return ''
  return Buffer.isBuffer(value) ? value.toString('utf8') : String(value)
}

function textOrNull(value: RawValue): string | null {
  return value === null || value === undefined ? null : text(value)
}

function num(value: RawValue): number {
  return Number(Buffer.isBuffer(value) ? value.toString('utf8') : value)
}

function numOrNull(value: RawValue): number | null {
  return value === null || value === undefined ? null : num(value)
}

type RawRow = Record<string, RawValue>

/** An open connection to the legacy server. Close it with `close()`. */
export class LegacySource {
  private columnCache = new Map<string, Set<string>>()

  private constructor(
    private readonly db: Kysely<unknown>,
    readonly target: LegacySourceTarget,
    readonly namespace: string,
  ) {}

  static async open(urlOrTarget: string | LegacySourceTarget, namespace: string): Promise<LegacySource> {
    const target = typeof urlOrTarget === 'string' ? parseSourceUrl(urlOrTarget) : urlOrTarget
    const pool = createPool({
      host: target.host,
      port: target.port,
      user: target.user,
      password: target.password,
      connectionLimit: 2,
      supportBigNumbers: true,
      connectTimeout: 5000,
      charset: 'utf8mb4',
    })
    // mysql2's pool type and kysely's MysqlPool differ only in overload signatures.
    const db = new Kysely<unknown>({dialect: new MysqlDialect({pool: pool as never})})
    const source = new LegacySource(db, target, checkNamespace(namespace))
    try {
      await sql`select 1`.execute(db)
    } catch (error) {
      await db.destroy().catch(() => undefined)
      const code = (error as {code?: string}).code ?? 'error'
      const where = `${target.host}:${target.port}`
      const message =
        code === 'ER_ACCESS_DENIED_ERROR'
          ? `the legacy MySQL at ${where} refused user '${target.user}' (${code}): check the user and password in --source`
          : `cannot reach the legacy MySQL at ${where} (${code}): check --source`
      throw new TaskdError('E_DB_UNREACHABLE', message, {cause: error})
    }
    return source
  }

  get workerSchema(): string {
    return `${this.namespace}_worker`
  }

  get heraldSchema(): string {
    return `${this.namespace}_herald`
  }

  schemaOf(table: LegacyTableKey): string {
    return table.startsWith('herald_') ? this.heraldSchema : this.workerSchema
  }

  /** `<schema>.<table>`: the key of a source table in the tracking table. */
  qualified(table: LegacyTableKey): string {
    return `${this.schemaOf(table)}.${table}`
  }

  private ref(schema: string, table: string): RawBuilder<unknown> {
    return sql.id(schema, table)
  }

  /** The columns of a source table (empty when the table does not exist). */
  async columns(schema: string, table: string): Promise<Set<string>> {
    const key = `${schema}.${table}`
    const cached = this.columnCache.get(key)
    if (cached) return cached
    const {rows} = await sql<{c: RawValue}>`select column_name as c from information_schema.columns where table_schema = ${schema} and table_name = ${table}`.execute(this.db)
    const set = new Set(rows.map((r) => text(r.c)))
    this.columnCache.set(key, set)
    return set
  }

  async hasTable(table: LegacyTableKey): Promise<boolean> {
    return (await this.columns(this.schemaOf(table), table)).size > 0
  }

  /** The source database's clock (Phabricator measures leases on it). */
  async now(): Promise<number> {
    const {rows} = await sql<{t: RawValue}>`select unix_timestamp() as t`.execute(this.db)
    return num(rows[0].t)
  }

  async count(table: LegacyTableKey): Promise<number> {
    const {rows} = await sql<{n: RawValue}>`select count(*) as n from ${this.ref(this.schemaOf(table), table)}`.execute(this.db)
    return num(rows[0].n)
  }

  /** The largest id the legacy queue ever handed out: the counter, and the ids in both task tables. */
  async highestTaskId(): Promise<number> {
    let highest = 0
    const counter = await this.columns(this.workerSchema, 'lisk_counter')
    if (counter.size > 0) {
      const {rows} = await sql<{v: RawValue}>`select counterValue as v from ${this.ref(this.workerSchema, 'lisk_counter')} where counterName = 'worker_activetask'`.execute(this.db)
      if (rows[0]) highest = num(rows[0].v)
    }
    for (const table of ['worker_activetask', 'worker_archivetask'] as const) {
      if (!(await this.hasTable(table))) continue
      const {rows} = await sql<{v: RawValue}>`select max(id) as v from ${this.ref(this.workerSchema, table)}`.execute(this.db)
      highest = Math.max(highest, numOrNull(rows[0]?.v) ?? 0)
    }
    return highest
  }

  /** Column expression, or NULL when an older install lacks the column (containerPHID is from 2021). */
  private async optional(table: string, column: string, fallback: RawBuilder<unknown> = sql`null`): Promise<RawBuilder<unknown>> {
    const columns = await this.columns(this.workerSchema, table)
    return columns.has(column) ? sql`t.${sql.id(column)}` : fallback
  }

  /** Active tasks after `afterId`, by id, with their payload. */
  async activeTasks(afterId: number, limit: number): Promise<LegacyTaskRow[]> {
    const container = await this.optional('worker_activetask', 'containerPHID')
    const created = await this.optional('worker_activetask', 'dateCreated', sql`t.dateModified`)
    const {rows} = await sql<RawRow>`
      select t.id, t.taskClass, t.leaseOwner, t.leaseExpires, t.failureCount, t.failureTime, t.priority,
        t.objectPHID, ${container} as containerPHID, t.dataID, d.data as data, ${created} as dateCreated, t.dateModified
      from ${this.ref(this.workerSchema, 'worker_activetask')} t
      left join ${this.ref(this.workerSchema, 'worker_taskdata')} d on d.id = t.dataID
      where t.id > ${afterId} order by t.id limit ${limit}`.execute(this.db)
    return rows.map((r) => ({
      id: num(r.id),
      taskClass: text(r.taskClass),
      leaseOwner: textOrNull(r.leaseOwner),
      leaseExpires: numOrNull(r.leaseExpires),
      failureCount: num(r.failureCount),
      failureTime: numOrNull(r.failureTime),
      priority: num(r.priority),
      objectPHID: textOrNull(r.objectPHID),
      containerPHID: textOrNull(r.containerPHID),
      dataID: numOrNull(r.dataID),
      data: textOrNull(r.data),
      dateCreated: num(r.dateCreated),
      dateModified: num(r.dateModified),
    }))
  }

  /** Active tasks' ids and classes only (the unhandled-class check before a real run). */
  async activeClasses(afterId: number, limit: number): Promise<{id: number; taskClass: string}[]> {
    const {rows} = await sql<RawRow>`select id, taskClass from ${this.ref(this.workerSchema, 'worker_activetask')} where id > ${afterId} order by id limit ${limit}`.execute(this.db)
    return rows.map((r) => ({id: num(r.id), taskClass: text(r.taskClass)}))
  }

  async archivedTasks(afterId: number, limit: number): Promise<LegacyArchiveRow[]> {
    const container = await this.optional('worker_archivetask', 'containerPHID')
    const archived = await this.optional('worker_archivetask', 'archivedEpoch')
    const {rows} = await sql<RawRow>`
      select t.id, t.taskClass, t.leaseOwner, t.leaseExpires, t.failureCount, t.priority, t.objectPHID,
        ${container} as containerPHID, t.dataID, d.data as data, t.result, t.duration, ${archived} as archivedEpoch,
        t.dateCreated, t.dateModified
      from ${this.ref(this.workerSchema, 'worker_archivetask')} t
      left join ${this.ref(this.workerSchema, 'worker_taskdata')} d on d.id = t.dataID
      where t.id > ${afterId} order by t.id limit ${limit}`.execute(this.db)
    return rows.map((r) => ({
      id: num(r.id),
      taskClass: text(r.taskClass),
      leaseOwner: textOrNull(r.leaseOwner),
      leaseExpires: numOrNull(r.leaseExpires),
      failureCount: num(r.failureCount),
      priority: num(r.priority),
      objectPHID: textOrNull(r.objectPHID),
      containerPHID: textOrNull(r.containerPHID),
      dataID: numOrNull(r.dataID),
      data: textOrNull(r.data),
      result: num(r.result),
      duration: num(r.duration),
      archivedEpoch: numOrNull(r.archivedEpoch),
      dateCreated: num(r.dateCreated),
      dateModified: num(r.dateModified),
    }))
  }

  async hooks(afterId: number, limit: number): Promise<LegacyHookRow[]> {
    const {rows} = await sql<RawRow>`
      select id, phid, name, webhookURI, status, hmacKey, dateCreated, dateModified
      from ${this.ref(this.heraldSchema, 'herald_webhook')} where id > ${afterId} order by id limit ${limit}`.execute(this.db)
    return rows.map((r) => ({
      id: num(r.id),
      phid: text(r.phid),
      name: text(r.name),
      webhookURI: text(r.webhookURI),
      status: text(r.status),
      hmacKey: text(r.hmacKey),
      dateCreated: num(r.dateCreated),
      dateModified: num(r.dateModified),
    }))
  }

  async requests(afterId: number, limit: number): Promise<LegacyRequestRow[]> {
    const {rows} = await sql<RawRow>`
      select id, phid, webhookPHID, objectPHID, status, properties, lastRequestResult, lastRequestEpoch, dateCreated, dateModified
      from ${this.ref(this.heraldSchema, 'herald_webhookrequest')} where id > ${afterId} order by id limit ${limit}`.execute(this.db)
    return rows.map((r) => ({
      id: num(r.id),
      phid: text(r.phid),
      webhookPHID: text(r.webhookPHID),
      objectPHID: text(r.objectPHID),
      status: text(r.status),
      properties: text(r.properties),
      lastRequestResult: text(r.lastRequestResult),
      lastRequestEpoch: num(r.lastRequestEpoch),
      dateCreated: num(r.dateCreated),
      dateModified: num(r.dateModified),
    }))
  }

  /** Webhook requests by PHID (for floating `HeraldWebhookWorker` tasks), with whether their hook exists. */
  async requestsByPhid(phids: readonly string[]): Promise<Map<string, {id: number; hookExists: boolean}>> {
    const found = new Map<string, {id: number; hookExists: boolean}>()
    if (phids.length === 0 || !(await this.hasTable('herald_webhookrequest'))) return found
    const {rows} = await sql<RawRow>`
      select r.id, r.phid, h.id as hookId
      from ${this.ref(this.heraldSchema, 'herald_webhookrequest')} r
      left join ${this.ref(this.heraldSchema, 'herald_webhook')} h on h.phid = r.webhookPHID
      where r.phid in (${sql.join([...phids])})`.execute(this.db)
    for (const r of rows) found.set(text(r.phid), {id: num(r.id), hookExists: r.hookId !== null && r.hookId !== undefined})
    return found
  }

  /** Hook PHIDs that exist in the source. */
  async existingHookPhids(phids: readonly string[]): Promise<Set<string>> {
    if (phids.length === 0) return new Set()
    const {rows} = await sql<RawRow>`select phid from ${this.ref(this.heraldSchema, 'herald_webhook')} where phid in (${sql.join([...phids])})`.execute(this.db)
    return new Set(rows.map((r) => text(r.phid)))
  }

  /**
   * `--delete-migrated`: deletes source rows (already committed in the target), and for task tables
   * their payload rows unless another task row still points at them. One source transaction.
   */
  async deleteRows(table: LegacyTableKey, ids: readonly number[], dataIds: readonly number[] = []): Promise<number> {
    if (ids.length === 0) return 0
    return this.db.transaction().execute(async (trx) => {
      // One primary-key lookup per row: with `id IN (…)` over a large part of a small table InnoDB
      // scans (and so locks) every row, and would wait on rows it is not deleting.
      let deleted = 0
      for (const id of ids) {
        const result = await sql`delete from ${this.ref(this.schemaOf(table), table)} where id = ${id}`.execute(trx)
        deleted += Number(result.numAffectedRows ?? 0)
      }
      const data = new Set(dataIds)
      if (data.size > 0) {
        // Plain (non-locking) reads: a DELETE … WHERE id NOT IN (SELECT …) would lock every row it scans.
        const candidates = sql.join([...data])
        for (const table of ['worker_activetask', 'worker_archivetask'] as const) {
          if (!(await this.hasTable(table))) continue
          const {rows} = await sql<{d: RawValue}>`select dataID as d from ${this.ref(this.workerSchema, table)} where dataID in (${candidates})`.execute(trx)
          for (const r of rows) data.delete(num(r.d))
        }
        for (const id of data) await sql`delete from ${this.ref(this.workerSchema, 'worker_taskdata')} where id = ${id}`.execute(trx)
      }
      return deleted
    })
  }

  async close(): Promise<void> {
    await this.db.destroy()
  }
}
