import {spawn, type ChildProcess} from 'node:child_process'
import {existsSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {sql} from 'kysely'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {MigrateLegacyResult} from '../src/commands/migrate/legacy.js'
import {mapLease, ownerEpoch, requestRow} from '../src/migrate/legacy-mapping.js'
import {parseClassMap, parseSourceUrl} from '../src/migrate/legacy.js'
import {enqueueTasks} from '../src/generators/queue/enqueue.js'
import {Storage} from '../src/storage/storage.js'
import {DIALECTS, openTestStorage, until, type TestDatabase} from './helpers/databases.js'
import {createLegacyFixture, type ActiveKind, type ActiveSpec, type ArchiveSpec, type LegacyFixture, type RequestSpec} from './helpers/legacy-fixture.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = path.join(ROOT, 'bin', 'run.js')
/** Per-test ceiling for tests that spawn the CLI: generous, the MariaDB server may be shared and busy. */
const SLOW = 150_000
const MYSQL_DOWN = DIALECTS.find((d) => d.name === 'mysql')?.skip ?? true

if (!existsSync(path.join(ROOT, 'dist', 'commands', 'migrate', 'legacy.js'))) throw new Error('dist/ is missing the migrate legacy command: run `npm run build` first (npm test does)')

interface CliRun {
  child: ChildProcess
  done: Promise<{code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string}>
}

/** Waits for a condition while the CLI runs; fails at once (with its output) if it exits first. */
async function whileRunning(run: CliRun, probe: () => Promise<boolean>, what: string): Promise<void> {
  let exited: string | null = null
  void run.done.then(({code, stdout, stderr}) => (exited = `exit ${code}: ${stdout.slice(0, 2000)} ${stderr.slice(0, 2000)}`))
  await until(
    async () => {
      if (exited !== null) throw new Error(`the CLI exited before ${what}: ${exited}`)
      return probe()
    },
    {timeoutMs: 90_000, what},
  )
}

function startCli(args: string[]): CliRun {
  const child = spawn(process.execPath, [BIN, ...args], {cwd: ROOT, env: {...process.env, NODE_ENV: 'production', TASKD_SKIP_NEW_VERSION_CHECK: 'true'}})
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const done = new Promise<{code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string}>((resolve) =>
    child.on('close', (code, signal) => resolve({code, signal, stdout, stderr})),
  )
  return {child, done}
}

async function migrate(args: string[]): Promise<{code: number | null; report: MigrateLegacyResult; stdout: string; stderr: string}> {
  const {code, stdout, stderr} = await startCli(['migrate', 'legacy', ...args, '--json']).done
  let report: MigrateLegacyResult
  try {
    report = JSON.parse(stdout) as MigrateLegacyResult
  } catch {
    throw new Error(`no JSON report (exit ${code}): ${stdout}\n${stderr}`)
  }
  return {code, report, stdout, stderr}
}

// ---- What the fixture's rows must become, stated from the fixture's kinds -------------------

const QUEUED: readonly ActiveKind[] = ['unleased', 'unarchived', 'shared-data', 'delayed', 'yielded', 'yield-over', 'leased', 'lease-expired', 'retry-wait', 'retry-due']
const FAILED_ACTIVE: readonly ActiveKind[] = ['bad-json', 'missing-data', 'webhook-gone']
const WAITS: readonly ActiveKind[] = ['delayed', 'yielded', 'retry-wait']
const LEASE_KIND: Record<string, string> = {
  unleased: 'unleased',
  unarchived: 'unleased',
  'shared-data': 'unleased',
  delayed: 'delayed',
  yielded: 'yielded',
  'yield-over': 'yield-over',
  'lease-expired': 'lease-expired',
  'retry-wait': 'retry-wait',
  'retry-due': 'retry-due',
}

const CLASS_MAP: Record<string, string> = {PhabricatorSearchWorker: 'taskd.noop', PhabricatorRepositoryCommitParserWorker: 'app.commit'}
const HANDLED = new Set(['taskd.noop', 'app.commit', 'PhabricatorMetaMTAWorker', 'PhabricatorApplicationTransactionPublishWorker'])
const mapped = (taskClass: string) => CLASS_MAP[taskClass] ?? taskClass

function expectedCounts(f: LegacyFixture) {
  const count = <T extends {kind: string}>(list: T[], kinds: readonly string[]) => list.filter((r) => kinds.includes(r.kind)).length
  const badRequests = ['bad-status', 'bad-properties']
  return {
    herald_webhook: {total: f.hooks.length, imported: f.hooks.length - count(f.hooks, ['bad-status']), converted: 0, failed: count(f.hooks, ['bad-status']), skipped: 0},
    herald_webhookrequest: {
      total: f.requests.length,
      imported: f.requests.length - count(f.requests, [...badRequests, 'orphan']),
      converted: 0,
      failed: count(f.requests, badRequests),
      skipped: count(f.requests, ['orphan']),
    },
    worker_activetask: {
      total: f.active.length,
      imported: count(f.active, QUEUED),
      converted: count(f.active, ['webhook']),
      failed: count(f.active, FAILED_ACTIVE),
      skipped: count(f.active, ['webhook-orphan']),
    },
    worker_archivetask: {
      total: f.archive.length,
      imported: f.archive.length - count(f.archive, ['bad-result', 'missing-data']),
      converted: 0,
      failed: count(f.archive, ['bad-result', 'missing-data']),
      skipped: 0,
    },
  }
}

function expectedProblemIds(f: LegacyFixture): Record<string, number[]> {
  return {
    herald_webhook: f.hooks.filter((h) => h.kind === 'bad-status').map((h) => h.id),
    herald_webhookrequest: f.requests.filter((r) => ['bad-status', 'bad-properties', 'orphan'].includes(r.kind)).map((r) => r.id),
    worker_activetask: f.active.filter((a) => [...FAILED_ACTIVE, 'webhook-orphan'].includes(a.kind)).map((a) => a.id),
    worker_archivetask: f.archive.filter((a) => ['bad-result', 'missing-data'].includes(a.kind)).map((a) => a.id),
  }
}

function checkReport(report: MigrateLegacyResult, f: LegacyFixture, run: 'first' | 'rerun') {
  const expected = expectedCounts(f)
  for (const [table, counts] of Object.entries(expected)) {
    const got = report.tables[table as keyof typeof report.tables]
    expect(got.included, table).toBe(true)
    if (run === 'first') expect({total: got.total, imported: got.imported, converted: got.converted, failed: got.failed, skipped: got.skipped}, table).toEqual(counts)
    else expect({total: got.total, imported: got.imported, converted: got.converted, failed: got.failed, skipped: got.skipped, already: got.alreadyImported}, table).toEqual({...counts, imported: 0, converted: 0, failed: 0, already: counts.total - counts.skipped})
  }
  const problems = expectedProblemIds(f)
  for (const [table, ids] of Object.entries(problems)) {
    expect(report.problems.filter((p) => p.table === table).map((p) => p.legacyId), table).toEqual([...ids].sort((a, b) => a - b))
  }
  for (const p of report.problems) expect(p.reason.length, `${p.table} #${p.legacyId}`).toBeGreaterThan(10)
  // Per class: active and archived source rows, and how many go onto the queue.
  for (const c of report.classes) {
    expect(c.active, c.taskClass).toBe(f.active.filter((a) => a.taskClass === c.taskClass).length)
    expect(c.archived, c.taskClass).toBe(f.archive.filter((a) => a.taskClass === c.taskClass).length)
    expect(c.queued, c.taskClass).toBe(f.active.filter((a) => a.taskClass === c.taskClass && QUEUED.includes(a.kind)).length)
    expect(c.targetClass).toBe(mapped(c.taskClass))
  }
  expect(report.unhandledClasses).toEqual([{taskClass: 'DoorkeeperFeedWorker', count: f.active.filter((a) => a.taskClass === 'DoorkeeperFeedWorker' && QUEUED.includes(a.kind)).length}])
}

function expectedLeases(f: LegacyFixture, keepLeases: boolean): Record<string, number> {
  const leases: Record<string, number> = {}
  for (const a of f.active) {
    if (!QUEUED.includes(a.kind)) continue
    const kind = a.kind === 'leased' ? (keepLeases ? 'lease-kept' : 'lease-released') : LEASE_KIND[a.kind]
    leases[kind] = (leases[kind] ?? 0) + 1
  }
  return leases
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v))

