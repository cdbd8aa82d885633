import {setTimeout as sleep} from 'node:timers/promises'

import {PermanentFailure} from '../core/errors.js'
import type {HandlerInput} from '../core/handler.js'

const record = (data: unknown): Record<string, unknown> => (typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : {})

/** Diagnostic task classes, like Phabricator's test worker: benchmarks and tests use them. */
export const BUILTIN_HANDLERS: Record<string, HandlerInput> = {
  'taskd.noop': () => undefined,
  'taskd.sleep': async (data, ctx) => {
    const ms = Number(record(data).ms ?? 1000)
    if (!Number.isFinite(ms) || ms < 0) ctx.fail(`taskd.sleep needs {"ms": N} with N >= 0, got ${JSON.stringify(data)}`)
    await sleep(ms, undefined, {signal: ctx.signal}).catch(() => undefined)
  },
  'taskd.fail': (data) => {
    const {permanent, message} = record(data)
    const text = typeof message === 'string' ? message : 'taskd.fail: failing on purpose'
    throw permanent ? new PermanentFailure(text) : new Error(text)
  },
}
