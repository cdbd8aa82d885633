import type {HandlerInput} from './handler.js'
import type {DynamicTask, TaskOutcome} from './task.js'

/**
 * What a generator receives on every call. `store` is the storage port (a transaction when the
 * call is part of one); `owner` identifies the daemon (or command) acting.
 */
export interface GeneratorContext<Store> {
  readonly store: Store
  readonly owner: string
}

export interface LeaseRequest {
  /** Lease at most this many tasks. */
  limit: number
  /** Lease length in seconds (the daemon's heartbeat extends it while a handler runs). */
  leaseSeconds: number
  /** Only tasks at this priority or more urgent (lower numbers): `taskd run --min-priority`. */
  priorityCeiling?: number
}

export interface PeekRequest {
  limit: number
  priorityCeiling?: number
}

/** What `taskd generators list` shows for one generator. */
export interface GeneratorSummary {
  /** Counts this generator can give cheaply, e.g. the queue's ready/leased/delayed. */
  backlog?: Record<string, number>
  /** Free-form detail lines (cursor, sub-keys). */
  detail?: Record<string, unknown>
}

/**
 * A source of tasks at runtime. The queue is one; garbage collection and webhook delivery are others.
 * Generators are ranked by the priority range they declare, so the scheduler does not have to ask
 * every generator for tasks before it knows which one can win.
 */
export interface TaskGenerator<Store = unknown> {
  /** Stable key: the first half of every ref this generator produces. */
  readonly key: string
  readonly description: string
  /** The priorities this generator can produce (inclusive); lower runs sooner. */
  readonly priorityRange: {readonly min: number; readonly max: number}
  /** Handlers for the task classes this generator produces itself (user classes come from the config). */
  readonly handlers?: Readonly<Record<string, HandlerInput>>

  /** Cheap: the best (lowest) priority ready now, or null when nothing is. */
  ready(ctx: GeneratorContext<Store>, request: {priorityCeiling?: number}): Promise<number | null>
  /** Lease up to `limit` tasks to ctx.owner, atomically across daemons. */
  lease(ctx: GeneratorContext<Store>, request: LeaseRequest): Promise<DynamicTask[]>
  /** The tasks lease() would hand out now, in order, with no side effect at all. */
  peek(ctx: GeneratorContext<Store>, request: PeekRequest): Promise<DynamicTask[]>
  /** Extend the leases of running tasks; returns the refs still held by ctx.owner. */
  renew(ctx: GeneratorContext<Store>, tasks: readonly DynamicTask[], leaseSeconds: number): Promise<string[]>
  /**
   * Apply outcomes, fenced on the lease owner. Called inside a transaction; returns the refs whose
   * outcome took effect (a task whose lease was taken over by another daemon is left alone).
   */
  complete(ctx: GeneratorContext<Store>, outcomes: readonly TaskOutcome[]): Promise<string[]>
  /**
   * Release every lease ctx.owner holds except `held` (refs the daemon is running or still has to
   * record). Called after a lease round failed mid-flight (e.g. the connection dropped after the
   * commit), so a lease the daemon never saw is not left to expire. Returns how many were released.
   */
  reclaim?(ctx: GeneratorContext<Store>, held: readonly string[]): Promise<number>
  /** For `generators list`: backlog counts and details, if cheap. */
  summarize?(ctx: GeneratorContext<Store>): Promise<GeneratorSummary>
}