/** Every source row against its taskd row (or its absence), plus the tracking table. */
async function checkEveryRow(storage: Storage, f: LegacyFixture, options: {keepLeases: boolean; takenIds: ReadonlySet<number>}) {
  const db = storage.db
  const tasks = await db.selectFrom('taskd_tasks').selectAll().where('legacy_id', 'is not', null).execute()
  const archive = await db.selectFrom('taskd_task_archive').selectAll().where('legacy_id', 'is not', null).execute()
  const hooks = await db.selectFrom('taskd_webhooks').selectAll().where('legacy_id', 'is not', null).execute()
  const requests = await db.selectFrom('taskd_webhook_requests').selectAll().where('legacy_id', 'is not', null).execute()
  const tracking = await db.selectFrom('taskd_legacy_imports').selectAll().execute()

  // No duplicates anywhere.
  for (const [name, rows] of Object.entries({tasks, archive, hooks, requests})) expect(new Set(rows.map((r) => Number(r.legacy_id))).size, name).toBe(rows.length)
  expect(new Set(tracking.map((t) => `${t.source_table}#${t.legacy_id}`)).size).toBe(tracking.length)

  const taskBy = new Map(tasks.map((t) => [Number(t.legacy_id), t]))
  const archiveBy = new Map(archive.map((t) => [Number(t.legacy_id), t]))
  const hookBy = new Map(hooks.map((h) => [Number(h.legacy_id), h]))
  const requestBy = new Map(requests.map((r) => [Number(r.legacy_id), r]))
  const trackBy = new Map(tracking.map((t) => [`${t.source_table.split('.')[1]}#${t.legacy_id}`, t]))

  // Hooks.
  for (const h of f.hooks) {
    const row = hookBy.get(h.id)
    expect(row, `hook ${h.id}`).toBeDefined()
    if (!row) continue
    expect({name: row.name, url: row.url, secret: row.secret, created: num(row.created_at), updated: num(row.updated_at)}).toEqual({
      name: h.name,
      url: h.webhookURI,
      secret: h.hmacKey,
      created: h.dateCreated,
      updated: h.dateModified,
    })
    expect(row.status).toBe(h.kind === 'bad-status' ? 'disabled' : h.status)
    expect(JSON.parse(row.events)).toEqual(h.status === 'firehose' ? ['*'] : ['phabricator.*'])
    if (h.kind === 'bad-status') expect(row.disabled_reason).toContain("'paused'")
    expect(trackBy.get(`herald_webhook#${h.id}`)).toMatchObject({outcome: h.kind === 'bad-status' ? 'failed' : 'imported', legacy_phid: h.phid, target_table: 'taskd_webhooks'})
    expect(num(trackBy.get(`herald_webhook#${h.id}`)?.target_id)).toBe(Number(row.id))
  }
  const hookIdByPhid = new Map(f.hooks.map((h) => [h.phid, Number(hookBy.get(h.id)?.id)]))

  // Requests.
  for (const r of f.requests) checkRequest(r, requestBy.get(r.id), hookIdByPhid, trackBy.get(`herald_webhookrequest#${r.id}`))

  // Active tasks.
  const requestIdByPhid = new Map(f.requests.map((r) => [r.phid, num(requestBy.get(r.id)?.id)]))
  for (const a of f.active) {
    const track = trackBy.get(`worker_activetask#${a.id}`)
    if (a.kind === 'webhook') {
      expect(taskBy.has(a.id) || archiveBy.has(a.id), `webhook task ${a.id} is not copied`).toBe(false)
      expect(track).toMatchObject({outcome: 'converted', target_table: 'taskd_webhook_requests'})
      expect(num(track?.target_id)).toBe(requestIdByPhid.get(a.requestPhid ?? ''))
      const request = f.requests.find((r) => r.phid === a.requestPhid)
      expect(requestBy.get(request?.id ?? -1)?.status, `request of task ${a.id} stays queued`).toBe('queued')
      continue
    }
    if (a.kind === 'webhook-orphan') {
      expect(taskBy.has(a.id) || archiveBy.has(a.id) || track !== undefined).toBe(false)
      continue
    }
    const expectedId = (id: number) => (options.takenIds.has(id) ? undefined : id)
    if (FAILED_ACTIVE.includes(a.kind)) {
      const row = archiveBy.get(a.id)
      expect(row, `failed task ${a.id}`).toBeDefined()
      if (!row) continue
      expect({cls: row.task_class, result: num(row.result), data: row.data, created: num(row.created_at), failures: num(row.failure_count)}).toEqual({
        cls: mapped(a.taskClass),
        result: 1,
        data: a.data === null ? 'null' : a.kind === 'bad-json' ? JSON.stringify(a.data) : a.data,
        created: a.dateCreated,
        failures: a.failureCount,
      })
      expect(row.reason).toMatch(a.kind === 'missing-data' ? /data row \d+ is missing/ : a.kind === 'bad-json' ? /not valid JSON/ : /no longer exists/)
      if (expectedId(a.id) === undefined) expect(Number(row.id)).toBeGreaterThan(f.counter)
      else expect(Number(row.id)).toBe(a.id)
      expect(track).toMatchObject({outcome: 'failed', target_table: 'taskd_task_archive'})
      continue
    }
    const row = taskBy.get(a.id)
    expect(row, `task ${a.id} (${a.kind})`).toBeDefined()
    if (!row) continue
    if (expectedId(a.id) === undefined) expect(Number(row.id), `task ${a.id} renumbered`).toBeGreaterThan(f.counter)
    else expect(Number(row.id), `task ${a.id} keeps its id`).toBe(a.id)
    const kept = a.kind === 'leased' && options.keepLeases
    expect(
      {
        cls: row.task_class,
        priority: num(row.priority),
        data: row.data,
        object: row.object_ref,
        container: row.container_ref,
        failures: num(row.failure_count),
        failureTime: num(row.failure_time),
        attempts: num(row.attempts),
        created: num(row.created_at),
        owner: row.lease_owner,
        expires: num(row.lease_expires),
        available: num(row.available_at),
      },
      `task ${a.id} (${a.kind})`,
    ).toEqual({
      cls: mapped(a.taskClass),
      priority: a.priority,
      data: a.data,
      object: a.objectPHID,
      container: a.containerPHID,
      failures: a.failureCount,
      failureTime: a.failureTime,
      attempts: a.failureCount,
      created: a.dateCreated,
      owner: kept ? a.leaseOwner : null,
      expires: kept ? a.leaseExpires : null,
      available: WAITS.includes(a.kind) ? a.leaseExpires : a.dateCreated,
    })
    expect(track).toMatchObject({outcome: 'imported', target_table: 'taskd_tasks'})
    expect(num(track?.target_id)).toBe(Number(row.id))
  }

  // Archived tasks.
  for (const a of f.archive) checkArchived(a, archiveBy.get(a.id), trackBy.get(`worker_archivetask#${a.id}`))

  // The tracking table holds exactly the rows that are in taskd (skipped rows are not).
  const skipped = f.requests.filter((r) => r.kind === 'orphan').length + f.active.filter((a) => a.kind === 'webhook-orphan').length
  expect(tracking.length).toBe(f.hooks.length + f.requests.length + f.active.length + f.archive.length - skipped)
  // New task ids come after everything Phabricator ever handed out.
  const next = await enqueueTasks(storage, [{taskClass: 'taskd.noop'}]).then(() => db.selectFrom('taskd_tasks').select(sql<number>`max(id)`.as('m')).executeTakeFirstOrThrow())
  expect(Number(next.m)).toBeGreaterThan(f.counter)
  await db.deleteFrom('taskd_tasks').where('id', '=', Number(next.m)).execute()
}

