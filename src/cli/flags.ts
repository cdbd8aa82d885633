import {readFileSync} from 'node:fs'

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
  summary: 'Task data as JSON, or @FILE to read the JSON from a file (@- for stdin)',
  parse: async (input) => {
    // A command-line argument is capped at 128 KiB on Linux, so a payload near the 1 MiB limit can only come from a file.
    const text = input.startsWith('@') ? readDataFile(input.slice(1)) : input
    // oclif prefixes the message with the flag ("--data: …").
    const what = input.startsWith('@') ? `${input} is` : 'the value is'
    try {
      return JSON.parse(text) as unknown
    } catch (error) {
      throw new TaskdError('E_BAD_DATA', `${what} not valid JSON (${(error as Error).message}): pass e.g. --data '{"id": 42}'`, {exit: 2})
    }
  },
})

function readDataFile(file: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8')
  } catch (error) {
    throw new TaskdError('E_BAD_DATA', `cannot read @${file}: ${(error as Error).message}`, {exit: 2})
  }
}
