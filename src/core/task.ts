import {usageError} from './errors.js'

/**
 * A dynamic task: the ephemeral container the daemon runs, whatever generator produced it.
 * It is known everywhere by its ref `generator:identifier` (`queue:4812`, `gc:archived-tasks`),
 * never by a bare row id.
 */
export interface DynamicTask {
  readonly ref: string
  readonly generator: string
  readonly identifier: string
  readonly taskClass: string
  readonly priority: number
  readonly data: unknown
  /** Set when leased; null in a peek. */
  readonly lease: {owner: string; expiresAt: number} | null
  /** 1 on the first run; counts every lease, including ones lost to a crash. */
  readonly attempt: number
  readonly failureCount: number
  /** Set when the stored data could not be decoded: the task fails permanently with this reason. */
  readonly dataError?: string
}

/** What an application enqueues on the queue generator. */
export interface TaskSpec {
  taskClass: string
  data?: unknown
  /** Lower runs sooner; default 2000. */
  priority?: number
  /** Not leased before this many seconds from now. */
  delaySeconds?: number
  objectRef?: string | null
  containerRef?: string | null
}

export function formatRef(generator: string, identifier: string | number): string {
  return `${generator}:${identifier}`
}

export function parseRef(ref: string): {generator: string; identifier: string} {
  const at = ref.indexOf(':')
  if (at <= 0 || at === ref.length - 1) throw usageError(`invalid task ref '${ref}': expected generator:identifier, e.g. queue:42`)
  return {generator: ref.slice(0, at), identifier: ref.slice(at + 1)}
}

/**
 * The outcome of running a task, handed back to the generator that produced it.
 * - success: done (the queue archives it with its duration);
 * - retry: failed, run again at `retryAt`;
 * - fail: failed permanently (archived as failed with the reason);
 * - yield: not done, run again at `until`, without counting a failure;
 * - release: the daemon is stopping; give the task to another daemon now.
 */
export type TaskOutcome =
  | {kind: 'success'; task: DynamicTask; durationUs: number; result?: unknown}
  | {kind: 'retry'; task: DynamicTask; error: string; retryAt: number; durationUs: number}
  | {kind: 'fail'; task: DynamicTask; reason: string; durationUs: number}
  | {kind: 'yield'; task: DynamicTask; until: number}
  | {kind: 'release'; task: DynamicTask}
