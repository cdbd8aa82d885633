/**
 * taskd: background daemons whose tasks are generated at runtime by task generators.
 *
 * Terminology (used the same way in code, logs and the CLI):
 * - task: one unit of work a handler executes, known by its ref `generator:identifier`.
 * - generator: a source of tasks at runtime (the queue table, GC collectors, webhook history…). It
 *   declares the priority range it can produce, says cheaply what it has ready, leases atomically
 *   across daemons, previews without side effects (peek), and takes each outcome.
 * - dynamic task: the ephemeral container the daemon runs (ref, class, priority, data, lease, attempt).
 * - lease: owner + expiry on a task (or on a generator's run); a heartbeat extends it while work runs;
 *   completion is fenced on the owner so a task taken over is never completed twice.
 * - generator state: one row per generator (and sub-key): cursor, next run, run lease, counts, errors, paused.
 * - priority: an integer, lower runs sooner (1000 alerts, 2000 default, 2500 commit, 3000 bulk,
 *   3500 index, 4000 import; GC runs at 5000).
 */
export {TaskdError, PermanentFailure, YieldTask, usageError, describeError, type ErrorCode} from './core/errors.js'
export type {DynamicTask, TaskSpec, TaskOutcome} from './core/task.js'
export {formatRef, parseRef} from './core/task.js'
export type {TaskGenerator, GeneratorContext, LeaseRequest, PeekRequest, GeneratorSummary} from './core/generator.js'
export type {HandlerContext, HandlerDefinition, HandlerFunction, HandlerInput} from './core/handler.js'
export {PRIORITIES, GC_PRIORITY, parsePriority} from './core/priority.js'
export {parseDuration} from './core/duration.js'
export {fillSlots} from './core/scheduler.js'

export {Storage} from './storage/storage.js'
export type {TaskdSchema} from './storage/schema.js'
export {migrateToLatest, migrationStatus, ensureSchema} from './storage/migrations.js'
export {parseDatabaseUrl, redactUrl} from './storage/url.js'

export {enqueueTask, enqueueTasks, MAX_DATA_BYTES, type EnqueueTarget} from './generators/queue/enqueue.js'
export {queueGenerator} from './generators/queue/generator.js'
export {builtinGenerators, allGenerators} from './generators/index.js'

export {Daemon, buildHandlerRegistry, type DaemonOptions} from './daemon/daemon.js'
export {runTask, HandlerTimeout} from './daemon/run-task.js'
export {createLogger, type Logger} from './daemon/logger.js'

export {defineConfig, loadConfig, type TaskdConfig} from './config/config.js'

export {defineSingletonGenerator, type SingletonGeneratorOptions, type SingletonRun, type SingletonResult} from './generators/singleton.js'
export {defineCursorGenerator, pageAfter, encodeCursor, decodeCursor, type CursorPosition, type CursorGeneratorOptions} from './generators/cursor.js'
export {gcGenerator, runCollector, GC_KEY} from './generators/gc/generator.js'
export {COLLECTORS, type Collector} from './generators/gc/collectors.js'
export {
  getState,
  listStates,
  setPaused,
  acquireRun,
  renewRun,
  finishRun,
  failRun,
  releaseRun,
  advanceCursor,
  ensureState,
  type GeneratorState,
  type RunResult,
} from './storage/generator-state.js'
export {overviewGenerators, type GeneratorOverview} from './generators/overview.js'
export {publishWebhookEvent, addHook, listHooks, getHook, enableHook, disableHook, rotateSecret, type WebhookView, type PublishedEvent} from './generators/webhooks/hooks.js'
export {webhooksGenerator, WEBHOOKS_KEY, RETRY_SCHEDULE_SECONDS, type WebhookOptions} from './generators/webhooks/generator.js'
export {signWebhook, deliverWebhook, generateSecret, type DeliveryResult} from './generators/webhooks/delivery.js'
export {
  listTasks,
  showTask,
  retryTasks,
  cancelTasks,
  freeTasks,
  setPriority,
  delayTasks,
  executeTask,
  type TaskSelector,
  type TaskInfo,
  type TaskDetail,
  type MutationResult,
} from './generators/queue/admin.js'
export {migrateLegacy, type LegacyMigrationOptions, type LegacyMigrationReport} from './migrate/legacy.js'
