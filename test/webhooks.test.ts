import {spawn} from 'node:child_process'
import dns from 'node:dns'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {sql, type Selectable} from 'kysely'
import {afterAll, afterEach, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import type {TaskGenerator} from '../src/core/generator.js'
import {Daemon} from '../src/daemon/daemon.js'
import {enqueueTask} from '../src/generators/queue/enqueue.js'
import {queueGenerator} from '../src/generators/queue/generator.js'
import {BACKOFF_FAILURES, BACKOFF_PAUSE_SECONDS, RETRY_SCHEDULE_SECONDS, webhooksGenerator} from '../src/generators/webhooks/generator.js'
import {addHook, disableHook, enableHook, publishWebhookEvent, rotateSecret} from '../src/generators/webhooks/hooks.js'
import {drainWebhooks, purgeWebhooks} from '../src/generators/webhooks/operations.js'
import {parseCidrs, refusal} from '../src/generators/webhooks/outbound.js'
import {ARCHIVE_RESULT, type WebhookRequestsTable} from '../src/storage/schema.js'
import {Storage} from '../src/storage/storage.js'
import {DIALECTS, openTestStorage, until, type TestDatabase} from './helpers/databases.js'
import {deadPort, gate, startReceiver, verifyingBehaviour, type Answer, type Behaviour, type Receiver} from './helpers/receiver.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const LOOPBACK = ['127.0.0.1/32']

type RequestRow = Selectable<WebhookRequestsTable>

/** A Phabricator-style legacy secret: 32 characters of [a-z2-7]. */
function legacySecret(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  return Array.from({length: 32}, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join('')
}

describe('refusal(): which addresses delivery may dial', () => {
  const none = parseCidrs([])
  it.each([
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.254', 'private'],
    ['192.168.1.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['fe80::1', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['100.127.255.254', 'carrierGradeNat'],
    ['fc00::1', 'uniqueLocal'],
    ['fd12:3456::1', 'uniqueLocal'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['ff02::1', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['255.255.255.255', 'broadcast'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'linkLocal'],
    ['64:ff9b::7f00:1', 'rfc6052'],
  ])('refuses %s (%s)', (address, range) => {
    const reason = refusal(address, none)
    expect(reason).not.toBeNull()
    expect(reason).toContain(range)
  })

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('allows the public address %s', (address) => {
    expect(refusal(address, none)).toBeNull()
  })

  it('refuses what is not an IP address', () => {
    expect(refusal('localhost', none)).toMatch(/not an IP address/)
  })

  it('an allowlist opens exactly its CIDRs, IPv4-mapped IPv6 included', () => {
    const allow = parseCidrs(['127.0.0.1/32', '10.0.0.0/8', 'fd00::/8'])
    expect(refusal('127.0.0.1', allow)).toBeNull()
    expect(refusal('::ffff:127.0.0.1', allow)).toBeNull()
    expect(refusal('10.200.0.1', allow)).toBeNull()
    expect(refusal('fd00::5', allow)).toBeNull()
    expect(refusal('127.0.0.2', allow)).toContain('loopback')
    expect(refusal('::1', allow)).toContain('loopback')
    expect(refusal('192.168.0.1', allow)).toContain('private')
    expect(refusal('fc00::1', allow)).toContain('uniqueLocal')
    expect(() => parseCidrs(['not-a-cidr'])).toThrow(/invalid CIDR/)
  })
})

describe.each(DIALECTS)('webhooks on $name', ({name, skip}) => {
  let storage: Storage
  let database: TestDatabase
  let cleanup: () => Promise<void>
  const receivers: Receiver[] = []

  beforeAll(async () => {
    if (skip) return
    ;({storage, database, cleanup} = await openTestStorage(name))
  })
  afterAll(async () => {
    if (!skip) await cleanup()
  })
  beforeEach(async () => {
    if (skip) return
    for (const table of ['taskd_webhook_requests', 'taskd_webhooks', 'taskd_tasks', 'taskd_task_archive', 'taskd_daemons'] as const) {
      await storage.db.deleteFrom(table).execute()
    }
  })
  afterEach(async () => {
    await Promise.all(receivers.splice(0).map((r) => r.close()))
  })

  const receiver = async (behaviour: Behaviour, host?: '127.0.0.1' | '::1') => {
    const r = await startReceiver(behaviour, host)
    receivers.push(r)
    return r
  }

  /** One daemon run until nothing is ready, delivering through the real webhooks generator. */
  const runDaemon = async (generator: TaskGenerator<Storage> = webhooksGenerator({allowCidrs: LOOPBACK}), store: Storage = storage) => {
    const daemon = new Daemon({storage: store, generators: [generator], untilIdle: true, concurrency: 8})
    await daemon.start()
    await daemon.finished()
    return daemon
  }

  const count = async (table: 'taskd_tasks' | 'taskd_webhook_requests' | 'taskd_task_archive') =>
    Number((await storage.db.selectFrom(table).select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow()).n)
  const requestsOf = async (hookId: number): Promise<RequestRow[]> =>
    storage.db.selectFrom('taskd_webhook_requests').selectAll().where('hook_id', '=', hookId).orderBy('id').execute()
  const requestRow = async (id: number): Promise<RequestRow> => storage.db.selectFrom('taskd_webhook_requests').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
  const hookRow = async (id: number) => storage.db.selectFrom('taskd_webhooks').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
  const secretOf = async (id: number) => (await hookRow(id)).secret
  /** Makes every queued request due now, instead of waiting for its retry. */
  const makeDue = async () => {
    await storage.db.updateTable('taskd_webhook_requests').set({next_attempt_at: storage.now() - 1}).where('status', '=', 'queued').execute()
  }

  /** Every row of every taskd table in a stable order. */
  const dumpTables = async () => {
    const tables = {
      taskd_tasks: 'id',
      taskd_task_archive: 'id',
      taskd_generator_state: 'generator, state_key',
      taskd_daemons: 'id',
      taskd_webhooks: 'id',
      taskd_webhook_requests: 'id',
    }
    const dump: Record<string, unknown[]> = {}
    for (const [table, order] of Object.entries(tables)) {
      dump[table] = (await sql`select * from ${sql.table(table)} order by ${sql.raw(order)}`.execute(storage.db)).rows
    }
    return JSON.stringify(dump)
  }

  it.skipIf(skip)('10,000 events for a firehose at a dead port stay in the history, never the task queue; 10 failures in 5 min pause the hook', async () => {
    const port = await deadPort()
    const hook = await addHook(storage, {name: 'firehose', url: `http://127.0.0.1:${port}/hook`, firehose: true})
    await storage.transaction(async (trx) => {
      for (let i = 0; i < 10_000; i++) await publishWebhookEvent(trx, {eventType: `object.${i % 7 === 0 ? 'created' : 'updated'}`, objectRef: `OBJ${i}`, data: {i}})
    })
    expect(await count('taskd_tasks')).toBe(0)
    expect(await count('taskd_webhook_requests')).toBe(10_000)

    const daemon = await runDaemon()
    expect(await count('taskd_tasks')).toBe(0)
    const attempted = await storage.db
      .selectFrom('taskd_webhook_requests')
      .selectAll()
      .where('hook_id', '=', hook.id)
      .where('attempts', '>', 0)
      .orderBy('id')
      .execute()
    // One hook, one delivery at a time: exactly the oldest 10 were tried, then the hook paused.
    expect(attempted).toHaveLength(BACKOFF_FAILURES)
    expect(daemon.stats.leased).toBe(BACKOFF_FAILURES)
    expect(attempted.map((r) => Number(r.id))).toEqual(
      (await storage.db.selectFrom('taskd_webhook_requests').select('id').orderBy('id').limit(BACKOFF_FAILURES).execute()).map((r) => Number(r.id)),
    )
    for (const row of attempted) {
      expect(row).toMatchObject({status: 'queued', last_error_type: 'network', last_error_code: 'ECONNREFUSED'})
      expect(Number(row.attempts)).toBe(1)
    }
    const lastAttempt = Math.max(...attempted.map((r) => Number(r.last_attempt_at)))
    const paused = await hookRow(hook.id)
    expect(Number(paused.paused_until)).toBe(lastAttempt + BACKOFF_PAUSE_SECONDS)
    expect(paused.lease_owner).toBeNull()

    // While paused nothing is attempted, even once the failed requests' retries are due.
    await makeDue()
    const again = await runDaemon()
    expect(again.stats.leased).toBe(0)
    const totals = await storage.db
      .selectFrom('taskd_webhook_requests')
      .select([sql<number>`sum(attempts)`.as('attempts'), sql<number>`count(*)`.as('n')])
      .executeTakeFirstOrThrow()
    expect(Number(totals.attempts)).toBe(BACKOFF_FAILURES)
    expect(Number(totals.n)).toBe(10_000)
    expect(await count('taskd_tasks')).toBe(0)

    // Enabling clears the pause; the 10 failures are still within the window, so one more pauses it again.
    expect((await enableHook(storage, hook.id)).pausedUntil).toBe(0)
    expect((await runDaemon()).stats.leased).toBe(1)
    expect(Number((await hookRow(hook.id)).paused_until)).toBeGreaterThan(storage.now())
    expect(await count('taskd_tasks')).toBe(0)
  })

  it.skipIf(skip)("publishing inside the application's transaction is atomic with it", async () => {
    await addHook(storage, {name: 'firehose', url: 'https://example.com/hook', firehose: true})
    await expect(
      storage.db.transaction().execute(async (trx) => {
        await publishWebhookEvent(trx, {eventType: 'app.saved', data: {}})
        throw new Error('the application rolls back')
      }),
    ).rejects.toThrow('rolls back')
    expect(await count('taskd_webhook_requests')).toBe(0)
    await storage.db.transaction().execute((trx) => publishWebhookEvent(trx, {eventType: 'app.saved', data: {}}))
    await publishWebhookEvent(storage.db, {eventType: 'app.saved', data: {}})
    expect(await count('taskd_webhook_requests')).toBe(2)
    expect(await count('taskd_tasks')).toBe(0)
  })

  it.skipIf(skip)('a receiver verifying both signatures accepts every delivery (generated and legacy secrets); redeliveries keep webhook-id', async () => {
    const rejections: string[] = []
    const secrets = new Map<string, string>()
    const failedOnce = new Set<string>()
    const r = await receiver(
      verifyingBehaviour(secrets, rejections, (request) => {
        const type = (JSON.parse(request.body) as {type: string}).type
        // `sig.retry` events are refused on their first delivery, so they are redelivered.
        if (type === 'sig.retry' && !failedOnce.has(request.webhookId)) {
          failedOnce.add(request.webhookId)
          return {status: 503, body: 'try later'}
        }
        return {status: 200, body: 'accepted'}
      }),
    )
    const generated = await addHook(storage, {name: 'generated', url: `${r.base}/generated`, events: ['sig.*']})
    const legacy = legacySecret()
    const old = await addHook(storage, {name: 'legacy', url: `${r.base}/legacy`, secret: legacy, events: ['sig.*']})
    // Control: a receiver that knows a different secret must reject (the check is not vacuous).
    const wrong = await addHook(storage, {name: 'wrong', url: `${r.base}/wrong`, events: ['sig.created']})
    const generatedSecret = await secretOf(generated.id)
    expect(generatedSecret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/)
    expect(generated.secret).not.toContain(generatedSecret.slice(6))
    expect(await secretOf(old.id)).toBe(legacy)
    secrets.set('/generated', generatedSecret)
    secrets.set('/legacy', legacy)
    secrets.set('/wrong', `whsec_${Buffer.alloc(24, 7).toString('base64')}`)

    const payloads = [{text: 'plain'}, {text: 'héllo wörld ✓ 🎉', nested: {list: [1, 2, 3]}}, {text: 'quote " backslash \\ newline \n'}]
    for (const data of payloads) await publishWebhookEvent(storage, {eventType: 'sig.created', objectRef: 'T1', data})
    await runDaemon()
    const delivered = [...(await requestsOf(generated.id)), ...(await requestsOf(old.id))]
    expect(delivered).toHaveLength(6)
    expect(delivered.every((row) => row.status === 'sent' && Number(row.response_status) === 200 && row.response_body === 'accepted')).toBe(true)
    // Only the control hook was rejected, once per event.
    expect(rejections).toHaveLength(3)
    expect(rejections.every((line) => line.startsWith('/wrong'))).toBe(true)
    expect((await requestsOf(wrong.id)).map((row) => [row.status, row.last_error_code])).toEqual(Array(3).fill(['queued', '401']))
    for (const request of r.received.filter((q) => q.path !== '/wrong')) {
      expect(request.webhookId).toBe(request.bodyId)
      const body = JSON.parse(request.body) as {type: string; object: string; data: unknown; test: boolean}
      expect(body).toMatchObject({type: 'sig.created', object: 'T1', test: false})
    }
    expect(r.received.filter((q) => q.path === '/generated').map((q) => (JSON.parse(q.body) as {data: unknown}).data)).toEqual(payloads)

    // Redelivery: the first attempt of sig.retry gets 503, the retry succeeds with the same id and body.
    await disableHook(storage, wrong.id)
    const before = r.received.length
    const retried = await publishWebhookEvent(storage, {eventType: 'sig.retry', data: {n: 1}})
    await publishWebhookEvent(storage, {eventType: 'sig.retry', data: {n: 2}})
    await runDaemon()
    const firstRound = r.received.slice(before)
    expect(firstRound).toHaveLength(4)
    for (const {id} of retried.requests) expect(await requestRow(id)).toMatchObject({status: 'queued', last_error_type: 'http', last_error_code: '503'})
    await makeDue()
    await runDaemon()
    const secondRound = r.received.slice(before + 4)
    expect(secondRound).toHaveLength(4)
    expect(rejections).toHaveLength(3)
    for (const first of firstRound) {
      const again = secondRound.find((q) => q.webhookId === first.webhookId)
      expect(again, first.webhookId).toBeDefined()
      expect(again!.path).toBe(first.path)
      expect(again!.body).toBe(first.body)
      expect(again!.headers['x-phabricator-webhook-signature']).toBe(first.headers['x-phabricator-webhook-signature'])
    }
    expect(new Set(secondRound.map((q) => q.webhookId)).size).toBe(4)
    for (const {id} of retried.requests) expect(Number((await requestRow(id)).attempts)).toBe(2)
    for (const {id} of retried.requests) expect((await requestRow(id)).status).toBe('sent')

    // A rotated secret signs every later delivery, including requests queued before the rotation.
    const queuedBefore = await publishWebhookEvent(storage, {eventType: 'sig.created', data: {rotated: true}})
    const rotated = await rotateSecret(storage, generated.id)
    expect(rotated.secret).not.toBe(generatedSecret)
    expect(await secretOf(generated.id)).toBe(rotated.secret)
    secrets.set('/generated', rotated.secret)
    await runDaemon()
    expect(rejections).toHaveLength(3)
    for (const {id} of queuedBefore.requests) expect((await requestRow(id)).status).toBe('sent')
  })

  it.skipIf(skip)('retries follow 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (±10%); the 8th failure fails the request', async () => {
    const r = await receiver(() => ({status: 500, body: 'boom'}))
    const hook = await addHook(storage, {name: 'always-500', url: `${r.base}/fail`, events: ['retry.me']})
    const {requests} = await publishWebhookEvent(storage, {eventType: 'retry.me', data: {}})
    expect(requests).toHaveLength(1)
    const id = requests[0].id
    for (let attempt = 1; attempt <= RETRY_SCHEDULE_SECONDS.length + 1; attempt++) {
      if (attempt > 1) await makeDue()
      await runDaemon()
      const row = await requestRow(id)
      expect(Number(row.attempts)).toBe(attempt)
      expect(row).toMatchObject({last_error_type: 'http', last_error_code: '500', response_body: 'boom'})
      expect(Number(row.response_status)).toBe(500)
      if (attempt <= RETRY_SCHEDULE_SECONDS.length) {
        expect(row.status).toBe('queued')
        const wait = Number(row.next_attempt_at) - Number(row.last_attempt_at)
        const scheduled = RETRY_SCHEDULE_SECONDS[attempt - 1]
        expect(Math.abs(wait - scheduled), `attempt ${attempt}: waited ${wait}, scheduled ${scheduled}`).toBeLessThanOrEqual(scheduled * 0.1)
      } else {
        expect(row.status).toBe('failed')
      }
    }
    expect(r.received).toHaveLength(RETRY_SCHEDULE_SECONDS.length + 1)
    expect(new Set(r.received.map((q) => q.webhookId))).toEqual(new Set([`req_${id}`]))
    // A failed request is not attempted again, and one request's retries never pause its hook.
    await makeDue()
    expect((await runDaemon()).stats.leased).toBe(0)
    expect(Number((await hookRow(hook.id)).paused_until)).toBe(0)
  })

  it.skipIf(skip)('non-2xx answers, timeouts, refused connections and redirects (not followed) are failures', async () => {
    const target = await receiver(() => ({status: 200}))
    const r = await receiver((request) => {
      if (request.path === '/500') return {status: 500, body: 'internal'}
      if (request.path === '/404') return {status: 404, body: 'no such hook'}
      if (request.path === '/302') return {status: 302, headers: {location: `${target.base}/landed`}}
      if (request.path === '/307') return {status: 307, headers: {location: `${target.base}/landed`}}
      if (request.path === '/hang') return 'hang'
      if (request.path === '/hang-body') return 'hang-body'
      return {status: 200}
    })
    const port = await deadPort()
    const urls: Record<string, string> = {
      500: `${r.base}/500`,
      404: `${r.base}/404`,
      302: `${r.base}/302`,
      307: `${r.base}/307`,
      hang: `${r.base}/hang`,
      'hang-body': `${r.base}/hang-body`,
      refused: `http://127.0.0.1:${port}/`,
      ok: `${r.base}/ok`,
    }
    const hooks: Record<string, number> = {}
    for (const [key, url] of Object.entries(urls)) hooks[key] = (await addHook(storage, {name: key, url, events: ['fail.*']})).id
    await publishWebhookEvent(storage, {eventType: 'fail.probe', data: {}})
    await runDaemon(webhooksGenerator({allowCidrs: LOOPBACK, timeoutSeconds: 1}))

    const only = async (key: string) => {
      const rows = await requestsOf(hooks[key])
      expect(rows).toHaveLength(1)
      return rows[0]
    }
    expect(await only('ok')).toMatchObject({status: 'sent', last_error_type: null})
    expect(await only('500')).toMatchObject({status: 'queued', last_error_type: 'http', last_error_code: '500', response_body: 'internal'})
    expect(await only('404')).toMatchObject({status: 'queued', last_error_type: 'http', last_error_code: '404'})
    expect(await only('302')).toMatchObject({status: 'queued', last_error_type: 'http', last_error_code: '302'})
    expect(await only('307')).toMatchObject({status: 'queued', last_error_type: 'http', last_error_code: '307'})
    expect(await only('hang')).toMatchObject({status: 'queued', last_error_type: 'timeout', response_status: null})
    expect(await only('hang-body')).toMatchObject({status: 'queued', last_error_type: 'timeout'})
    expect(await only('refused')).toMatchObject({status: 'queued', last_error_type: 'network', last_error_code: 'ECONNREFUSED'})
    for (const key of Object.keys(urls)) expect(Number((await only(key)).attempts), key).toBe(1)
    // The receivers saw one request per reachable hook; the redirect target saw none.
    expect(r.received.map((q) => q.path).sort()).toEqual(['/302', '/307', '/404', '/500', '/hang', '/hang-body', '/ok'])
    expect(target.received).toHaveLength(0)
  })

  it.skipIf(skip)('410 Gone disables the hook with a reason and fails its queued requests; disableHook fails them too', async () => {
    const r = await receiver((request) => (request.path === '/gone' ? {status: 410, body: 'gone'} : {status: 200}))
    const gone = await addHook(storage, {name: 'gone', url: `${r.base}/gone`, events: ['g.*']})
    const other = await addHook(storage, {name: 'other', url: `${r.base}/other`, events: ['g.*']})
    for (let i = 0; i < 3; i++) await publishWebhookEvent(storage, {eventType: 'g.event', data: {i}})
    await runDaemon()

    const hook = await hookRow(gone.id)
    expect(hook.status).toBe('disabled')
    expect(hook.disabled_reason).toMatch(/410/)
    expect(hook.lease_owner).toBeNull()
    const [first, ...rest] = await requestsOf(gone.id)
    expect(first).toMatchObject({status: 'failed', last_error_type: 'http', last_error_code: '410', response_body: 'gone'})
    expect(rest).toHaveLength(2)
    for (const row of rest) {
      expect(row).toMatchObject({status: 'failed', last_error_type: 'hook', last_error_code: 'disabled'})
      expect(Number(row.attempts)).toBe(0)
    }
    expect((await requestsOf(other.id)).every((row) => row.status === 'sent')).toBe(true)
    expect(r.received.filter((q) => q.path === '/gone')).toHaveLength(1)

    // Nothing more reaches it: not a new event, not a request put in the history by other means.
    const published = await publishWebhookEvent(storage, {eventType: 'g.later', data: {}})
    expect(published.requests.map((q) => q.hookId)).toEqual([other.id])
    const now = storage.now()
    await storage.db
      .insertInto('taskd_webhook_requests')
      .values({hook_id: gone.id, event_type: 'g.imported', object_ref: null, payload: 'null', status: 'queued', next_attempt_at: now, created_at: now, updated_at: now, last_attempt_at: null, last_error_type: null, last_error_code: null, last_error_message: null, response_status: null, response_body: null, sent_at: null, legacy_id: null})
      .execute()
    await runDaemon()
    await drainWebhooks(storage, {owner: 'drain-test', allowCidrs: LOOPBACK})
    expect(r.received.filter((q) => q.path === '/gone')).toHaveLength(1)

    // An operator's disable fails what is queued, with its reason.
    const later = await addHook(storage, {name: 'later', url: `${r.base}/later`, events: ['h.*']})
    for (let i = 0; i < 3; i++) await publishWebhookEvent(storage, {eventType: 'h.event', data: {i}})
    const {hook: disabled, failedRequests} = await disableHook(storage, later.id, 'receiver retired')
    expect(failedRequests).toBe(3)
    expect(disabled).toMatchObject({status: 'disabled', disabledReason: 'receiver retired'})
    for (const row of await requestsOf(later.id)) expect(row).toMatchObject({status: 'failed', last_error_type: 'hook', last_error_message: 'receiver retired'})
    await runDaemon()
    expect(r.received.filter((q) => q.path === '/later')).toHaveLength(0)
  })

  it.skipIf(skip)('two daemons never deliver two requests of one hook at once; oldest first; two hooks in parallel', async () => {
    const order = new Map<string, number[]>()
    const r = await receiver((request) => {
      const list = order.get(request.path) ?? []
      list.push(Number(request.bodyId.replace('req_', '')))
      order.set(request.path, list)
      return {status: 200, delayMs: 300}
    })
    const a = await addHook(storage, {name: 'a', url: `${r.base}/a`, events: ['serial.a']})
    const b = await addHook(storage, {name: 'b', url: `${r.base}/b`, events: ['serial.b']})
    const expectedA: number[] = []
    const expectedB: number[] = []
    await storage.transaction(async (trx) => {
      for (let i = 0; i < 30; i++) expectedA.push(...(await publishWebhookEvent(trx, {eventType: 'serial.a', data: {i}})).requests.map((q) => q.id))
      for (let i = 0; i < 8; i++) expectedB.push(...(await publishWebhookEvent(trx, {eventType: 'serial.b', data: {i}})).requests.map((q) => q.id))
    })
    // All due at the same time: oldest first means ascending ids.
    await storage.db.updateTable('taskd_webhook_requests').set({next_attempt_at: storage.now() - 1}).execute()

    const stores = await Promise.all([Storage.open(database.url), Storage.open(database.url)])
    // Polling often makes the two daemons race for the hook's lease all the time.
    const daemons = stores.map((store) => new Daemon({storage: store, generators: [webhooksGenerator({allowCidrs: LOOPBACK})], concurrency: 8, pollMaxSeconds: 0.02}))
    try {
      await Promise.all(daemons.map((d) => d.start()))
      await until(
        async () => {
          const left = await storage.db.selectFrom('taskd_webhook_requests').select(sql<number>`count(*)`.as('n')).where('status', '!=', 'sent').executeTakeFirstOrThrow()
          return Number(left.n) === 0
        },
        {timeoutMs: 50_000, intervalMs: 100, what: 'every request sent'},
      )
    } finally {
      await Promise.all(daemons.map((d) => d.stop()))
      await Promise.all(stores.map((s) => s.close()))
    }
    expect(r.maxInFlightByPath.get('/a')).toBe(1)
    expect(r.maxInFlightByPath.get('/b')).toBe(1)
    expect(r.maxInFlight).toBe(2)
    expect(order.get('/a')).toEqual(expectedA)
    expect(order.get('/b')).toEqual(expectedB)
    expect(daemons.reduce((n, d) => n + d.stats.succeeded, 0)).toBe(38)
    const hooks = await storage.db.selectFrom('taskd_webhooks').select(['lease_owner']).where('id', 'in', [a.id, b.id]).execute()
    expect(hooks.every((h) => h.lease_owner === null)).toBe(true)
  })

  it.skipIf(skip)('SSRF: special-purpose addresses and names resolving to them are refused; the allowlist opens loopback', async () => {
    const v4 = await receiver(() => ({status: 200}))
    const v6 = await receiver(() => ({status: 200}), '::1')
    const port = v4.port
    const urls: Record<string, string> = {
      'loopback': `http://127.0.0.1:${port}/`,
      'loopback-other': `http://127.0.0.2:${port}/`,
      'loopback-v6': `http://[::1]:${v6.port}/`,
      'mapped-v6': `http://[::ffff:127.0.0.1]:${port}/`,
      'decimal': `http://2130706433:${port}/`,
      'localhost': `http://localhost:${port}/`,
      'unspecified': `http://0.0.0.0:${port}/`,
      'private-10': 'http://10.0.0.1/',
      'private-172': 'http://172.16.5.4/',
      'private-192': 'http://192.168.1.1/',
      'metadata': 'http://169.254.169.254/latest/meta-data/',
      'cgnat': 'http://100.64.0.1/',
      'unique-local': 'http://[fd00::1]/',
      'unique-local-fc': 'http://[fc00::1]/',
      'multicast': 'http://224.0.0.1/',
      'multicast-v6': 'http://[ff02::1]/',
      'link-local-v6': 'http://[fe80::1]/',
    }
    const hooks = new Map<string, number>()
    for (const [key, url] of Object.entries(urls)) hooks.set(key, (await addHook(storage, {name: key, url, events: ['ssrf.*']})).id)
    await publishWebhookEvent(storage, {eventType: 'ssrf.probe', data: {}})

    await runDaemon(webhooksGenerator())
    for (const [key, id] of hooks) {
      const [row] = await requestsOf(id)
      expect(row, key).toMatchObject({status: 'queued', last_error_type: 'blocked'})
      expect(row.last_error_message, key).toMatch(/refusing to connect/)
    }
    expect(v4.received).toHaveLength(0)
    expect(v6.received).toHaveLength(0)

    // With 127.0.0.1/32 allowed, exactly what reaches 127.0.0.1 is delivered; the rest stays refused.
    const localhostOnlyV4 = (await dns.promises.lookup('localhost', {all: true})).every((a) => a.address === '127.0.0.1')
    const opened = new Set(['loopback', 'mapped-v6', 'decimal', ...(localhostOnlyV4 ? ['localhost'] : [])])
    await makeDue()
    await runDaemon(webhooksGenerator({allowCidrs: LOOPBACK}))
    for (const [key, id] of hooks) {
      const [row] = await requestsOf(id)
      if (opened.has(key)) expect(row, key).toMatchObject({status: 'sent'})
      else expect(row, key).toMatchObject({status: 'queued', last_error_type: 'blocked'})
    }
    expect(v4.received).toHaveLength(opened.size)
    expect(v6.received).toHaveLength(0)

    // Without the allowlist again, in the same process: a kept-alive connection opened under the
    // allowlist must not carry a delivery past the guard.
    await publishWebhookEvent(storage, {eventType: 'ssrf.again', data: {}})
    await runDaemon(webhooksGenerator())
    for (const [key, id] of hooks) {
      const rows = await requestsOf(id)
      expect(rows[1], key).toMatchObject({event_type: 'ssrf.again', status: 'queued', last_error_type: 'blocked'})
    }
    expect(v4.received).toHaveLength(opened.size)
    expect(v6.received).toHaveLength(0)
  })

  it.skipIf(skip)('a request purged, or whose hook is disabled, while its delivery is in flight stays failed', async () => {
    const held = new Map<string, ReturnType<typeof gate<Answer>>>()
    const r = await receiver((request) => {
      const g = gate<Answer>()
      held.set(request.path, g)
      return g.promise
    })
    const purged = await addHook(storage, {name: 'purged', url: `${r.base}/purged`, events: ['fly.*']})
    const disabled = await addHook(storage, {name: 'disabled', url: `${r.base}/disabled`, events: ['fly.*']})
    const delivered = await addHook(storage, {name: 'delivered', url: `${r.base}/delivered`, events: ['fly.*']})
    await publishWebhookEvent(storage, {eventType: 'fly.event', data: {}})
    const daemon = new Daemon({storage, generators: [webhooksGenerator({allowCidrs: LOOPBACK})], untilIdle: true, concurrency: 8})
    await daemon.start()
    await until(() => held.size === 3, {what: 'three requests held open at the receiver'})
    expect(await purgeWebhooks(storage, {hookId: purged.id})).toMatchObject({purgedRequests: 1})
    expect(await purgeWebhooks(storage, {hookId: delivered.id})).toMatchObject({purgedRequests: 1})
    expect((await disableHook(storage, disabled.id, 'retired')).failedRequests).toBe(1)
    held.get('/purged')!.open({status: 500})
    held.get('/disabled')!.open({status: 503})
    held.get('/delivered')!.open({status: 200})
    await daemon.finished()
    // A failed attempt does not bring an operator's decision back to "queued"...
    expect((await requestsOf(purged.id))[0]).toMatchObject({status: 'failed', last_error_type: 'purged'})
    expect((await requestsOf(disabled.id))[0]).toMatchObject({status: 'failed', last_error_type: 'hook', last_error_message: 'retired'})
    // ...while one the receiver accepted is recorded as what it is: sent.
    expect((await requestsOf(delivered.id))[0]).toMatchObject({status: 'sent'})
    await makeDue()
    expect((await runDaemon()).stats.leased).toBe(0)
    expect(r.received).toHaveLength(3)
  })

  it.skipIf(skip)('drain releases the lease of a hook whose only due request it already attempted', async () => {
    const slow = gate<Answer>()
    const r = await receiver((request) => (request.path === '/slow' ? slow.promise : {status: 500}))
    const fast = await addHook(storage, {name: 'fast-fail', url: `${r.base}/fast`, events: ['dl.*']})
    await addHook(storage, {name: 'slow', url: `${r.base}/slow`, events: ['dl.*']})
    const {requests} = await publishWebhookEvent(storage, {eventType: 'dl.event', data: {}})
    const fastRequest = requests.find((q) => q.hookId === fast.id)!.id
    const draining = drainWebhooks(storage, {owner: 'drain-lease', allowCidrs: LOOPBACK})
    // While the slow hook holds the drain's first round, the fast hook's failed request becomes due again.
    await until(async () => Number((await requestRow(fastRequest)).attempts) === 1, {what: 'the fast hook attempted'})
    await until(() => r.received.some((q) => q.path === '/slow'), {what: 'the slow request at the receiver'})
    await makeDue()
    slow.open({status: 200})
    expect(await draining).toMatchObject({attempted: 2, sent: 1, stillQueued: 1})
    expect(Number((await requestRow(fastRequest)).attempts)).toBe(1)
    expect((await hookRow(fast.id)).lease_owner).toBeNull()
    // So a daemon retries it at once, not after the drain's lease expires.
    await runDaemon()
    expect(Number((await requestRow(fastRequest)).attempts)).toBe(2)
  })

  it.skipIf(skip)('a floating webhook task is never delivered by the queue generator: only from the history, once', async () => {
    const r = await receiver(() => ({status: 200}))
    const hook = await addHook(storage, {name: 'float', url: `${r.base}/float`, events: ['float.*']})
    const {requests} = await publishWebhookEvent(storage, {eventType: 'float.event', data: {}})
    const id = requests[0].id
    await enqueueTask(storage, {taskClass: 'taskd.webhooks.deliver', data: {requestId: id, hookId: hook.id, hook: 'float', event: 'float.event'}})
    await enqueueTask(storage, {taskClass: 'HeraldWebhookWorker', data: {webhookRequestID: id}})
    // As `taskd run` does: the queue and the webhooks generator in one daemon.
    const both = new Daemon({storage, generators: [queueGenerator, webhooksGenerator({allowCidrs: LOOPBACK})], untilIdle: true, concurrency: 8})
    await both.start()
    await both.finished()
    expect(r.received).toHaveLength(1)
    expect(await requestRow(id)).toMatchObject({status: 'sent'})
    expect(Number((await requestRow(id)).attempts)).toBe(1)
    expect(await count('taskd_tasks')).toBe(0)
    const archived = await storage.db.selectFrom('taskd_task_archive').select(['task_class', 'result', 'reason']).where('task_class', '=', 'taskd.webhooks.deliver').executeTakeFirstOrThrow()
    expect(Number(archived.result)).toBe(ARCHIVE_RESULT.failure)
    expect(archived.reason).toMatch(/floating webhook task/)
  })

  it.skipIf(skip)('drain delivers everything queued and converts floating tasks; --dry-run changes nothing; a rerun is a no-op', async () => {
    const r = await receiver(() => ({status: 200}))
    const hook = await addHook(storage, {name: 'drain', url: `${r.base}/drain`, events: ['drain.*']})
    const ids: number[] = []
    for (let i = 0; i < 4; i++) ids.push(...(await publishWebhookEvent(storage, {eventType: 'drain.event', data: {i}})).requests.map((q) => q.id))
    // One waits for its retry in an hour; two also float in the task queue, as imported from Phabricator.
    await storage.db.updateTable('taskd_webhook_requests').set({attempts: 2, next_attempt_at: storage.now() + 3600, last_error_type: 'http', last_error_code: '500'}).where('id', '=', ids[0]).execute()
    await enqueueTask(storage, {taskClass: 'HeraldWebhookWorker', data: {webhookRequestID: ids[0]}})
    await enqueueTask(storage, {taskClass: 'HeraldWebhookWorker', data: {webhookRequestID: ids[2]}})
    const unrelated = await enqueueTask(storage, {taskClass: 'app.unrelated', data: {}})

    const before = await dumpTables()
    const dry = await drainWebhooks(storage, {owner: 'drain-dry', dryRun: true, allowCidrs: LOOPBACK})
    expect(dry).toEqual({dryRun: true, convertedFloating: 2, attempted: 0, sent: 0, failed: 0, stillQueued: 0, wouldAttempt: 4})
    expect(await dumpTables()).toBe(before)
    expect(r.received).toHaveLength(0)

    const report = await drainWebhooks(storage, {owner: 'drain-1', allowCidrs: LOOPBACK})
    expect(report).toEqual({dryRun: false, convertedFloating: 2, attempted: 4, sent: 4, failed: 0, stillQueued: 0, wouldAttempt: 0})
    expect((await requestsOf(hook.id)).map((row) => row.status)).toEqual(['sent', 'sent', 'sent', 'sent'])
    expect(r.received.map((q) => q.bodyId).sort()).toEqual(ids.map((id) => `req_${id}`).sort())
    const queue = await storage.db.selectFrom('taskd_tasks').select(['id', 'task_class']).execute()
    expect(queue.map((t) => Number(t.id))).toEqual([unrelated.id])
    const archived = await storage.db.selectFrom('taskd_task_archive').selectAll().orderBy('id').execute()
    expect(archived).toHaveLength(2)
    for (const row of archived) {
      expect(row.task_class).toBe('HeraldWebhookWorker')
      expect(Number(row.result)).toBe(ARCHIVE_RESULT.cancelled)
      expect(row.reason).toMatch(/floating webhook task converted/)
    }
    expect(archived.map((row) => (JSON.parse(row.data) as {webhookRequestID: number}).webhookRequestID)).toEqual([ids[0], ids[2]])
    expect((await hookRow(hook.id)).lease_owner).toBeNull()

    const settled = await dumpTables()
    const rerun = await drainWebhooks(storage, {owner: 'drain-2', allowCidrs: LOOPBACK})
    expect(rerun).toEqual({dryRun: false, convertedFloating: 0, attempted: 0, sent: 0, failed: 0, stillQueued: 0, wouldAttempt: 0})
    expect(await dumpTables()).toBe(settled)
    expect(r.received).toHaveLength(4)
  })

  it.skipIf(skip)('drain attempts each request once and leaves failures on the retry schedule, without holding the hook', async () => {
    const r = await receiver(() => ({status: 500}))
    const hook = await addHook(storage, {name: 'drain-fail', url: `${r.base}/x`, events: ['df.*']})
    for (let i = 0; i < 3; i++) await publishWebhookEvent(storage, {eventType: 'df.event', data: {i}})
    const report = await drainWebhooks(storage, {owner: 'drain-f', allowCidrs: LOOPBACK})
    expect(report).toMatchObject({attempted: 3, sent: 0, failed: 0, stillQueued: 3})
    expect(r.received).toHaveLength(3)
    for (const row of await requestsOf(hook.id)) {
      expect(row).toMatchObject({status: 'queued', last_error_code: '500'})
      expect(Number(row.attempts)).toBe(1)
    }
    expect((await hookRow(hook.id)).lease_owner).toBeNull()
  })

  it.skipIf(skip)('purge fails matching queued requests as "purged" (not deleted); --dry-run counts only; a rerun purges 0', async () => {
    const p1 = await addHook(storage, {name: 'p1', url: 'https://p1.example.com/hook', events: ['purge.*']})
    const p2 = await addHook(storage, {name: 'p2', url: 'https://p2.example.com/hook', events: ['purge.*']})
    for (let i = 0; i < 4; i++) await publishWebhookEvent(storage, {eventType: 'purge.event', data: {i}})
    const old = storage.now() - 7200
    const p1Rows = await requestsOf(p1.id)
    const p2Rows = await requestsOf(p2.id)
    const oldIds = [p1Rows[0].id, p1Rows[1].id, p2Rows[0].id, p2Rows[1].id].map(Number)
    await storage.db.updateTable('taskd_webhook_requests').set({created_at: old}).where('id', 'in', oldIds).execute()
    // A sent old request is history, not something to purge.
    await storage.db.updateTable('taskd_webhook_requests').set({status: 'sent', sent_at: old}).where('id', '=', Number(p1Rows[1].id)).execute()
    const floating = await enqueueTask(storage, {taskClass: 'HeraldWebhookWorker', data: {webhookRequestID: Number(p1Rows[0].id)}})
    await storage.db.updateTable('taskd_tasks').set({created_at: old}).where('id', '=', floating.id).execute()

    const before = await dumpTables()
    expect(await purgeWebhooks(storage, {hookId: p1.id, olderThanSeconds: 3600, dryRun: true})).toEqual({dryRun: true, purgedRequests: 1, purgedFloating: 1})
    expect(await dumpTables()).toBe(before)

    expect(await purgeWebhooks(storage, {hookId: p1.id, olderThanSeconds: 3600})).toEqual({dryRun: false, purgedRequests: 1, purgedFloating: 1})
    expect(await requestRow(Number(p1Rows[0].id))).toMatchObject({status: 'failed', last_error_type: 'purged'})
    expect((await requestRow(Number(p1Rows[1].id))).status).toBe('sent')
    expect((await requestsOf(p1.id)).slice(2).map((row) => row.status)).toEqual(['queued', 'queued'])
    expect((await requestsOf(p2.id)).map((row) => row.status)).toEqual(['queued', 'queued', 'queued', 'queued'])
    expect(await count('taskd_webhook_requests')).toBe(8)
    expect(await count('taskd_tasks')).toBe(0)
    const archived = await storage.db.selectFrom('taskd_task_archive').selectAll().executeTakeFirstOrThrow()
    expect(Number(archived.result)).toBe(ARCHIVE_RESULT.cancelled)
    expect(archived.reason).toMatch(/purged/)

    expect(await purgeWebhooks(storage, {hookId: p1.id, olderThanSeconds: 3600})).toEqual({dryRun: false, purgedRequests: 0, purgedFloating: 0})
    // Without a hook: every hook's old queued requests.
    expect(await purgeWebhooks(storage, {olderThanSeconds: 3600})).toEqual({dryRun: false, purgedRequests: 2, purgedFloating: 0})
    expect((await requestsOf(p2.id)).map((row) => [row.status, row.last_error_type])).toEqual([
      ['failed', 'purged'],
      ['failed', 'purged'],
      ['queued', null],
      ['queued', null],
    ])
    expect(await purgeWebhooks(storage, {olderThanSeconds: 3600})).toEqual({dryRun: false, purgedRequests: 0, purgedFloating: 0})
  })

  describe('the CLI', () => {
    let dir: string

    beforeAll(() => {
      if (skip) return
      dir = mkdtempSync(path.join(os.tmpdir(), 'taskd-webhooks-cli-'))
      writeFileSync(path.join(dir, 'taskd.config.mjs'), `export default {webhooks: {allowCidrs: ['127.0.0.1/32']}}\n`)
    })
    afterAll(() => {
      if (!skip) rmSync(dir, {recursive: true, force: true})
    })

    /** The built CLI, spawned without blocking this process (its receivers must keep answering). */
    const cli = (...args: string[]) =>
      new Promise<{code: number | null; stdout: string; stderr: string}>((resolve, reject) => {
        const child = spawn(process.execPath, [path.join(ROOT, 'bin/run.js'), ...args, '--database', database.url], {
          cwd: dir,
          env: {...process.env, NODE_ENV: 'production', TASKD_SKIP_NEW_VERSION_CHECK: 'true', TASKD_DATABASE_URL: '', TASKD_CONFIG: ''},
        })
        let stdout = ''
        let stderr = ''
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
        child.on('error', reject)
        child.on('close', (code) => resolve({code, stdout, stderr}))
      })
    const json = <T>(result: {code: number | null; stdout: string; stderr: string}): T => {
      expect(result.code, result.stderr).toBe(0)
      return JSON.parse(result.stdout) as T
    }

    it.skipIf(skip)('add, list, show, publish, test, requests, drain and purge; secrets never printed; unknown ids exit 1', async () => {
      const rejections: string[] = []
      const secrets = new Map<string, string>()
      const r = await receiver(verifyingBehaviour(secrets, rejections, (request) => (request.path === '/down' ? {status: 500} : {status: 200})))
      const legacy = legacySecret()

      // Independent invocations run side by side (each is a process start).
      const [addedOut, addedLegacyOut, downOut] = await Promise.all([
        cli('webhooks', 'add', '--name', 'cli', '--url', `${r.base}/cli`, '--firehose', '--json'),
        cli('webhooks', 'add', '--name', 'legacy', '--url', `${r.base}/legacy`, '--secret', legacy, '--events', 'cli.*', '--json'),
        cli('webhooks', 'add', '--name', 'down', '--url', `${r.base}/down`, '--events', 'none.*', '--json'),
      ])
      const added = json<{id: number; secret: string; status: string; url: string}>(addedOut)
      expect(added).toMatchObject({status: 'firehose', secret: 'whsec_****', url: `${r.base}/cli`})
      const legacyHook = json<{id: number; secret: string; events: string[]}>(addedLegacyOut)
      expect(legacyHook).toMatchObject({secret: '****', events: ['cli.*']})
      const down = json<{id: number}>(downOut)
      const secret = await secretOf(added.id)
      secrets.set('/cli', secret)
      secrets.set('/legacy', legacy)
      secrets.set('/down', await secretOf(down.id))
      const secretTexts = [secret, secret.slice(6), legacy, (await secretOf(down.id)).slice(6)]
      for (const out of [addedOut, addedLegacyOut, downOut]) for (const text of secretTexts) expect(out.stdout).not.toContain(text)

      const [listed, shown, shownLegacy, ...unknown] = await Promise.all([
        cli('webhooks', 'list', '--json'),
        cli('webhooks', 'show', String(added.id), '--json'),
        cli('webhooks', 'show', String(legacyHook.id), '--json'),
        cli('webhooks', 'show', '9999'),
        cli('webhooks', 'test', '9999'),
        cli('webhooks', 'drain', '--hook', '9999'),
      ])
      for (const out of [listed, shown, shownLegacy]) {
        expect(out.code, out.stderr).toBe(0)
        for (const text of secretTexts) expect(out.stdout).not.toContain(text)
      }
      expect(json<{hooks: {id: number; secret: string}[]}>(listed).hooks.map((h) => [h.id, h.secret])).toEqual(
        [
          [added.id, 'whsec_****'],
          [legacyHook.id, '****'],
          [down.id, 'whsec_****'],
        ].sort((x, y) => Number(x[0]) - Number(y[0])),
      )
      expect(json<{id: number; requests: Record<string, number>}>(shown)).toMatchObject({id: added.id, requests: {queued: 0, sent: 0, failed: 0}})
      expect(json<{id: number; secret: string}>(shownLegacy)).toMatchObject({id: legacyHook.id, secret: '****'})
      for (const out of unknown) {
        expect(out.code).toBe(1)
        expect(out.stdout).toBe('')
        expect(out.stderr.trim().split('\n')).toHaveLength(1)
        expect(out.stderr).toMatch(/webhook 9999 not found/)
      }

      const [publishedOut, tested, testedDown] = await Promise.all([
        cli('webhooks', 'publish', '--event', 'cli.ping', '--object', 'T9', '--data', '{"n": 1}', '--json'),
        cli('webhooks', 'test', String(added.id)),
        cli('webhooks', 'test', String(down.id)),
      ])
      const published = json<{eventType: string; requests: {id: number; hookId: number}[]}>(publishedOut)
      expect(published.eventType).toBe('cli.ping')
      expect(published.requests.map((q) => q.hookId).sort()).toEqual([added.id, legacyHook.id].sort())
      expect(await count('taskd_tasks')).toBe(0)
      expect(tested.code, tested.stderr).toBe(0)
      expect(tested.stdout).toMatch(/HTTP 200/)
      expect(testedDown.code).toBe(1)
      expect(testedDown.stderr.trim().split('\n')).toHaveLength(1)
      expect(testedDown.stderr).toMatch(/HTTP 500/)

      const requests = json<{requests: {id: number; hookId: number; eventType: string; status: string; attempts: number; test: boolean; lastError: unknown}[]}>(await cli('webhooks', 'requests', '--json'))
      expect(requests.requests).toHaveLength(4)
      const queued = requests.requests.filter((q) => q.status === 'queued')
      expect(queued.map((q) => q.id).sort()).toEqual(published.requests.map((q) => q.id).sort())
      expect(queued.every((q) => q.eventType === 'cli.ping' && q.attempts === 0 && !q.test && q.lastError === null)).toBe(true)
      expect(requests.requests.filter((q) => q.test).map((q) => [q.hookId, q.status])).toEqual(
        expect.arrayContaining([
          [added.id, 'sent'],
          [down.id, 'failed'],
        ]),
      )

      const drained = json<Record<string, unknown>>(await cli('webhooks', 'drain', '--json'))
      expect(drained).toEqual({dryRun: false, convertedFloating: 0, attempted: 2, sent: 2, failed: 0, stillQueued: 0, wouldAttempt: 0})
      expect(rejections).toEqual([])
      expect(r.received.filter((q) => q.path !== '/down')).toHaveLength(3)

      await publishWebhookEvent(storage, {eventType: 'cli.pong', data: {}})
      const [purgePreview, purgeOld, drainPreview] = await Promise.all([
        cli('webhooks', 'purge', '--dry-run', '--json'),
        cli('webhooks', 'purge', '--dry-run', '--older-than', '1h', '--json'),
        cli('webhooks', 'drain', '--dry-run', '--json'),
      ])
      expect(json<Record<string, unknown>>(purgePreview)).toEqual({dryRun: true, purgedRequests: 2, purgedFloating: 0})
      expect(json<Record<string, unknown>>(purgeOld)).toEqual({dryRun: true, purgedRequests: 0, purgedFloating: 0})
      expect(json<Record<string, unknown>>(drainPreview)).toEqual({dryRun: true, convertedFloating: 0, attempted: 0, sent: 0, failed: 0, stillQueued: 0, wouldAttempt: 2})
      expect((await storage.db.selectFrom('taskd_webhook_requests').select('status').where('event_type', '=', 'cli.pong').execute()).map((q) => q.status)).toEqual(['queued', 'queued'])
    })
  })
})