function checkRequest(r: RequestSpec, row: Record<string, unknown> | undefined, hookIds: Map<string, number>, track: Record<string, unknown> | undefined) {
  if (r.kind === 'orphan') {
    expect(row ?? track, `orphan request ${r.id}`).toBeUndefined()
    return
  }
  expect(row, `request ${r.id}`).toBeDefined()
  if (!row) return
  const bad = r.kind === 'bad-status' || r.kind === 'bad-properties'
  const props = bad && r.kind === 'bad-properties' ? {} : (JSON.parse(r.properties) as Record<string, unknown>)
  const phids = (v: unknown) => ((v as string[] | undefined) ?? []).map((phid) => ({phid}))
  expect(JSON.parse(String(row.payload)), `payload ${r.id}`).toEqual({
    object: {type: r.objectPHID.slice(5, 9), phid: r.objectPHID},
    triggers: phids(props.triggerPHIDs),
    action: {test: props.test === true, silent: props.silent === true, secure: props.secure === true, epoch: r.dateCreated},
    transactions: phids(props.transactionPHIDs),
  })
  const code = props.errorCode === undefined ? null : String(props.errorCode)
  const attempt = r.lastRequestEpoch || null
  const common = {hook: hookIds.get(r.webhookPHID), event: 'phabricator.edit', object: r.objectPHID, created: r.dateCreated, updated: r.dateModified, test: r.kind === 'failed-test' ? 1 : 0}
  const expected: Record<RequestSpec['kind'], Record<string, unknown>> = {
    'queued-new': {status: 'queued', attempts: 0, next: r.dateCreated, last: null, type: null, code: null, response: null, sent: null},
    'queued-failing': {status: 'queued', attempts: 1, next: r.lastRequestEpoch + 300, last: attempt, type: 'http', code, response: Number(code), sent: null},
    'queued-timeout': {status: 'queued', attempts: 1, next: r.lastRequestEpoch + 300, last: attempt, type: 'timeout', code: '1', response: null, sent: null},
    'queued-refused': {status: 'queued', attempts: 1, next: r.lastRequestEpoch + 300, last: attempt, type: 'network', code: '3', response: null, sent: null},
    sent: {status: 'sent', attempts: 1, next: attempt, last: attempt, type: null, code: null, response: 200, sent: attempt},
    'failed-hook': {status: 'failed', attempts: 0, next: r.dateModified, last: null, type: 'hook', code: 'disabled', response: null, sent: null},
    'failed-test': {status: 'failed', attempts: 1, next: attempt, last: attempt, type: 'http', code: '404', response: 404, sent: null},
    'bad-status': {status: 'failed', attempts: 0, next: r.dateModified, last: null, type: 'internal', code: null, response: null, sent: null},
    'bad-properties': {status: 'failed', attempts: 0, next: r.dateModified, last: null, type: 'internal', code: null, response: null, sent: null},
    orphan: {},
  }
  expect(
    {
      hook: num(row.hook_id),
      event: row.event_type,
      object: row.object_ref,
      created: num(row.created_at),
      updated: num(row.updated_at),
      test: num(row.is_test),
      status: row.status,
      attempts: num(row.attempts),
      next: num(row.next_attempt_at),
      last: num(row.last_attempt_at),
      type: row.last_error_type,
      code: row.last_error_code,
      response: num(row.response_status),
      sent: num(row.sent_at),
    },
    `request ${r.id} (${r.kind})`,
  ).toEqual({...common, ...expected[r.kind]})
  if (bad) expect(String(row.last_error_message)).toMatch(r.kind === 'bad-status' ? /'retrying'/ : /not valid JSON/)
  expect(track).toMatchObject({outcome: bad ? 'failed' : 'imported', legacy_phid: r.phid, target_table: 'taskd_webhook_requests'})
  expect(num(track?.target_id)).toBe(Number(row.id))
}

