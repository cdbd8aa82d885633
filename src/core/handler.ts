import type {DynamicTask, TaskSpec} from './task.js'

export interface HandlerContext<Store = unknown> {
  readonly task: DynamicTask
  /** taskd's storage (the daemon's database handle), for handlers that keep state next to taskd's. */
  readonly store: Store
  /** Aborted when the daemon stops or the handler's timeout passes: stop work and return. */
  readonly signal: AbortSignal
  /** Put the task back until `seconds` from now without counting a failure (at least 5 s on the queue). */
  yield(seconds: number): never
  /** Fail the task permanently: it is archived as failed with this reason and never retried. */
  fail(reason: string): never
  /** Extend the lease now (the daemon's heartbeat also extends it while the handler runs). */
  extendLease(seconds: number): Promise<void>
  /** Enqueue a follow-up task; it is written only if this handler succeeds. */
  enqueue(spec: TaskSpec): void
  log(message: string): void
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- handlers choose how to type their store
export type HandlerFunction<Store = any> = (data: unknown, ctx: HandlerContext<Store>) => unknown

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see HandlerFunction
export interface HandlerDefinition<Store = any> {
  run: HandlerFunction<Store>
  /** The handler is abandoned (and the task retried) after this long; default 300 s. */
  timeoutSeconds?: number
  /** Lease length for this class; the heartbeat keeps extending it while the handler runs. */
  leaseSeconds?: number
  /** Wait before a retry after an error, counted from the failure; default 300 s (Phabricator). */
  retryWaitSeconds?: number
  /** Failures allowed before the task is failed permanently; default unlimited (Phabricator). */
  maxRetries?: number | null
}

export type HandlerInput = HandlerFunction | HandlerDefinition

export const HANDLER_DEFAULTS = {timeoutSeconds: 300, retryWaitSeconds: 300, maxRetries: null as number | null}

export type ResolvedHandler = Required<Omit<HandlerDefinition, 'leaseSeconds'>> & {leaseSeconds: number | null}

export function resolveHandler(input: HandlerInput): ResolvedHandler {
  const def = typeof input === 'function' ? {run: input} : input
  return {
    run: def.run,
    timeoutSeconds: def.timeoutSeconds ?? HANDLER_DEFAULTS.timeoutSeconds,
    leaseSeconds: def.leaseSeconds ?? null,
    retryWaitSeconds: def.retryWaitSeconds ?? HANDLER_DEFAULTS.retryWaitSeconds,
    maxRetries: def.maxRetries === undefined ? HANDLER_DEFAULTS.maxRetries : def.maxRetries,
  }
}
