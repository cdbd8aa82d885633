import {Flags} from '@oclif/core'

import {parseDuration} from '../core/duration.js'
import {TaskdError} from '../core/errors.js'
import {parsePriority} from '../core/priority.js'

/** Shared custom flags: each parses its input into a domain value, with taskd's one-line errors. */
export const priorityFlag = Flags.custom<number>({
  summary: 'Priority: a positive integer or a band (alerts 1000, default 2000, commit 2500, bulk 3000, index 3500, import 4000)',
  parse: async (input) => parsePriority(input),
})

export const durationFlag = Flags.custom<number>({
  parse: async (input) => parseDuration(input),
})

export const jsonDataFlag = Flags.custom<unknown>({
  summary: 'Task data as JSON',
  parse: async (input) => {
    try {
      return JSON.parse(input) as unknown
    } catch (error) {
      throw new TaskdError('E_BAD_DATA', `--data is not valid JSON (${(error as Error).message}): pass e.g. --data '{"id": 42}'`, {exit: 2})
    }
  },
})