function checkArchived(a: ArchiveSpec, row: Record<string, unknown> | undefined, track: Record<string, unknown> | undefined) {
  expect(row, `archived ${a.id}`).toBeDefined()
  if (!row) return
  const bad = a.kind === 'bad-result' || a.kind === 'missing-data'
  expect(
    {
      id: num(row.id),
      cls: row.task_class,
      priority: num(row.priority),
      data: row.data,
      object: row.object_ref,
      container: row.container_ref,
      result: num(row.result),
      duration: num(row.duration_us),
      created: num(row.created_at),
      archived: num(row.archived_at),
      failures: num(row.failure_count),
      attempts: num(row.attempts),
    },
    `archived ${a.id} (${a.kind})`,
  ).toEqual({
    id: a.id,
    cls: mapped(a.taskClass),
    priority: a.priority,
    data: a.data ?? 'null',
    object: a.objectPHID,
    container: a.containerPHID,
    result: bad ? 1 : a.result,
    duration: a.duration,
    created: a.dateCreated,
    archived: a.archivedEpoch ?? a.dateModified,
    failures: a.failureCount,
    attempts: a.failureCount + (a.result === 2 ? 0 : 1),
  })
  if (bad) expect(String(row.reason)).toMatch(a.kind === 'bad-result' ? /unknown result 7/ : /is missing/)
  else expect(row.reason).toBeNull()
  expect(track).toMatchObject({outcome: bad ? 'failed' : 'imported', target_table: 'taskd_task_archive'})
}

