import type {Insertable} from 'kysely'

import {MAX_PRIORITY} from '../core/priority.js'
import {ARCHIVE_RESULT, type TaskArchiveTable, type TasksTable, type WebhookRequestStatus, type WebhookStatus, type WebhooksTable, type WebhookRequestsTable} from '../storage/schema.js'
import type {LegacyArchiveRow, LegacyHookRow, LegacyRequestRow, LegacyTaskRow} from './legacy-source.js'

/**
 * The pure half of `taskd migrate legacy`: how one Phabricator row becomes one taskd row. No I/O;
 * ids are assigned by the caller (legacy-id where free).
 */

/** The worker class whose tasks are folded into the webhook request history instead of the queue. */
export const WEBHOOK_WORKER_CLASS = 'HeraldWebhookWorker'
/** Phabricator's owner of a yielded task. */
export const YIELD_OWNER = '(yield)'
/** Phabricator's default wait before a retry (a failed webhook call is retried after it). */
export const DEFAULT_RETRY_WAIT = 300

/**
 * How a legacy lease state was carried over:
 * - unleased: owner NULL, nothing to wait for: ready.
 * - delayed: owner NULL and leaseExpires in the future (`delayUntil`, `bin/worker delay`): waits until then.
 * - yielded: owner `(yield)`, wait not over: waits until leaseExpires.
 * - yield-over: owner `(yield)`, wait over: ready.
 * - retry-wait: failed under its current owner (failureTime at or after the lease began), wait not over: waits.
 * - retry-due: the same, wait over: ready.
 * - lease-released: a live lease held by a Phabricator daemon: unleased, ready (no taskd daemon holds it).
 * - lease-kept: the same with `--keep-leases`: owner and expiry kept; taskd takes it once it expires.
 * - lease-expired: a lease that already expired: ready.
 */
export type LeaseKind = 'unleased' | 'delayed' | 'yielded' | 'yield-over' | 'retry-wait' | 'retry-due' | 'lease-released' | 'lease-kept' | 'lease-expired'

export interface LeaseMapping {
  kind: LeaseKind
  available_at: number
  lease_owner: string | null
  lease_expires: number | null
}

/** The lease epoch in a Phabricator owner string `pid:epoch:host:seq`, or null. */
export function ownerEpoch(owner: string): number | null {
  const match = /^\d+:(\d+):/.exec(owner)
  return match ? Number(match[1]) : null
}

/** Maps a legacy lease (owner, expiry, failure time) to taskd's available_at / lease columns. */
export function mapLease(row: Pick<LegacyTaskRow, 'leaseOwner' | 'leaseExpires' | 'failureTime' | 'dateCreated'>, now: number, keepLeases: boolean): LeaseMapping {
  const {leaseOwner: owner, leaseExpires: expires} = row
  const ready = Math.min(row.dateCreated, now)
  const future = expires !== null && expires > now
  const wait = (kind: LeaseKind): LeaseMapping => ({kind, available_at: expires ?? ready, lease_owner: null, lease_expires: null})
  const free = (kind: LeaseKind): LeaseMapping => ({kind, available_at: ready, lease_owner: null, lease_expires: null})
  if (owner === null) return future ? wait('delayed') : free('unleased')
  if (owner === YIELD_OWNER) return future ? wait('yielded') : free('yield-over')
  const since = ownerEpoch(owner)
  if (row.failureTime !== null && since !== null && row.failureTime >= since) return future ? wait('retry-wait') : free('retry-due')
  if (!future) return free('lease-expired')
  if (keepLeases) return {kind: 'lease-kept', available_at: ready, lease_owner: owner.slice(0, 64), lease_expires: expires}
  return free('lease-released')
}

/** Why a task's payload cannot be used, or null when it is valid JSON. */
export function dataProblem(row: Pick<LegacyTaskRow, 'data' | 'dataID'>): string | null {
  if (row.dataID === null) return 'the task has no data row (dataID is NULL)'
  if (row.data === null) return `its data row ${row.dataID} is missing from worker_taskdata`
  try {
    JSON.parse(row.data)
    return null
  } catch (error) {
    return `its data (row ${row.dataID}) is not valid JSON: ${(error as Error).message}`
  }
}

/** The payload as taskd stores it: the legacy text when valid, `null` when missing, else the raw text as a JSON string. */
export function storedData(row: Pick<LegacyTaskRow, 'data' | 'dataID'>): string {
  if (row.data === null) return 'null'
  return dataProblem(row) === null ? row.data : JSON.stringify(row.data)
}

export type ClassMap = ReadonlyMap<string, string>

/** Phabricator priorities are unsigned 32-bit; taskd's stop at 2^31 − 1 (no real install comes near). */
export function clampPriority(priority: number): number {
  return Math.min(Math.max(priority, 0), MAX_PRIORITY)
}

export function targetClass(taskClass: string, classMap: ClassMap): string {
  return classMap.get(taskClass) ?? taskClass
}

type TaskInsert = Omit<Insertable<TasksTable>, 'id'>
type ArchiveInsert = Omit<Insertable<TaskArchiveTable>, 'id'>

