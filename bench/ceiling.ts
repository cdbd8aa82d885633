/**
 * The in-run ceilings: the same work written directly against the driver (better-sqlite3 prepared
 * statements, one mysql2 connection with the text protocol kysely uses), no kysely and no taskd. Every
 * scenario's ceiling_ratio reads against one of these, measured minutes before on the same machine.
 */
import type {Database, Statement} from 'better-sqlite3'
import type {ResultSetHeader, RowDataPacket} from 'mysql2/promise'

import type {RawHandle} from './databases.js'
import {nowMs} from './stats.js'

/** Rows per claim, as in the reference figure (claim of 100 rows + delete). */
export const CEILING_BATCH = 100
/** Rows per multi-row INSERT and per transaction, as enqueueTasks and `taskd tasks flood` use. */
export const INSERT_CHUNK = 1000
export const INSERT_PER_TRANSACTION = 10_000

const READY_SQL = (limit: number, lock: boolean) =>
  `SELECT * FROM taskd_tasks WHERE lease_owner IS NULL AND available_at <= ? ORDER BY priority, id LIMIT ${limit}${lock ? ' FOR UPDATE SKIP LOCKED' : ''}`
const statements = new WeakMap<Database, Map<string, Statement>>()
/** A prepared statement, prepared once per connection (the better-sqlite3 idiom). */
function cached(db: Database, sql: string): Statement {
  let byText = statements.get(db)
  if (!byText) statements.set(db, (byText = new Map()))
  let statement = byText.get(sql)
  if (!statement) byText.set(sql, (statement = db.prepare(sql)))
  return statement
}
const placeholders = (n: number) => Array.from({length: n}, () => '?').join(',')
const epoch = () => Math.floor(Date.now() / 1000)

interface ClaimedRow {
  id: number
}

/**
 * Claim-and-delete: in one transaction, claim up to 100 ready rows (FOR UPDATE SKIP LOCKED on
 * MariaDB, BEGIN IMMEDIATE on SQLite) and delete them. Drains the table; returns rows/s.
 */
export async function claimDeleteCycle(raw: RawHandle): Promise<{rows: number; ms: number}> {
  let rows = 0
  const start = nowMs()
  if (raw.kind === 'sqlite') {
    const {db} = raw
    const begin = db.prepare('BEGIN IMMEDIATE')
    const commit = db.prepare('COMMIT')
    const select = db.prepare(READY_SQL(CEILING_BATCH, false))
    const deletes = new Map<number, Statement>()
    for (;;) {
      begin.run()
      const claimed = select.all(epoch()) as ClaimedRow[]
      if (claimed.length > 0) {
        let del = deletes.get(claimed.length)
        if (!del) deletes.set(claimed.length, (del = db.prepare(`DELETE FROM taskd_tasks WHERE id IN (${placeholders(claimed.length)})`)))
        del.run(...claimed.map((r) => r.id))
      }
      commit.run()
      if (claimed.length === 0) break
      rows += claimed.length
    }
  } else {
    const {conn} = raw
    for (;;) {
      await conn.query('BEGIN')
      const [claimed] = await conn.query<RowDataPacket[]>(READY_SQL(CEILING_BATCH, true), [epoch()])
      if (claimed.length > 0) await conn.query(`DELETE FROM taskd_tasks WHERE id IN (${placeholders(claimed.length)})`, claimed.map((r) => r.id))
      await conn.query('COMMIT')
      if (claimed.length === 0) break
      rows += claimed.length
    }
  }
  return {rows, ms: nowMs() - start}
}

const ARCHIVE_SQL = (n: number) => `INSERT INTO taskd_task_archive
  (id, task_class, priority, data, object_ref, container_ref, attempts, failure_count, result, reason, duration_us, created_at, archived_at, legacy_id)
  SELECT id, task_class, priority, data, object_ref, container_ref, attempts, failure_count, 0, NULL, 10, created_at, ?, legacy_id
  FROM taskd_tasks WHERE id IN (${placeholders(n)})`

/**
 * taskd's own SQL for one batch, with no library in between: lease (claim + update owner and
 * expiry, one transaction), then archive (owner fence, copy to the archive, delete, one transaction).
 * The gap between this and claim-and-delete is the cost of the queue's design (two-phase lease,
 * archive); the gap between this and a drain is the cost of the code.
 */