async function dump(storage: Storage): Promise<string> {
  const out: Record<string, unknown[]> = {}
  for (const [table, order] of Object.entries({taskd_tasks: 'id', taskd_task_archive: 'id', taskd_webhooks: 'id', taskd_webhook_requests: 'id', taskd_legacy_imports: 'source_table, legacy_id'})) {
    out[table] = (await sql`select * from ${sql.table(table)} order by ${sql.raw(order)}`.execute(storage.db)).rows
  }
  return JSON.stringify(out)
}

function writeConfig(): {dir: string; file: string} {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'taskd-legacy-config-'))
  const file = path.join(dir, 'taskd.config.mjs')
  writeFileSync(file, `export default {handlers: {'app.commit': async () => {}, PhabricatorMetaMTAWorker: async () => {}, PhabricatorApplicationTransactionPublishWorker: async () => {}}}\n`)
  return {dir, file}
}

const mapArgs = Object.entries(CLASS_MAP).flatMap(([from, to]) => ['--map-class', `${from}=${to}`])

describe('legacy mapping rules (no database)', () => {
  const now = 1_800_000_000
  const row = (leaseOwner: string | null, leaseExpires: number | null, failureTime: number | null = null) => ({leaseOwner, leaseExpires, failureTime, dateCreated: now - 5000})

  it('maps every lease state: waits hold until leaseExpires, leases no taskd daemon holds are freed', () => {
    const owner = `4242:${now - 100}:web01.example.com:7`
    expect(ownerEpoch(owner)).toBe(now - 100)
    expect(ownerEpoch('not-an-owner')).toBeNull()
    const cases: [ReturnType<typeof row>, string, number, string | null][] = [
      [row(null, null), 'unleased', now - 5000, null],
      [row(null, 0), 'unleased', now - 5000, null],
      [row(null, now + 60), 'delayed', now + 60, null],
      [row('(yield)', now + 60), 'yielded', now + 60, null],
      [row('(yield)', now - 60), 'yield-over', now - 5000, null],
      [row(owner, now + 7100), 'lease-released', now - 5000, null],
      [row(owner, now + 7100, now - 3000), 'lease-released', now - 5000, null],
      [row(owner, now - 1), 'lease-expired', now - 5000, null],
      [row(owner, now + 200, now - 90), 'retry-wait', now + 200, null],
      [row(owner, now - 1, now - 90), 'retry-due', now - 5000, null],
      [row('garbage', now + 200, now - 90), 'lease-released', now - 5000, null],
    ]
    for (const [input, kind, available, leaseOwner] of cases) {
      expect(mapLease(input, now, false), JSON.stringify(input)).toEqual({kind, available_at: available, lease_owner: leaseOwner, lease_expires: null})
    }
    expect(mapLease(row(owner, now + 7100), now, true)).toEqual({kind: 'lease-kept', available_at: now - 5000, lease_owner: owner, lease_expires: now + 7100})
    // A wait is a wait with --keep-leases too.
    expect(mapLease(row(owner, now + 200, now - 90), now, true).kind).toBe('retry-wait')
  })

  it('parses --source without printing its password, and ignores its database part', () => {
    const target = parseSourceUrl('mysql://phab:s3cr%40t@db.internal:3307/phabricator_worker')
    expect(target).toEqual({host: 'db.internal', port: 3307, user: 'phab', password: 's3cr@t', url: 'mysql://phab:***@db.internal:3307'})
    expect(parseSourceUrl('mariadb://db.internal').url).toBe('mysql://root@db.internal:3306')
    expect(() => parseSourceUrl('postgres://u:hunter2@h/db')).toThrow(/expected mysql:\/\/.*/)
    expect(() => parseSourceUrl('postgres://u:hunter2@h/db')).not.toThrow(/hunter2/)
  })

  it('parses --map-class and rejects malformed or contradictory maps', () => {
    expect([...parseClassMap(['A=b.c', 'D=e'])]).toEqual([
      ['A', 'b.c'],
      ['D', 'e'],
    ])
    expect(() => parseClassMap(['A'])).toThrow(/expected Old=New/)
    expect(() => parseClassMap(['A=b', 'A=c'])).toThrow(/twice/)
  })

  it('keeps a request whose properties are unusable, as failed, with the reason', () => {
    const base = {id: 1, phid: 'PHID-HWBR-aaaaaaaaaaaaaaaaaaaa', webhookPHID: 'PHID-HWBH-x', objectPHID: 'PHID-TASK-bbbbbbbbbbbbbbbbbbbb', lastRequestResult: 'none', lastRequestEpoch: 0, dateCreated: 10, dateModified: 20}
    const bad = requestRow({...base, status: 'queued', properties: '[1, 2]'})
    expect(bad).toMatchObject({status: 'failed', last_error_type: 'internal', last_error_message: expect.stringMatching(/not a JSON object/) as unknown})
    expect(JSON.parse(bad.payload)).toEqual({object: {type: 'TASK', phid: base.objectPHID}, triggers: [], action: {test: false, silent: false, secure: false, epoch: 10}, transactions: []})
  })
})

