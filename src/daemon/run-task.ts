import {performance} from 'node:perf_hooks'

import {PermanentFailure, YieldTask, describeError} from '../core/errors.js'
import type {HandlerContext, ResolvedHandler} from '../core/handler.js'
import type {DynamicTask, TaskOutcome, TaskSpec} from '../core/task.js'
import {snapshotTaskSpec} from '../generators/queue/enqueue.js'

export interface RunTaskHooks {
  /** Handed to the handler as ctx.store. */
  store: unknown
  /** Database clock, epoch seconds with fraction. */
  now(): number
  /** Aborted when the daemon stops or the lease is lost. */
  signal: AbortSignal
  extendLease(seconds: number): Promise<void>
  log(message: string): void
}

/** The longest delay setTimeout honours; anything longer fires after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647

export class HandlerTimeout extends Error {
  constructor(seconds: number) {
    super(`handler timed out after ${seconds}s`)
    this.name = 'HandlerTimeout'
  }
}

/**
 * Runs one task's handler and turns whatever happens into an outcome: success, yield, permanent
 * failure, or an error that is retried after the class's wait until its retry budget is spent.
 * Shared by the daemon and `taskd tasks execute`. Follow-ups count only when the outcome is success.
 */
export async function runTask(task: DynamicTask, handler: ResolvedHandler | null, hooks: RunTaskHooks): Promise<{outcome: TaskOutcome; followUps: TaskSpec[]}> {
  const started = performance.now()
  const elapsedUs = () => (performance.now() - started) * 1000
  const followUps: TaskSpec[] = []
  if (task.dataError) return {outcome: {kind: 'fail', task, reason: task.dataError, durationUs: 0}, followUps}
  if (!handler) {
    return {outcome: {kind: 'fail', task, reason: `no handler registered for task class '${task.taskClass}': add it to the config module's handlers`, durationUs: 0}, followUps}
  }
  const controller = new AbortController()
  const onAbort = () => controller.abort(hooks.signal.reason)
  hooks.signal.addEventListener('abort', onAbort, {once: true})
  const ctx: HandlerContext = {
    task,
    store: hooks.store,
    signal: controller.signal,
    yield: (seconds: number) => {
      throw new YieldTask(seconds)
    },
    fail: (reason: string) => {
      throw new PermanentFailure(reason)
    },
    extendLease: (seconds: number) => hooks.extendLease(seconds),
    // Checked now, so an invalid follow-up throws in the handler rather than poisoning the outcome batch.
    enqueue: (spec: TaskSpec) => void followUps.push(snapshotTaskSpec(spec)),
    log: hooks.log,
  }
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    // setTimeout fires at once for any delay over 2^31-1 ms (about 24.8 days), so a long timeout is
    // reached through a chain of shorter timers; an infinite one never fires.
    if (handler.timeoutSeconds === Number.POSITIVE_INFINITY) return
    const deadline = Date.now() + handler.timeoutSeconds * 1000
    const arm = () => {
      const left = deadline - Date.now()
      if (left > MAX_TIMER_MS) {
        timer = setTimeout(arm, MAX_TIMER_MS)
        return
      }
      timer = setTimeout(() => {
        controller.abort(new HandlerTimeout(handler.timeoutSeconds))
        reject(new HandlerTimeout(handler.timeoutSeconds))
      }, left)
    }
    arm()
  })
  try {
    const result = await Promise.race([Promise.resolve().then(() => handler.run(task.data, ctx)), timeout])
    return {outcome: {kind: 'success', task, durationUs: elapsedUs(), result}, followUps}
  } catch (error) {
    return {outcome: outcomeOfError(task, handler, error, elapsedUs(), hooks.now()), followUps: []}
  } finally {
    clearTimeout(timer)
    hooks.signal.removeEventListener('abort', onAbort)
  }
}

function outcomeOfError(task: DynamicTask, handler: ResolvedHandler, error: unknown, durationUs: number, now: number): TaskOutcome {
  if (error instanceof YieldTask && Number.isFinite(error.seconds)) return {kind: 'yield', task, until: now + Math.max(0, error.seconds)}
  if (error instanceof PermanentFailure) return {kind: 'fail', task, reason: error.message, durationUs}
  // A yield of NaN or Infinity seconds has no time to put the task back until: it is the handler's error.
  const message = error instanceof YieldTask ? `ctx.yield needs a finite number of seconds, got ${error.seconds}` : describeThrown(error)
  const failures = task.failureCount + 1
  if (handler.maxRetries !== null && failures > handler.maxRetries) {
    return {kind: 'fail', task, reason: `${message} (failed ${failures} times, more than the ${handler.maxRetries} retries allowed)`, durationUs}
  }
  return {kind: 'retry', task, error: message, retryAt: now + handler.retryWaitSeconds, durationUs}
}

/**
 * describeError, for values it cannot describe itself (a circular object without a prototype has no
 * JSON form and no toString): runTask must turn anything a handler throws into an outcome, or the
 * daemon gets an unhandled rejection and the task keeps its lease.
 */
function describeThrown(error: unknown): string {
  try {
    return describeError(error)
  } catch {
    try {
      return `non-Error thrown: ${Object.prototype.toString.call(error)}`
    } catch {
      return 'non-Error thrown that cannot be described'
    }
  }
}
