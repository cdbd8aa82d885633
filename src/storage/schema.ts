import type {Generated} from 'kysely'

/** Times are integer epoch seconds on the database's clock (see Storage.now). */
export interface TasksTable {
  id: Generated<number>
  task_class: string
  priority: number
  /** JSON text; stored inline so a lease is one indexed read and archival is one copy. */
  data: string
  object_ref: string | null
  container_ref: string | null
  /** Not leasable before this time (delay, yield, retry wait). */
  available_at: number
  lease_owner: string | null
  lease_expires: number | null
  /** How many times the task was leased (so run): attempt N of a task is its Nth lease. */
  attempts: Generated<number>
  failure_count: Generated<number>
  failure_time: number | null
  last_error: string | null
  created_at: number
  legacy_id: number | null
}

export const ARCHIVE_RESULT = {success: 0, failure: 1, cancelled: 2} as const
export type ArchiveResultName = keyof typeof ARCHIVE_RESULT

export interface TaskArchiveTable {
  id: number
  task_class: string
  priority: number
  data: string
  object_ref: string | null
  container_ref: string | null
  attempts: number
  failure_count: number
  result: number
  reason: string | null
  duration_us: number | null
  created_at: number
  archived_at: number
  legacy_id: number | null
}

export interface GeneratorStateTable {
  generator: string
  /** Sub-key, e.g. a GC collector; '' for the generator's own row. */
  state_key: string
  cursor: string | null
  /** Bumped on every cursor write: the compare-and-set token. */
  cursor_version: Generated<number>
  next_run_at: Generated<number>
  backoff_seconds: Generated<number>
  run_owner: string | null
  run_expires: number | null
  last_run_at: number | null
  last_count: number | null
  total_count: Generated<number>
  error_streak: Generated<number>
  last_error: string | null
  paused: Generated<number>
  updated_at: number
}

export interface DaemonsTable {
  id: string
  host: string
  pid: number
  started_at: number
  heartbeat_at: number
  concurrency: number
  status: string
  generators: string
  /** JSON list of {ref, taskClass, startedAt} being run now. */
  running: string
}

export interface GcPoliciesTable {
  collector: string
  /** null = keep indefinitely */
  retention_seconds: number | null
  updated_at: number
}

export type WebhookStatus = 'firehose' | 'enabled' | 'disabled'
export type WebhookRequestStatus = 'queued' | 'sent' | 'failed'

export interface WebhooksTable {
  id: Generated<number>
  name: string
  url: string
  /** HMAC secret: `whsec_<base64>` (Standard Webhooks) or a legacy Phabricator key. Never printed. */
  secret: string
  status: WebhookStatus
  /** JSON list of event type patterns (`task.*`, `*`) an enabled hook subscribes to. */
  events: string
  /** Error backoff: no delivery before this time (10 failures in 5 minutes pause the hook 5 minutes). */
  paused_until: Generated<number>
  disabled_reason: string | null
  /** Per-hook serialisation: the daemon delivering to this hook now, and which request. */
  lease_owner: string | null
  lease_expires: number | null
  lease_request_id: number | null
  created_at: number
  updated_at: number
  legacy_id: number | null
}

export interface WebhookRequestsTable {
  id: Generated<number>
  hook_id: number
  event_type: string
  object_ref: string | null
  /** JSON payload, delivered as the `data` of the body. */
  payload: string
  status: WebhookRequestStatus
  attempts: Generated<number>
  next_attempt_at: number
  last_attempt_at: number | null
  /** hook | http | timeout | network | blocked | purged | internal */
  last_error_type: string | null
  /** HTTP status or transport code. */
  last_error_code: string | null
  last_error_message: string | null
  response_status: number | null
  response_body: string | null
  is_test: Generated<number>
  created_at: number
  updated_at: number
  sent_at: number | null
  legacy_id: number | null
}

/** Outcome of one imported legacy row: copied, folded into another row (webhook tasks), or imported as failed. */
export type LegacyImportOutcome = 'imported' | 'converted' | 'failed'

/** What `taskd migrate legacy` imported: source table + legacy id → target row (resume and idempotence). */
export interface LegacyImportsTable {
  /** Schema-qualified source table, e.g. `phabricator_worker.worker_activetask`. */
  source_table: string
  legacy_id: number
  legacy_phid: string | null
  outcome: LegacyImportOutcome
  target_table: string | null
  target_id: number | null
  /** Why a row was imported as failed, or what it was converted into. */
  detail: string | null
  imported_at: number
}

export interface TaskdSchema {
  taskd_tasks: TasksTable
  taskd_task_archive: TaskArchiveTable
  taskd_generator_state: GeneratorStateTable
  taskd_daemons: DaemonsTable
  taskd_gc_policies: GcPoliciesTable
  taskd_webhooks: WebhooksTable
  taskd_webhook_requests: WebhookRequestsTable
  taskd_legacy_imports: LegacyImportsTable
}