describe.each(DIALECTS)('taskd migrate legacy into $name', ({name, skip}) => {
  const off = skip || MYSQL_DOWN
  let fixture: LegacyFixture
  let storage: Storage
  let targetUrl: string
  let cleanup: () => Promise<void>
  let config: {dir: string; file: string}
  const keepLeases = name === 'mysql'
  const takenIds = new Set([1, 2, 3, 10])

  beforeAll(async () => {
    if (off) return
    config = writeConfig()
    fixture = await createLegacyFixture({forceUnleased: [...takenIds], withUser: true})
    let database: TestDatabase
    ;({storage, cleanup, database} = await openTestStorage(name))
    targetUrl = database.url
    // taskd already has rows whose ids legacy tasks hold: tasks 1–3 and an archived 10; and a hook.
    await enqueueTasks(storage, [{taskClass: 'taskd.noop'}, {taskClass: 'taskd.noop'}, {taskClass: 'taskd.noop'}])
    await storage.db
      .insertInto('taskd_task_archive')
      .values({id: 10, task_class: 'taskd.noop', priority: 2000, data: 'null', object_ref: null, container_ref: null, attempts: 1, failure_count: 0, result: 0, reason: null, duration_us: 5, created_at: 1, archived_at: 2, legacy_id: null})
      .execute()
    await storage.db.insertInto('taskd_webhooks').values({name: 'existing', url: 'https://example.com/h', secret: 'whsec_x', status: 'enabled', events: '["*"]', created_at: 1, updated_at: 1, legacy_id: null}).execute()
  })
  afterAll(async () => {
    if (off) return
    await cleanup?.()
    await fixture?.drop()
    if (config) rmSync(config.dir, {recursive: true, force: true})
  })

  const common = () => ['--source', fixture.sourceUrl, '--namespace', fixture.namespace, '-d', targetUrl, '--config', config.file, '--include-archive', ...mapArgs, ...(keepLeases ? ['--keep-leases'] : [])]

  it.skipIf(off)('a dry run reports every table, class and problem, and writes nothing', {timeout: SLOW}, async () => {
    expect(fixture.password).toBeTruthy()
    const before = await dump(storage)
    const {code, report, stdout, stderr} = await migrate([...common(), '--dry-run'])
    expect(code).toBe(1)
    expect(report.dryRun).toBe(true)
    checkReport(report, fixture, 'first')
    expect(report.leases).toEqual(expectedLeases(fixture, keepLeases))
    expect(report.ids).toEqual({kept: expectedCounts(fixture).worker_activetask.imported + fixture.active.filter((a) => FAILED_ACTIVE.includes(a.kind)).length + fixture.archive.length - takenIds.size, renumbered: takenIds.size})
    expect(await dump(storage)).toBe(before)
    expect(stdout + stderr).not.toContain(fixture.password as string)
    expect(report.source).toMatch(/^mysql:\/\/legacyt\w+:\*\*\*@/)
  })

  it.skipIf(off)('a real run refuses to queue tasks no handler runs, before writing anything', {timeout: SLOW}, async () => {
    const before = await dump(storage)
    const {code, stdout, stderr} = await startCli(['migrate', 'legacy', ...common()]).done
    expect(code).toBe(2)
    expect(stderr).toMatch(/DoorkeeperFeedWorker \(\d+\).*--allow-unhandled/)
    expect(stdout + stderr).not.toContain(fixture.password as string)
    expect(await dump(storage)).toBe(before)
  })

  it.skipIf(off)('migrates every row: tasks, lease states, archive, hooks, requests; exits 1 listing what could not be', {timeout: SLOW}, async () => {
    const {code, report, stdout, stderr} = await migrate([...common(), '--allow-unhandled', '--batch-size', '173'])
    expect(code).toBe(1)
    expect(report.dryRun).toBe(false)
    checkReport(report, fixture, 'first')
    expect(report.leases).toEqual(expectedLeases(fixture, keepLeases))
    expect(report.ids.renumbered).toBe(takenIds.size)
    expect(stdout + stderr).not.toContain(fixture.password as string)
    await checkEveryRow(storage, fixture, {keepLeases, takenIds})
    // The source was only read.
    const conn = await fixture.connect()
    const [[counts]] = (await conn.query(
      `select (select count(*) from \`${fixture.namespace}_worker\`.worker_activetask) a, (select count(*) from \`${fixture.namespace}_worker\`.worker_archivetask) r, (select count(*) from \`${fixture.namespace}_herald\`.herald_webhookrequest) q`,
    )) as unknown as [[{a: number; r: number; q: number}]]
    await conn.end()
    expect({a: Number(counts.a), r: Number(counts.r), q: Number(counts.q)}).toEqual({a: fixture.active.length, r: fixture.archive.length, q: fixture.requests.length})
    console.log(`[${name}] migrated ${report.rowsRead} rows in ${report.seconds}s: ${report.rowsPerSecond} rows/s`)
  })

  it.skipIf(off)('a rerun after success changes nothing and reports the same accounting', {timeout: SLOW}, async () => {
    const before = await dump(storage)
    const {code, report} = await migrate([...common(), '--allow-unhandled'])
    expect(code).toBe(1)
    checkReport(report, fixture, 'rerun')
    expect(report.problems.filter((p) => p.outcome === 'failed').every((p) => p.earlierRun)).toBe(true)
    expect(await dump(storage)).toBe(before)
    // Without --allow-unhandled too: nothing is left to queue, so nothing is refused.
    const again = await migrate(common())
    expect(again.code).toBe(1)
    expect(await dump(storage)).toBe(before)
  })
})

/** A source connection's transaction waiting on a lock (the CLI, blocked where the test wants it). */
async function blockedThreads(f: LegacyFixture, table: string): Promise<number[]> {
  const conn = await f.connect()
  try {
    // The processlist, not information_schema.innodb_trx: MariaDB's innodb_trx view can lag a lock
    // wait by many seconds. A statement on the table still executing after a moment is waiting.
    const [rows] = (await conn.query(
      `select id as t from information_schema.processlist where id <> connection_id() and command = 'Query' and time >= 1 and info like ? and info not like '%information_schema%'`,
      [`%${table}%`],
    )) as unknown as [{t: number}[]]
    return rows.map((r) => Number(r.t))
  } finally {
    await conn.end()
  }
}