/** An active legacy task as a taskd queue row (the caller sets `id`). */
export function activeTaskRow(row: LegacyTaskRow, lease: LeaseMapping, classMap: ClassMap): TaskInsert {
  return {
    task_class: targetClass(row.taskClass, classMap),
    priority: clampPriority(row.priority),
    data: storedData(row),
    object_ref: row.objectPHID,
    container_ref: row.containerPHID,
    available_at: lease.available_at,
    lease_owner: lease.lease_owner,
    lease_expires: lease.lease_expires,
    // taskd counts leases; Phabricator only counts failures, each of which was one run.
    attempts: row.failureCount,
    failure_count: row.failureCount,
    failure_time: row.failureTime,
    last_error: null,
    created_at: row.dateCreated,
    legacy_id: row.id,
  }
}

/** An active legacy task that cannot run (bad payload, vanished webhook request), archived as failed. */
export function failedActiveTaskRow(row: LegacyTaskRow, reason: string, now: number, classMap: ClassMap): ArchiveInsert {
  return {
    task_class: targetClass(row.taskClass, classMap),
    priority: clampPriority(row.priority),
    data: storedData(row),
    object_ref: row.objectPHID,
    container_ref: row.containerPHID,
    attempts: row.failureCount,
    failure_count: row.failureCount,
    result: ARCHIVE_RESULT.failure,
    reason: `migrated from Phabricator as failed: ${reason}`.slice(0, 4000),
    duration_us: 0,
    created_at: row.dateCreated,
    archived_at: now,
    legacy_id: row.id,
  }
}

const LEGACY_RESULTS = new Set<number>(Object.values(ARCHIVE_RESULT))

/** Why an archived legacy row cannot be copied as it is, or null. */
export function archiveProblem(row: LegacyArchiveRow): string | null {
  if (!LEGACY_RESULTS.has(row.result)) return `unknown result ${row.result} (expected 0 success, 1 failure, 2 cancelled)`
  return dataProblem(row)
}

/** An archived legacy task as a taskd archive row; a malformed one becomes a failure with the reason. */
export function archiveTaskRow(row: LegacyArchiveRow, classMap: ClassMap): ArchiveInsert {
  const problem = archiveProblem(row)
  return {
    task_class: targetClass(row.taskClass, classMap),
    priority: clampPriority(row.priority),
    data: storedData(row),
    object_ref: row.objectPHID,
    container_ref: row.containerPHID,
    // Each failure was one run, and a finished (not cancelled) task ran once more.
    attempts: row.failureCount + (row.result === ARCHIVE_RESULT.cancelled ? 0 : 1),
    failure_count: row.failureCount,
    result: problem ? ARCHIVE_RESULT.failure : row.result,
    reason: problem ? `migrated from Phabricator as failed (legacy result ${row.result}): ${problem}`.slice(0, 4000) : null,
    duration_us: row.duration,
    created_at: row.dateCreated,
    archived_at: row.archivedEpoch ?? row.dateModified,
    legacy_id: row.id,
  }
}

const HOOK_STATUSES = new Set<string>(['firehose', 'enabled', 'disabled'])

export function hookProblem(row: LegacyHookRow): string | null {
  return HOOK_STATUSES.has(row.status) ? null : `unknown status '${row.status}' (expected firehose, enabled or disabled)`
}

/** Event patterns: a firehose hook takes everything; the others took what Herald rules sent them. */
export function hookEvents(status: string): string[] {
  return status === 'firehose' ? ['*'] : ['phabricator.*']
}

/** A legacy hook as a taskd hook; one with an unknown status is imported disabled, with the reason. */
export function hookRow(row: LegacyHookRow): Omit<Insertable<WebhooksTable>, 'id'> {
  const problem = hookProblem(row)
  const status: WebhookStatus = problem ? 'disabled' : (row.status as WebhookStatus)
  return {
    name: row.name,
    url: row.webhookURI,
    secret: row.hmacKey,
    status,
    events: JSON.stringify(hookEvents(row.status)),
    paused_until: 0,
    disabled_reason: problem ? `migrated from Phabricator as disabled: ${problem}` : status === 'disabled' ? 'disabled in Phabricator' : null,
    lease_owner: null,
    lease_expires: null,
    lease_request_id: null,
    created_at: row.dateCreated,
    updated_at: row.dateModified,
    legacy_id: row.id,
  }
}

/** The event type of every migrated request (Phabricator calls hooks on object edits). */
export const LEGACY_EVENT_TYPE = 'phabricator.edit'
const REQUEST_STATUSES = new Set<string>(['queued', 'sent', 'failed'])

interface RequestProperties {
  retry?: unknown
  errorType?: unknown
  errorCode?: unknown
  transactionPHIDs?: unknown
  triggerPHIDs?: unknown
  silent?: unknown
  test?: unknown
  secure?: unknown
}

/** The PHID's type code (`PHID-TASK-…` → `TASK`), or Phabricator's unknown marker. */
export function phidType(phid: string): string {
  const match = /^PHID-([A-Z0-9]{4})-/.exec(phid)
  return match ? match[1] : '????'
}

