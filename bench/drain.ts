import type {HandlerInput} from '../src/core/handler.js'
import {NOOP_CLASS} from './protocol.js'

/**
 * A no-op handler for the bench's tasks that also counts (with `yieldTurn`, it returns on the next
 * event-loop turn instead of at once): `allRan` resolves once `total` handlers
 * have run. Drains stop on that (then `daemon.stop()` records the last outcomes) rather than on
 * `untilIdle`, which on MariaDB can end a drain early (see BENCH.md, "Where the time goes").
 */
export function countingNoop(total: number | null, options: {yieldTurn?: boolean} = {}): {handlers: Record<string, HandlerInput>; allRan: Promise<void>; count(): number} {
  let ran = 0
  let resolve: () => void = () => undefined
  const allRan = new Promise<void>((r) => (resolve = r))
  if (total === 0) resolve()
  return {
    handlers: {
      [NOOP_CLASS]: options.yieldTurn
        ? // Still no work, but finishes on a later event-loop turn, as any handler that awaits I/O does.
          () =>
            new Promise<void>((done) =>
              setImmediate(() => {
                ran++
                if (ran === total) resolve()
                done()
              }),
            )
        : () => {
            ran++
            if (ran === total) resolve()
          },
    },
    allRan: total === null ? new Promise<void>(() => undefined) : allRan,
    count: () => ran,
  }
}