/** Kills the server-side connection of a SIGKILLed CLI still waiting on a lock (its transaction rolls back). */
async function killBlocked(f: LegacyFixture, table: string): Promise<void> {
  const conn = await f.connect()
  try {
    for (const thread of await blockedThreads(f, table)) await conn.query(`KILL ${thread}`).catch(() => undefined)
  } finally {
    await conn.end()
  }
}

/** Open InnoDB transactions, for a failure message. */
async function transactions(f: LegacyFixture): Promise<string> {
  const conn = await f.connect()
  try {
    const [rows] = await conn.query(`select trx_mysql_thread_id, trx_state, left(trx_query, 160) q from information_schema.innodb_trx`)
    return JSON.stringify(rows)
  } finally {
    await conn.end()
  }
}

async function trackedCount(storage: Storage, sourceTable?: string, legacyId?: number): Promise<number> {
  let q = storage.db.selectFrom('taskd_legacy_imports').select(sql<number>`count(*)`.as('n'))
  if (sourceTable) q = q.where('source_table', '=', sourceTable)
  if (legacyId !== undefined) q = q.where('legacy_id', '=', legacyId)
  return Number((await q.executeTakeFirstOrThrow()).n)
}

describe.each(DIALECTS)('taskd migrate legacy resumes after a SIGKILL on $name', ({name, skip}) => {
  const off = skip || MYSQL_DOWN
  let fixture: LegacyFixture
  let storage: Storage
  let cleanup: () => Promise<void>
  let config: {dir: string; file: string}
  let targetUrl: string

  beforeAll(async () => {
    if (off) return
    config = writeConfig()
    fixture = await createLegacyFixture({active: 400, archive: 400, requests: 120, seed: 7})
    let database: TestDatabase
    ;({storage, cleanup, database} = await openTestStorage(name))
    targetUrl = database.url
  })
  afterAll(async () => {
    if (off) return
    await cleanup?.()
    await fixture?.drop()
    if (config) rmSync(config.dir, {recursive: true, force: true})
  })

  const args = () => ['--source', fixture.sourceUrl, '--namespace', fixture.namespace, '-d', targetUrl, '--config', config.file, '--include-archive', '--allow-unhandled', '--batch-size', '50', ...mapArgs]

  it.skipIf(off)('with --delete-migrated: killed after a batch committed but before its source rows were deleted', {timeout: SLOW}, async () => {
    const worker = `\`${fixture.namespace}_worker\``
    // A queued task in the middle of the third batch: two batches are committed and deleted before it.
    const victim = fixture.active.slice(125).find((a) => QUEUED.includes(a.kind))?.id ?? -1
    // Hold the victim's source row: the CLI's delete of that batch waits on it, after the target commit.
    const lock = await fixture.connect()
    await lock.beginTransaction()
    await lock.query(`select id from ${worker}.worker_activetask where id = ? for update`, [victim])
    const run = startCli(['migrate', 'legacy', ...args(), '--delete-migrated', '--json'])
    const activeTable = `${fixture.namespace}_worker.worker_activetask`
    try {
      await whileRunning(
        run,
        async () => (await trackedCount(storage, activeTable, victim)) === 1 && (await blockedThreads(fixture, 'worker_activetask')).length > 0,
        'the CLI to commit the victim batch and wait on the source delete',
      ).catch(async (error: Error) => {
        throw new Error(`${error.message} (victim ${victim}, tracked ${await trackedCount(storage, activeTable)}; transactions: ${await transactions(fixture)})`)
      })
    } finally {
      run.child.kill('SIGKILL')
      await run.done
      await killBlocked(fixture, 'worker_activetask')
      await lock.rollback()
      await lock.end()
    }
    const killed = await run.done
    expect(killed.signal).toBe('SIGKILL')
    const conn = await fixture.connect()
    // Mid-way: the victim is in taskd and still in the source; the archive has not started.
    const [[mid]] = (await conn.query(`select count(*) n from ${worker}.worker_activetask where id = ?`, [victim])) as unknown as [[{n: number}]]
    expect(Number(mid.n)).toBe(1)
    const trackedActive = await trackedCount(storage, activeTable)
    expect(trackedActive).toBeGreaterThan(0)
    expect(trackedActive).toBeLessThan(fixture.active.length)
    expect(await trackedCount(storage, `${fixture.namespace}_worker.worker_archivetask`)).toBe(0)

    // The committed batches before the victim's are gone from the source; the victim's batch is tracked but still there.
    const [stillThere] = (await conn.query(`select id from ${worker}.worker_activetask`)) as unknown as [{id: number}[]]
    const trackedIds = new Set((await storage.db.selectFrom('taskd_legacy_imports').select('legacy_id').where('source_table', '=', activeTable).execute()).map((r) => Number(r.legacy_id)))
    const trackedButThere = stillThere.filter((r) => trackedIds.has(Number(r.id))).length
    expect(trackedButThere).toBeGreaterThan(0)
    expect(trackedButThere).toBeLessThanOrEqual(50)

    const {code, report} = await migrate([...args(), '--delete-migrated'])
    expect(code).toBe(1)
    const active = report.tables.worker_activetask
    expect(active.total).toBe(stillThere.length)
    expect(active.alreadyImported).toBe(trackedButThere)
    expect(active.imported + active.converted + active.failed + active.skipped).toBe(stillThere.length - trackedButThere)
    expect(active.deleted).toBe(stillThere.length - active.skipped)
    await checkEveryRow(storage, fixture, {keepLeases: false, takenIds: new Set()})

    // The source keeps only what could not be migrated (and payload rows nothing migrated used).
    const left = async (table: string) => {
      const [rows] = (await conn.query(`select id from ${table} order by id`)) as unknown as [{id: number}[]]
      return rows.map((r) => Number(r.id))
    }
    const herald = `\`${fixture.namespace}_herald\``
    expect(await left(`${worker}.worker_activetask`)).toEqual(fixture.active.filter((a) => a.kind === 'webhook-orphan').map((a) => a.id))
    expect(await left(`${worker}.worker_archivetask`)).toEqual([])
    expect(await left(`${herald}.herald_webhook`)).toEqual([])
    expect(await left(`${herald}.herald_webhookrequest`)).toEqual(fixture.requests.filter((r) => r.kind === 'orphan').map((r) => r.id))
    const remainingRows = fixture.active.filter((a) => a.kind === 'webhook-orphan')
    const migratedData = new Set([...fixture.active.filter((a) => a.kind !== 'webhook-orphan'), ...fixture.archive].map((t) => t.dataID))
    for (const r of remainingRows) migratedData.delete(r.dataID)
    const data = await left(`${worker}.worker_taskdata`)
    expect(data.filter((id) => migratedData.has(id))).toEqual([])
    expect(data).toEqual(expect.arrayContaining(remainingRows.map((r) => r.dataID)))
    await conn.end()
  })

})

