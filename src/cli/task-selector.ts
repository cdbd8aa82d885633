import {Flags} from '@oclif/core'

import {usageError} from '../core/errors.js'
import {isConstrained, parseTaskId, validateSelector, type TaskSelector} from '../generators/queue/admin.js'
import {priorityFlag} from './flags.js'

const SELECTOR = 'SELECTOR'

/** `--id 42` or `--id queue:42`. */
export const taskIdFlag = Flags.custom<number>({
  summary: 'Task id: 42 or queue:42',
  parse: async (input) => parseTaskId(input),
})

/**
 * The task selector of every `taskd tasks` command that picks tasks (Phabricator's `bin/worker`
 * selectors). Every constraint given must hold; --min/--max bounds each work alone.
 */
export const selectorFlags = {
  id: taskIdFlag({summary: 'Task id (42 or queue:42); repeat for several. Each must exist', multiple: true, multipleNonGreedy: true, helpGroup: SELECTOR}),
  class: Flags.string({summary: 'Only tasks of this class', helpGroup: SELECTOR}),
  object: Flags.string({summary: 'Only tasks about this object ref; repeat for several', multiple: true, multipleNonGreedy: true, helpGroup: SELECTOR}),
  container: Flags.string({summary: 'Only tasks in this container ref; repeat for several', multiple: true, multipleNonGreedy: true, helpGroup: SELECTOR}),
  'min-priority': priorityFlag({summary: 'Only tasks whose priority number is at least this (this urgent or less); a number or band name', helpGroup: SELECTOR}),
  'max-priority': priorityFlag({summary: 'Only tasks whose priority number is at most this (this urgent or more); a number or band name', helpGroup: SELECTOR}),
  'min-failure-count': Flags.integer({summary: 'Only tasks that failed at least this many times', min: 0, helpGroup: SELECTOR}),
  'max-failure-count': Flags.integer({summary: 'Only tasks that failed at most this many times', min: 0, helpGroup: SELECTOR}),
  // Not oclif's `exclusive`: under --json its parse error dumps the whole parse context; selectorFromFlags says it in one line.
  active: Flags.boolean({summary: 'Only active tasks (queued or running); excludes --archived', helpGroup: SELECTOR}),
  archived: Flags.boolean({summary: 'Only archived tasks (succeeded, failed or cancelled); excludes --active', helpGroup: SELECTOR}),
}

/** Read commands: the selector, limited to the newest 100 tasks by default. */
export const readSelectorFlags = {
  ...selectorFlags,
  limit: Flags.integer({char: 'n', summary: 'At most this many tasks, the newest first', min: 1, default: 100, helpGroup: SELECTOR}),
}

/** Mutating commands: the selector (every match unless --limit), --all, and --dry-run. */
export const mutationSelectorFlags = {
  ...selectorFlags,
  limit: Flags.integer({char: 'n', summary: 'At most this many tasks, the newest first (default: every match)', min: 1, helpGroup: SELECTOR}),
  all: Flags.boolean({summary: 'Select every task (required when no other constraint is given)', helpGroup: SELECTOR}),
  'dry-run': Flags.boolean({summary: 'Report what would change and write nothing'}),
}

/** The parsed selector flags, whichever set a command uses. */
export interface SelectorFlagValues {
  id?: number[]
  class?: string
  object?: string[]
  container?: string[]
  'min-priority'?: number
  'max-priority'?: number
  'min-failure-count'?: number
  'max-failure-count'?: number
  active?: boolean
  archived?: boolean
  limit?: number
  all?: boolean
}

/**
 * Builds the library selector from the flags. Contradictions are usage errors (exit 2); a mutation
 * with no constraint must say --all, so a bare `taskd tasks cancel` cannot empty the queue.
 */
export function selectorFromFlags(flags: SelectorFlagValues, options: {requireConstraint?: boolean} = {}): TaskSelector {
  if (flags.active && flags.archived) throw usageError('--active and --archived exclude each other: omit both to select from both tables')
  const selector: TaskSelector = {
    ids: flags.id,
    taskClass: flags.class,
    objectRefs: flags.object,
    containerRefs: flags.container,
    minPriority: flags['min-priority'],
    maxPriority: flags['max-priority'],
    minFailureCount: flags['min-failure-count'],
    maxFailureCount: flags['max-failure-count'],
    tables: flags.active ? 'active' : flags.archived ? 'archived' : 'both',
    limit: flags.limit,
  }
  validateSelector(selector)
  if (options.requireConstraint && !flags.all && !isConstrained(selector)) {
    throw usageError('select tasks with --id, --class, --object, --container, --min/--max-priority or --min/--max-failure-count, or pass --all to act on every task')
  }
  return selector
}