const phidList = (value: unknown): {phid: string}[] => (Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string').map((phid) => ({phid})) : [])

/** The body Phabricator would have POSTed for this request (HeraldWebhookWorker's payload shape). */
export function requestPayload(row: LegacyRequestRow, properties: RequestProperties): Record<string, unknown> {
  return {
    object: {type: phidType(row.objectPHID), phid: row.objectPHID},
    triggers: phidList(properties.triggerPHIDs),
    action: {test: properties.test === true, silent: properties.silent === true, secure: properties.secure === true, epoch: row.dateCreated},
    transactions: phidList(properties.transactionPHIDs),
  }
}

const TRANSPORT_ERRORS: Record<string, string> = {'1': 'timed out', '2': 'connection aborted', '3': 'connection refused', '4': 'connection failed'}

/** Parses the properties dict, or says why it cannot be. */
export function parseProperties(text: string): {properties: RequestProperties; problem: string | null} {
  try {
    const value: unknown = JSON.parse(text)
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return {properties: {}, problem: 'its properties are not a JSON object'}
    return {properties: value as RequestProperties, problem: null}
  } catch (error) {
    return {properties: {}, problem: `its properties are not valid JSON: ${(error as Error).message}`}
  }
}

export function requestProblem(row: LegacyRequestRow): string | null {
  if (!REQUEST_STATUSES.has(row.status)) return `unknown status '${row.status}' (expected queued, sent or failed)`
  return parseProperties(row.properties).problem
}

type RequestInsert = Omit<Insertable<WebhookRequestsTable>, 'id' | 'hook_id'>

/**
 * A legacy request as a taskd request. Phabricator keeps only the last attempt, so attempts is 0 or 1;
 * a queued request that failed last is due again 5 minutes after that attempt (Phabricator's retry
 * wait). A malformed request is imported as failed, with the reason in last_error_message.
 */
export function requestRow(row: LegacyRequestRow): RequestInsert {
  const {properties, problem: propertiesProblem} = parseProperties(row.properties)
  const problem = requestProblem(row) ?? propertiesProblem
  const attempted = row.lastRequestResult !== 'none' || row.lastRequestEpoch > 0
  const lastAttempt = row.lastRequestEpoch > 0 ? row.lastRequestEpoch : null
  const errorType = typeof properties.errorType === 'string' ? properties.errorType : null
  const errorCode = properties.errorCode === undefined || properties.errorCode === null ? null : String(properties.errorCode)
  const httpStatus = errorType === 'http' && errorCode !== null && /^\d{3}$/.test(errorCode) ? Number(errorCode) : null
  const status: WebhookRequestStatus = problem ? 'failed' : (row.status as WebhookRequestStatus)

  let lastError: {type: string; code: string | null; message: string} | null = null
  if (problem) {
    lastError = {type: 'internal', code: null, message: `migrated from Phabricator as failed: ${problem}`}
  } else if (row.lastRequestResult === 'fail' || (row.status === 'failed' && errorType !== null)) {
    if (errorType === 'http' && httpStatus === null && errorCode !== null && TRANSPORT_ERRORS[errorCode]) {
      lastError = {type: 'network', code: errorCode, message: TRANSPORT_ERRORS[errorCode]}
    } else if (errorType === 'timeout') {
      lastError = {type: 'timeout', code: errorCode, message: 'timed out'}
    } else if (errorType === 'hook') {
      lastError = {type: 'hook', code: errorCode, message: `not called: hook/${errorCode ?? '?'}`}
    } else {
      lastError = {type: errorType ?? 'http', code: errorCode, message: httpStatus === null ? `failed: ${errorType ?? '?'}/${errorCode ?? '?'}` : `HTTP ${httpStatus}`}
    }
  }

  return {
    event_type: LEGACY_EVENT_TYPE,
    object_ref: row.objectPHID || null,
    payload: JSON.stringify(requestPayload(row, properties)),
    status,
    attempts: attempted ? 1 : 0,
    next_attempt_at:
      status === 'queued' ? (row.lastRequestResult === 'fail' ? row.lastRequestEpoch + DEFAULT_RETRY_WAIT : row.dateCreated) : (lastAttempt ?? row.dateModified),
    last_attempt_at: lastAttempt,
    last_error_type: lastError?.type ?? null,
    last_error_code: lastError?.code ?? null,
    last_error_message: lastError?.message ?? null,
    response_status: httpStatus,
    response_body: null,
    is_test: properties.test === true ? 1 : 0,
    created_at: row.dateCreated,
    updated_at: row.dateModified,
    sent_at: status === 'sent' ? (lastAttempt ?? row.dateModified) : null,
    legacy_id: row.id,
  }
}

/** The request PHID a `HeraldWebhookWorker` task names, or null when its data does not name one. */
export function webhookRequestPhid(data: string | null): string | null {
  if (data === null) return null
  try {
    const value: unknown = JSON.parse(data)
    if (typeof value === 'object' && value !== null && 'webhookRequestPHID' in value) {
      const phid = (value as {webhookRequestPHID: unknown}).webhookRequestPHID
      return typeof phid === 'string' && phid !== '' ? phid : null
    }
  } catch {
    return null
  }
  return null
}