export async function leaseArchiveCycle(raw: RawHandle, batch: number): Promise<{rows: number; ms: number}> {
  const owner = 'bench:raw'
  let rows = 0
  const start = nowMs()
  if (raw.kind === 'sqlite') {
    const {db} = raw
    const begin = db.prepare('BEGIN IMMEDIATE')
    const commit = db.prepare('COMMIT')
    const select = db.prepare(READY_SQL(batch, false))
    const byCount = new Map<number, {lease: Statement; fence: Statement; archive: Statement; del: Statement}>()
    const statements = (n: number) => {
      let s = byCount.get(n)
      if (!s) {
        s = {
          lease: db.prepare(`UPDATE taskd_tasks SET lease_owner = ?, lease_expires = ?, attempts = attempts + 1 WHERE id IN (${placeholders(n)})`),
          fence: db.prepare(`SELECT id FROM taskd_tasks WHERE id IN (${placeholders(n)}) AND lease_owner = ?`),
          archive: db.prepare(ARCHIVE_SQL(n)),
          del: db.prepare(`DELETE FROM taskd_tasks WHERE id IN (${placeholders(n)})`),
        }
        byCount.set(n, s)
      }
      return s
    }
    for (;;) {
      begin.run()
      const claimed = select.all(epoch()) as ClaimedRow[]
      const ids = claimed.map((r) => r.id)
      if (ids.length > 0) statements(ids.length).lease.run(owner, epoch() + 60, ...ids)
      commit.run()
      if (ids.length === 0) break
      const s = statements(ids.length)
      begin.run()
      const owned = (s.fence.all(...ids, owner) as ClaimedRow[]).map((r) => r.id)
      const o = statements(owned.length)
      o.archive.run(epoch(), ...owned)
      o.del.run(...owned)
      commit.run()
      rows += owned.length
    }
  } else {
    const {conn} = raw
    for (;;) {
      await conn.query('BEGIN')
      const [claimed] = await conn.query<RowDataPacket[]>(READY_SQL(batch, true), [epoch()])
      const ids = claimed.map((r) => Number(r.id))
      if (ids.length > 0) await conn.query(`UPDATE taskd_tasks SET lease_owner = ?, lease_expires = ?, attempts = attempts + 1 WHERE id IN (${placeholders(ids.length)})`, [owner, epoch() + 60, ...ids])
      await conn.query('COMMIT')
      if (ids.length === 0) break
      await conn.query('BEGIN')
      const [fenced] = await conn.query<RowDataPacket[]>(`SELECT id FROM taskd_tasks WHERE id IN (${placeholders(ids.length)}) AND lease_owner = ? FOR UPDATE`, [...ids, owner])
      const owned = fenced.map((r) => Number(r.id))
      await conn.query(ARCHIVE_SQL(owned.length), [epoch(), ...owned])
      await conn.query(`DELETE FROM taskd_tasks WHERE id IN (${placeholders(owned.length)})`, owned)
      await conn.query('COMMIT')
      rows += owned.length
    }
  }
  return {rows, ms: nowMs() - start}
}

/** Multi-row INSERTs of 1000 rows, 10,000 rows per transaction: the most enqueueTasks could do. */
export async function insertCycle(raw: RawHandle, count: number): Promise<{rows: number; ms: number}> {
  const t = epoch()
  const row = (i: number): unknown[] => ['taskd.noop', 2000, JSON.stringify({n: i}), null, null, t, t]
  const columns = '(task_class, priority, data, object_ref, container_ref, available_at, created_at)'
  const start = nowMs()
  if (raw.kind === 'sqlite') {
    const {db} = raw
    const begin = db.prepare('BEGIN IMMEDIATE')
    const commit = db.prepare('COMMIT')
    const byCount = new Map<number, Statement>()
    for (let done = 0; done < count; ) {
      begin.run()
      const end = Math.min(count, done + INSERT_PER_TRANSACTION)
      while (done < end) {
        const n = Math.min(INSERT_CHUNK, end - done)
        let insert = byCount.get(n)
        if (!insert) byCount.set(n, (insert = db.prepare(`INSERT INTO taskd_tasks ${columns} VALUES ${Array.from({length: n}, () => '(?,?,?,?,?,?,?)').join(',')}`)))
        const params: unknown[] = []
        for (let i = 0; i < n; i++) params.push(...row(done + i))
        insert.run(...params)
        done += n
      }
      commit.run()
    }
  } else {
    const {conn} = raw
    for (let done = 0; done < count; ) {
      await conn.query('BEGIN')
      const end = Math.min(count, done + INSERT_PER_TRANSACTION)
      while (done < end) {
        const n = Math.min(INSERT_CHUNK, end - done)
        const params: unknown[] = []
        for (let i = 0; i < n; i++) params.push(...row(done + i))
        await conn.query<ResultSetHeader>(`INSERT INTO taskd_tasks ${columns} VALUES ${Array.from({length: n}, () => '(?,?,?,?,?,?,?)').join(',')}`, params)
        done += n
      }
      await conn.query('COMMIT')
    }
  }
  return {rows: count, ms: nowMs() - start}
}