describe.skipIf(MYSQL_DOWN)('taskd migrate legacy resumes after a SIGKILL inside a target transaction (mysql)', () => {
  let fixture: LegacyFixture
  let storage: Storage
  let cleanup: () => Promise<void>
  let config: {dir: string; file: string}
  let targetUrl: string

  beforeAll(async () => {
    config = writeConfig()
    fixture = await createLegacyFixture({active: 400, archive: 400, requests: 120, seed: 11})
    let database: TestDatabase
    ;({storage, cleanup, database} = await openTestStorage('mysql'))
    targetUrl = database.url
  })
  afterAll(async () => {
    await cleanup?.()
    await fixture?.drop()
    if (config) rmSync(config.dir, {recursive: true, force: true})
  })

  const args = () => ['--source', fixture.sourceUrl, '--namespace', fixture.namespace, '-d', targetUrl, '--config', config.file, '--include-archive', '--allow-unhandled', '--batch-size', '50', ...mapArgs]

  it('the killed batch rolls back whole (rows and tracking together) and the rerun finishes it', {timeout: SLOW}, async () => {
    const archiveTable = `${fixture.namespace}_worker.worker_archivetask`
    // An archived task in the middle of the archive's third batch.
    const victim = fixture.archive[125].id
    // An uncommitted tracking row for the victim: the CLI's insert of that batch waits on it.
    const blocker = await Storage.open(targetUrl)
    let release = () => {}
    const released = new Promise<void>((resolve) => (release = resolve))
    let holding = () => {}
    const isHolding = new Promise<void>((resolve) => (holding = resolve))
    const held = blocker.db
      .transaction()
      .execute(async (trx) => {
        await trx.insertInto('taskd_legacy_imports').values({source_table: archiveTable, legacy_id: victim, legacy_phid: null, outcome: 'imported', target_table: null, target_id: null, detail: 'test lock', imported_at: 0}).execute()
        holding()
        await released
        throw new Error('rollback')
      })
      .catch(() => undefined)
    await isHolding
    const run = startCli(['migrate', 'legacy', ...args(), '--json'])
    let before: number
    try {
      await whileRunning(run, async () => (await blockedThreads(fixture, 'taskd_legacy_imports')).length > 0, 'the CLI to wait on the tracking insert').catch(async (error: Error) => {
        throw new Error(`${error.message} (tracked ${await trackedCount(storage)}; transactions: ${await transactions(fixture)})`)
      })
      before = await trackedCount(storage, archiveTable)
    } finally {
      run.child.kill('SIGKILL')
      await run.done
      await killBlocked(fixture, 'taskd_legacy_imports')
      release()
      await held
      await blocker.close()
    }
    expect(before).toBeGreaterThan(0)
    expect((await run.done).signal).toBe('SIGKILL')
    // Nothing of the killed batch is in taskd: tasks and tracking rows went together.
    expect(await trackedCount(storage, archiveTable)).toBe(before)
    const archived = await storage.db.selectFrom('taskd_task_archive').select(sql<number>`count(*)`.as('n')).where('legacy_id', 'is not', null).executeTakeFirstOrThrow()
    const failedActive = fixture.active.filter((a) => FAILED_ACTIVE.includes(a.kind)).length
    expect(Number(archived.n)).toBe(before + failedActive)

    const {code, report} = await migrate(args())
    expect(code).toBe(1)
    expect(report.tables.worker_archivetask.alreadyImported).toBe(before)
    expect(report.tables.worker_archivetask.imported + report.tables.worker_archivetask.failed).toBe(fixture.archive.length - before)
    await checkEveryRow(storage, fixture, {keepLeases: false, takenIds: new Set()})
  })
})
