import {createConnection, type Connection} from 'mysql2/promise'

import {MYSQL_URL} from './databases.js'

/**
 * A Phabricator-shaped source on MariaDB, built from the column facts in
 * notes/reference/legacy-tables.md with our own DDL: `<ns>_worker` (lisk_counter, worker_activetask,
 * worker_archivetask, worker_taskdata) and `<ns>_herald` (herald_webhook, herald_webhookrequest),
 * with the quirks: task ids from lisk_counter (not AUTO_INCREMENT, archived ids keep theirs, GC
 * leaves gaps), nullable lease columns, `(yield)` owners, a data row shared by an active and an
 * archived task, varbinary PHIDs. Every row carries the state it was built in (`kind`), so a test
 * can state the expected taskd row without reusing the migration's own mapping code.
 */

export type ActiveKind =
  | 'unleased'
  | 'unarchived'
  | 'delayed'
  | 'yielded'
  | 'yield-over'
  | 'leased'
  | 'lease-expired'
  | 'retry-wait'
  | 'retry-due'
  | 'bad-json'
  | 'missing-data'
  | 'shared-data'
  | 'webhook'
  | 'webhook-gone'
  | 'webhook-orphan'

export type ArchiveKind = 'success' | 'failure' | 'cancelled' | 'no-epoch' | 'shared-data' | 'bad-result' | 'missing-data'
export type HookKind = 'firehose' | 'enabled' | 'disabled' | 'bad-status'
export type RequestKind = 'queued-new' | 'queued-failing' | 'queued-timeout' | 'queued-refused' | 'sent' | 'failed-hook' | 'failed-test' | 'bad-status' | 'bad-properties' | 'orphan'

export interface ActiveSpec {
  kind: ActiveKind
  id: number
  taskClass: string
  leaseOwner: string | null
  leaseExpires: number | null
  failureCount: number
  failureTime: number | null
  priority: number
  objectPHID: string | null
  containerPHID: string | null
  dataID: number
  /** The worker_taskdata text; null when the data row is missing. */
  data: string | null
  dateCreated: number
  dateModified: number
  /** webhook kinds: the request the task names. */
  requestPhid?: string
}

export interface ArchiveSpec {
  kind: ArchiveKind
  id: number
  taskClass: string
  leaseOwner: string | null
  leaseExpires: number | null
  failureCount: number
  priority: number
  objectPHID: string | null
  containerPHID: string | null
  dataID: number
  data: string | null
  result: number
  duration: number
  archivedEpoch: number | null
  dateCreated: number
  dateModified: number
}

export interface HookSpec {
  kind: HookKind
  id: number
  phid: string
  name: string
  webhookURI: string
  status: string
  hmacKey: string
  dateCreated: number
  dateModified: number
}