/** Mean milliseconds of the cheapest possible query (`SELECT 1`): the floor under any latency. */
export async function roundtrip(raw: RawHandle, count: number): Promise<number> {
  const start = nowMs()
  if (raw.kind === 'sqlite') {
    const one = raw.db.prepare('SELECT 1 AS one')
    for (let i = 0; i < count; i++) one.get()
  } else {
    for (let i = 0; i < count; i++) await raw.conn.query('SELECT 1 AS one')
  }
  return (nowMs() - start) / count
}

/** The GC collector's batch: delete archived rows older than the cutoff, 1000 at a time, oldest first. */
export async function gcDeleteLoop(raw: RawHandle, cutoff: number, batch = 1000): Promise<{rows: number; ms: number; batches: number}> {
  const sql = `DELETE FROM taskd_task_archive WHERE archived_at < ? ORDER BY archived_at LIMIT ${batch}`
  let rows = 0
  let batches = 0
  const start = nowMs()
  if (raw.kind === 'sqlite') {
    const del = raw.db.prepare(sql)
    for (;;) {
      const {changes} = del.run(cutoff)
      batches++
      rows += changes
      if (changes < batch) break
    }
  } else {
    for (;;) {
      const [result] = await raw.conn.query<ResultSetHeader>(sql, [cutoff])
      batches++
      rows += result.affectedRows
      if (result.affectedRows < batch) break
    }
  }
  return {rows, ms: nowMs() - start, batches}
}

/**
 * Hand-off: insert one task (autocommit), then claim and delete it (one transaction): the
 * shortest enqueue→start a queue on this database could have with no polling at all. Mean ms.
 */
export async function handoff(raw: RawHandle, count: number): Promise<number> {
  const t = epoch()
  const start = nowMs()
  if (raw.kind === 'sqlite') {
    const {db} = raw
    const insert = db.prepare('INSERT INTO taskd_tasks (task_class, priority, data, available_at, created_at) VALUES (?, 2000, ?, ?, ?)')
    const begin = db.prepare('BEGIN IMMEDIATE')
    const commit = db.prepare('COMMIT')
    const select = db.prepare(READY_SQL(1, false))
    const del = db.prepare('DELETE FROM taskd_tasks WHERE id = ?')
    for (let i = 0; i < count; i++) {
      insert.run('bench.ping', '{"seq":0}', t, t)
      begin.run()
      const [row] = select.all(epoch()) as ClaimedRow[]
      del.run(row.id)
      commit.run()
    }
  } else {
    const {conn} = raw
    for (let i = 0; i < count; i++) {
      await conn.query('INSERT INTO taskd_tasks (task_class, priority, data, available_at, created_at) VALUES (?, 2000, ?, ?, ?)', ['bench.ping', '{"seq":0}', t, t])
      await conn.query('BEGIN')
      const [rows] = await conn.query<RowDataPacket[]>(READY_SQL(1, true), [epoch()])
      await conn.query('DELETE FROM taskd_tasks WHERE id = ?', [rows[0].id])
      await conn.query('COMMIT')
    }
  }
  return (nowMs() - start) / count
}

/**
 * The SQL of one scheduling round with 16 slots, raw: claim 16 ready rows and set their lease
 * (one transaction). Returns ms; the caller hands the rows back, untimed.
 */
export async function rawLeaseRound(raw: RawHandle, slots: number, owner: string): Promise<number> {
  const start = nowMs()
  if (raw.kind === 'sqlite') {
    const {db} = raw
    cached(db, 'BEGIN IMMEDIATE').run()
    const ids = (cached(db, READY_SQL(slots, false)).all(epoch()) as ClaimedRow[]).map((r) => r.id)
    cached(db, `UPDATE taskd_tasks SET lease_owner = ?, lease_expires = ?, attempts = attempts + 1 WHERE id IN (${placeholders(ids.length)})`).run(owner, epoch() + 60, ...ids)
    cached(db, 'COMMIT').run()
  } else {
    const {conn} = raw
    await conn.query('BEGIN')
    const [rows] = await conn.query<RowDataPacket[]>(READY_SQL(slots, true), [epoch()])
    const ids = rows.map((r) => Number(r.id))
    await conn.query(`UPDATE taskd_tasks SET lease_owner = ?, lease_expires = ?, attempts = attempts + 1 WHERE id IN (${placeholders(ids.length)})`, [owner, epoch() + 60, ...ids])
    await conn.query('COMMIT')
  }
  return nowMs() - start
}

/** The SQL of a peek, raw: the first `limit` ready rows, all columns, no lock. Returns ms. */
export async function rawPeek(raw: RawHandle, limit: number): Promise<number> {
  const start = nowMs()
  if (raw.kind === 'sqlite') cached(raw.db, READY_SQL(limit, false)).all(epoch())
  else await raw.conn.query(READY_SQL(limit, false), [epoch()])
  return nowMs() - start
}