export interface RequestSpec {
  kind: RequestKind
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

export interface LegacyFixture {
  namespace: string
  /** The source server URL (no password unless `withUser`). */
  sourceUrl: string
  /** A password that must never be printed (with `withUser`). */
  password: string | null
  now: number
  counter: number
  active: ActiveSpec[]
  archive: ArchiveSpec[]
  hooks: HookSpec[]
  requests: RequestSpec[]
  /** Opens a root connection to the source server. */
  connect(): Promise<Connection>
  drop(): Promise<void>
}

export interface FixtureOptions {
  /** Roughly how many active tasks (plus the forced ones). */
  active?: number
  archive?: number
  requests?: number
  /** Active legacy ids forced to plain unleased tasks (to collide with rows already in the target). */
  forceUnleased?: number[]
  /** Create a MariaDB user with a password for the source URL (checks that it is never printed). */
  withUser?: boolean
  seed?: number
}

export const FIXTURE_CLASSES = ['PhabricatorApplicationTransactionPublishWorker', 'PhabricatorSearchWorker', 'PhabricatorMetaMTAWorker', 'PhabricatorRepositoryCommitParserWorker', 'DoorkeeperFeedWorker']

function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const server = new URL(MYSQL_URL)
export const connectServer = (): Promise<Connection> =>
  createConnection({
    host: server.hostname,
    port: Number(server.port || 3306),
    user: decodeURIComponent(server.username || 'root'),
    password: decodeURIComponent(server.password),
    multipleStatements: true,
    supportBigNumbers: true,
  })

const TABLE = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin'

function ddl(ns: string): string[] {
  const w = `\`${ns}_worker\``
  const h = `\`${ns}_herald\``
  return [
    `CREATE DATABASE ${w} DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_bin`,
    `CREATE DATABASE ${h} DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_bin`,
    `CREATE TABLE ${w}.lisk_counter (
      counterName VARCHAR(32) COLLATE utf8mb4_bin NOT NULL,
      counterValue BIGINT(20) UNSIGNED NOT NULL,
      PRIMARY KEY (counterName)) ${TABLE}`,
    `CREATE TABLE ${w}.worker_activetask (
      id INT(10) UNSIGNED NOT NULL,
      taskClass VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
      leaseOwner VARCHAR(64) COLLATE utf8mb4_bin NULL,
      leaseExpires INT(10) UNSIGNED NULL,
      failureCount INT(10) UNSIGNED NOT NULL,
      dataID INT(10) UNSIGNED NOT NULL,
      failureTime INT(10) UNSIGNED NULL,
      priority INT(10) UNSIGNED NOT NULL,
      objectPHID VARBINARY(64) NULL,
      containerPHID VARBINARY(64) NULL,
      dateCreated INT(10) UNSIGNED NOT NULL,
      dateModified INT(10) UNSIGNED NOT NULL,
      PRIMARY KEY (id),
      KEY taskClass (taskClass),
      KEY leaseExpires (leaseExpires),
      KEY key_failuretime (failureTime),
      KEY key_owner (leaseOwner, priority, id),
      KEY key_object (objectPHID),
      KEY key_container (containerPHID)) ${TABLE}`,
    `CREATE TABLE ${w}.worker_archivetask (
      id INT(10) UNSIGNED NOT NULL,
      taskClass VARCHAR(64) COLLATE utf8mb4_bin NOT NULL,
      leaseOwner VARCHAR(64) COLLATE utf8mb4_bin NULL,
      leaseExpires INT(10) UNSIGNED NULL,
      failureCount INT(10) UNSIGNED NOT NULL,
      dataID INT(10) UNSIGNED NOT NULL,
      result INT(10) UNSIGNED NOT NULL,
      duration BIGINT(20) UNSIGNED NOT NULL,
      dateCreated INT(10) UNSIGNED NOT NULL,
      dateModified INT(10) UNSIGNED NOT NULL,
      priority INT(10) UNSIGNED NOT NULL,
      objectPHID VARBINARY(64) NULL,
      archivedEpoch INT(10) UNSIGNED NULL,
      containerPHID VARBINARY(64) NULL,
      PRIMARY KEY (id),
      KEY dateCreated (dateCreated),
      KEY key_modified (dateModified),
      KEY key_object (objectPHID),
      KEY key_container (containerPHID)) ${TABLE}`,
    `CREATE TABLE ${w}.worker_taskdata (
      id INT(10) UNSIGNED NOT NULL AUTO_INCREMENT,
      data LONGTEXT COLLATE utf8mb4_bin NOT NULL,
      PRIMARY KEY (id)) ${TABLE}`,
    `CREATE TABLE ${h}.herald_webhook (
      id INT(10) UNSIGNED NOT NULL AUTO_INCREMENT,
      phid VARBINARY(64) NOT NULL,
      name VARCHAR(128) COLLATE utf8mb4_bin NOT NULL,
      webhookURI VARCHAR(255) COLLATE utf8mb4_bin NOT NULL,
      viewPolicy VARBINARY(64) NOT NULL,
      editPolicy VARBINARY(64) NOT NULL,
      status VARCHAR(32) COLLATE utf8mb4_bin NOT NULL,
      hmacKey VARCHAR(32) COLLATE utf8mb4_bin NOT NULL,
      dateCreated INT(10) UNSIGNED NOT NULL,
      dateModified INT(10) UNSIGNED NOT NULL,
      PRIMARY KEY (id),
      UNIQUE KEY key_phid (phid),
      KEY key_status (status)) ${TABLE}`,
    `CREATE TABLE ${h}.herald_webhookrequest (
      id INT(10) UNSIGNED NOT NULL AUTO_INCREMENT,
      phid VARBINARY(64) NOT NULL,
      webhookPHID VARBINARY(64) NOT NULL,
      objectPHID VARBINARY(64) NOT NULL,
      status VARCHAR(32) COLLATE utf8mb4_bin NOT NULL,
      properties LONGTEXT COLLATE utf8mb4_bin NOT NULL,
      lastRequestResult VARCHAR(32) COLLATE utf8mb4_bin NOT NULL,
      lastRequestEpoch INT(10) UNSIGNED NOT NULL,
      dateCreated INT(10) UNSIGNED NOT NULL,
      dateModified INT(10) UNSIGNED NOT NULL,
      PRIMARY KEY (id),
      UNIQUE KEY key_phid (phid),
      KEY key_ratelimit (webhookPHID, lastRequestResult, lastRequestEpoch),
      KEY key_collect (dateCreated)) ${TABLE}`,
  ]
}

async function insertRows(conn: Connection, table: string, rows: Record<string, unknown>[]): Promise<void> {
  if (rows.length === 0) return
  const columns = Object.keys(rows[0])
  for (let i = 0; i < rows.length; i += 500) {
    const chunk = rows.slice(i, i + 500)
    await conn.query(`INSERT INTO ${table} (${columns.map((c) => `\`${c}\``).join(', ')}) VALUES ?`, [chunk.map((r) => columns.map((c) => r[c]))])
  }
}

/** Builds the source schemas and rows; `drop()` removes them (and the user). */
export async function createLegacyFixture(options: FixtureOptions = {}): Promise<LegacyFixture> {
  const random = prng(options.seed ?? 13561)
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]
  const int = (min: number, max: number) => min + Math.floor(random() * (max - min + 1))
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  const phid = (type: string) => `PHID-${type}-${Array.from({length: 20}, () => alphabet[Math.floor(random() * 32)]).join('')}`
  const namespace = `legacyt${Math.random().toString(36).slice(2, 10)}`

  const conn = await connectServer()
  let password: string | null = null
  let user = decodeURIComponent(server.username || 'root')
  const [[{now: nowRaw}]] = (await conn.query('SELECT UNIX_TIMESTAMP() AS now')) as unknown as [[{now: number}]]
  const now = Number(nowRaw)
  const drop = async () => {
    const c = await connectServer()
    await c.query(`DROP DATABASE IF EXISTS \`${namespace}_worker\`; DROP DATABASE IF EXISTS \`${namespace}_herald\``)
    if (password !== null) await c.query(`DROP USER IF EXISTS '${user}'@'%', '${user}'@'localhost'`)
    await c.end()
  }
  try {
    for (const statement of ddl(namespace)) await conn.query(statement)
    const w = `\`${namespace}_worker\``
    const h = `\`${namespace}_herald\``
    if (options.withUser) {
      user = namespace
      password = `pw-${Math.random().toString(36).slice(2)}-secret`
      for (const host of ['%', 'localhost']) {
        await conn.query(`CREATE USER '${user}'@'${host}' IDENTIFIED BY '${password}'`)
        await conn.query(`GRANT SELECT, DELETE ON ${w}.* TO '${user}'@'${host}'`)
        await conn.query(`GRANT SELECT, DELETE ON ${h}.* TO '${user}'@'${host}'`)
      }
    }

    // Hooks: one of each status, plus one with a status Phabricator never wrote.
    const hookKinds: HookKind[] = ['firehose', 'enabled', 'enabled', 'disabled', 'bad-status', 'firehose']
    const hooks: HookSpec[] = hookKinds.map((kind, i) => {
      const created = now - int(40, 400) * 86_400
      return {
        kind,
        id: i + 1,
        phid: phid('HWBH'),
        name: `Hook ${i + 1} (${kind})`,
        webhookURI: `https://hooks${i + 1}.example.com/phabricator?x=${i}`,
        status: kind === 'bad-status' ? 'paused' : kind,
        hmacKey: Array.from({length: 32}, () => alphabet[Math.floor(random() * 32)]).join(''),
        dateCreated: created,
        dateModified: created + int(0, 86_400),
      }
    })
    await insertRows(conn, `${h}.herald_webhook`, hooks.map((k) => ({id: k.id, phid: k.phid, name: k.name, webhookURI: k.webhookURI, viewPolicy: 'users', editPolicy: 'admin', status: k.status, hmacKey: k.hmacKey, dateCreated: k.dateCreated, dateModified: k.dateModified})))

    // Requests, by kind (weights), against the hooks; `orphan` names a hook that does not exist.
    const requestKinds: [RequestKind, number][] = [
      ['queued-new', 30],
      ['queued-failing', 15],
      ['queued-timeout', 5],
      ['queued-refused', 5],
      ['sent', 30],
      ['failed-hook', 5],
      ['failed-test', 5],
      ['bad-status', 2],
      ['bad-properties', 2],
      ['orphan', 1],
    ]
    const weighted = <K>(table: [K, number][]): K => {
      const total = table.reduce((s, [, w]) => s + w, 0)
      let r = random() * total
      for (const [k, w] of table) if ((r -= w) < 0) return k
      return table[0][0]
    }
    const requests: RequestSpec[] = []
    const requestCount = options.requests ?? 600
    const missingHook = phid('HWBH')
    for (let i = 1; i <= requestCount; i++) {
      const kind: RequestKind = i <= 2 ? 'orphan' : i <= 4 ? 'bad-status' : i <= 6 ? 'bad-properties' : weighted(requestKinds)
      const hook = kind === 'orphan' ? null : pick(hooks)
      const created = now - int(3600, 6 * 86_400)
      const attempt = created + int(1, 3000)
      const properties: Record<string, unknown> = {
        retry: kind === 'failed-test' ? 'never' : 'forever',
        transactionPHIDs: Array.from({length: int(1, 3)}, () => phid('XACT')),
        triggerPHIDs: hook?.status === 'firehose' ? [hook.phid] : [phid('HRUL')],
        silent: random() < 0.1,
        test: kind === 'failed-test',
        secure: random() < 0.2,
      }
      let status = 'queued'
      let lastRequestResult = 'none'
      let lastRequestEpoch = 0
      const attempted = (result: string, errorType: string, errorCode: number | string, newStatus = status) => {
        Object.assign(properties, {errorType, errorCode})
        lastRequestResult = result
        lastRequestEpoch = result === 'none' ? 0 : attempt
        status = newStatus
      }
      if (kind === 'queued-failing') attempted('fail', 'http', pick([500, 502, 404]))
      if (kind === 'queued-timeout') attempted('fail', 'timeout', 1)
      if (kind === 'queued-refused') attempted('fail', 'http', 3)
      if (kind === 'sent') attempted('okay', 'http', 200, 'sent')
      if (kind === 'failed-hook') attempted('none', 'hook', 'disabled', 'failed')
      if (kind === 'failed-test') attempted('fail', 'http', 404, 'failed')
      if (kind === 'bad-status') status = 'retrying'
      requests.push({
        kind,
        id: i,
        phid: phid('HWBR'),
        webhookPHID: hook?.phid ?? missingHook,
        objectPHID: phid(pick(['TASK', 'DREV', 'CMIT'])),
        status,
        properties: kind === 'bad-properties' ? '{"retry": "forever", "transactionPHIDs": [' : JSON.stringify(properties),
        lastRequestResult,
        lastRequestEpoch,
        dateCreated: created,
        dateModified: lastRequestEpoch || created,
      })
    }
    await insertRows(conn, `${h}.herald_webhookrequest`, requests.map(({kind: _kind, ...r}) => r))

    // Tasks: ids from the counter, each id active, archived or garbage-collected (a gap).
    const activeKinds: [ActiveKind, number][] = [
      ['unleased', 30],
      ['unarchived', 2],
      ['delayed', 5],
      ['yielded', 6],
      ['yield-over', 4],
      ['leased', 8],
      ['lease-expired', 6],
      ['retry-wait', 6],
      ['retry-due', 5],
      ['bad-json', 1],
      ['missing-data', 1],
      ['webhook', 8],
      ['webhook-gone', 1],
    ]
    const archiveKinds: [ArchiveKind, number][] = [
      ['success', 60],
      ['failure', 10],
      ['cancelled', 5],
      ['no-epoch', 5],
      ['bad-result', 1],
      ['missing-data', 1],
    ]
    const activeTarget = options.active ?? 1500
    const archiveTarget = options.archive ?? 1500
    const forced = new Set(options.forceUnleased ?? [])
    const active: ActiveSpec[] = []
    const archive: ArchiveSpec[] = []
    const data: {id: number; data: string}[] = []
    let nextData = 1
    const queuedRequests = requests.filter((r) => r.kind.startsWith('queued-'))
    const orphanRequests = requests.filter((r) => r.kind === 'orphan')
    let counter = 0
    const owner = (since: number) => `${int(1000, 99999)}:${since}:phab-daemon-${int(1, 4)}.example.com:${int(1, 500)}`

    while (active.length < activeTarget || archive.length < archiveTarget || [...forced].some((id) => id > counter)) {
      const id = ++counter
      const roll = random()
      const wantActive = forced.has(id) || (active.length < activeTarget && (roll < 0.47 || archive.length >= archiveTarget))
      if (!forced.has(id) && roll > 0.94) continue // garbage-collected: a gap in the ids
      const taskClass = pick(FIXTURE_CLASSES)
      const created = now - int(120, 20 * 86_400)
      const base = {
        id,
        taskClass,
        priority: pick([1000, 2000, 2000, 2500, 3000, 3500, 4000]),
        objectPHID: random() < 0.8 ? phid(pick(['TASK', 'CMIT', 'DREV'])) : null,
        containerPHID: random() < 0.3 ? phid('REPO') : null,
        dateCreated: created,
      }
      const payload = JSON.stringify({objectPHID: base.objectPHID, n: id, text: `tâche ${id} ✓`})
      if (wantActive) {
        let kind: ActiveKind = forced.has(id) ? 'unleased' : weighted(activeKinds)
        if (kind === 'webhook' && queuedRequests.length === 0) kind = 'unleased'
        let leaseOwner: string | null = null
        let leaseExpires: number | null = null
        let failureCount = 0
        let failureTime: number | null = null
        let text: string | null = payload
        let requestPhid: string | undefined
        let klass = taskClass
        switch (kind) {
          case 'unarchived':
            leaseExpires = 0
            break
          case 'delayed':
            leaseExpires = now + int(600, 7200)
            break
          case 'yielded':
            leaseOwner = '(yield)'
            leaseExpires = now + int(600, 3600)
            break
          case 'yield-over':
            leaseOwner = '(yield)'
            leaseExpires = now - int(5, 3600)
            break
          case 'leased': {
            const since = now - int(10, 600)
            leaseOwner = owner(since)
            leaseExpires = since + 7200
            if (random() < 0.4) {
              // An earlier failure under an earlier owner: still a live lease now.
              failureCount = int(1, 3)
              failureTime = since - int(300, 3000)
            }
            break
          }
          case 'lease-expired': {
            const since = now - int(7300, 90_000)
            leaseOwner = owner(since)
            leaseExpires = since + 7200
            break
          }
          case 'retry-wait': {
            const since = now - int(30, 200)
            leaseOwner = owner(since)
            failureCount = int(1, 9)
            failureTime = since + int(1, 20)
            leaseExpires = since + 1800 // a worker with a longer wait before retry
            break
          }
          case 'retry-due': {
            const since = now - int(400, 5000)
            leaseOwner = owner(since)
            failureCount = int(1, 40)
            failureTime = since + int(1, 90)
            leaseExpires = since + 300
            break
          }
          case 'bad-json':
            text = '{"objectPHID": "PHID-TASK-x", oops'
            break
          case 'missing-data':
            text = null
            break
          case 'webhook': {
            const request = pick(queuedRequests)
            requestPhid = request.phid
            klass = 'HeraldWebhookWorker'
            text = JSON.stringify({webhookRequestPHID: request.phid})
            if (request.lastRequestResult === 'fail') {
              const since = request.lastRequestEpoch - 2
              leaseOwner = owner(since)
              failureCount = int(1, 30)
              failureTime = request.lastRequestEpoch
              leaseExpires = since + 300
            }
            break
          }
          case 'webhook-gone':
            requestPhid = phid('HWBR')
            klass = 'HeraldWebhookWorker'
            text = JSON.stringify({webhookRequestPHID: requestPhid})
            break
        }
        const dataID = nextData++
        if (text !== null) data.push({id: dataID, data: text})
        active.push({
          ...base,
          kind,
          taskClass: klass,
          leaseOwner,
          leaseExpires,
          failureCount,
          failureTime,
          dataID,
          data: text,
          dateModified: failureTime ?? created,
          ...(requestPhid ? {requestPhid} : {}),
        })
      } else {
        const kind = weighted(archiveKinds)
        const result = kind === 'failure' ? 1 : kind === 'cancelled' ? 2 : kind === 'bad-result' ? 7 : 0
        const archivedAt = created + int(1, 3600)
        const dataID = nextData++
        const text = kind === 'missing-data' ? null : payload
        if (text !== null) data.push({id: dataID, data: text})
        archive.push({
          ...base,
          kind,
          leaseOwner: owner(archivedAt - 5),
          leaseExpires: archivedAt + 7195,
          failureCount: kind === 'failure' ? int(0, 5) : int(0, 2),
          dataID,
          data: text,
          result,
          duration: result === 0 ? int(1000, 90_000_000) : 0,
          archivedEpoch: kind === 'no-epoch' ? null : archivedAt,
          dateCreated: created,
          dateModified: archivedAt,
        })
      }
    }
    // A floating webhook task whose request was skipped (its hook does not exist).
    if (orphanRequests.length > 0) {
      const id = ++counter
      const dataID = nextData++
      const text = JSON.stringify({webhookRequestPHID: orphanRequests[0].phid})
      data.push({id: dataID, data: text})
      active.push({
        kind: 'webhook-orphan',
        id,
        taskClass: 'HeraldWebhookWorker',
        leaseOwner: null,
        leaseExpires: null,
        failureCount: 0,
        failureTime: null,
        priority: 2000,
        objectPHID: orphanRequests[0].phid,
        containerPHID: null,
        dataID,
        data: text,
        dateCreated: now - 3600,
        dateModified: now - 3600,
        requestPhid: orphanRequests[0].phid,
      })
    }
    // Data rows shared between an active and an archived task (unarchive keeps the data row).
    const sharers = active.filter((a) => a.kind === 'unleased' && !forced.has(a.id)).slice(0, 3)
    const archivedSuccess = archive.filter((a) => a.kind === 'success').slice(0, 3)
    for (let i = 0; i < Math.min(sharers.length, archivedSuccess.length); i++) {
      sharers[i].kind = 'shared-data'
      archivedSuccess[i].kind = 'shared-data'
      const shared = data.find((d) => d.id === sharers[i].dataID)
      archivedSuccess[i].dataID = sharers[i].dataID
      archivedSuccess[i].data = shared?.data ?? null
    }
    counter += 5 // tasks allocated and garbage-collected after the last one seen
    await conn.query(`INSERT INTO ${w}.lisk_counter (counterName, counterValue) VALUES ('worker_activetask', ?), ('trigger.version', 12)`, [counter])
    await insertRows(conn, `${w}.worker_taskdata`, data)
    await insertRows(conn, `${w}.worker_activetask`, active.map(({kind: _k, data: _d, requestPhid: _r, ...t}) => t))
    await insertRows(conn, `${w}.worker_archivetask`, archive.map(({kind: _k, data: _d, ...t}) => t))

    const auth = password === null ? `${encodeURIComponent(user)}` : `${encodeURIComponent(user)}:${encodeURIComponent(password)}`
    return {
      namespace,
      sourceUrl: `mysql://${auth}@${server.hostname}:${server.port || 3306}/ignored_database`,
      password,
      now,
      counter,
      active,
      archive,
      hooks,
      requests,
      connect: connectServer,
      drop,
    }
  } catch (error) {
    await drop().catch(() => undefined)
    throw error
  } finally {
    await conn.end()
  }
}
