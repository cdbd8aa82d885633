/**
 * Errors with stable codes. `exit` is the process exit code a CLI maps the error to:
 * 2 for bad usage (the operator can fix the command line), 1 for runtime failures.
 */
export type ErrorCode =
  | 'E_USAGE'
  | 'E_BAD_URL'
  | 'E_DB_UNREACHABLE'
  | 'E_SCHEMA_BEHIND'
  | 'E_UNKNOWN_GENERATOR'
  | 'E_UNKNOWN_COLLECTOR'
  | 'E_NOT_FOUND'
  | 'E_CONFIG'
  | 'E_PAYLOAD_TOO_LARGE'
  | 'E_BAD_DATA'
  | 'E_INTERNAL'

export class TaskdError extends Error {
  readonly code: ErrorCode
  readonly exit: 1 | 2

  constructor(code: ErrorCode, message: string, options: {exit?: 1 | 2; cause?: unknown} = {}) {
    super(message, {cause: options.cause})
    this.name = 'TaskdError'
    this.code = code
    this.exit = options.exit ?? 1
  }
}

/** A usage error: the command line or configuration is wrong; exit code 2. */
export function usageError(message: string, code: ErrorCode = 'E_USAGE'): TaskdError {
  return new TaskdError(code, message, {exit: 2})
}

/** Thrown by a handler (or via ctx.fail) to archive the task as failed without retrying. */
export class PermanentFailure extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'PermanentFailure'
  }
}

/** Thrown by a handler (or via ctx.yield) to put the task back until later without counting a failure. */
export class YieldTask extends Error {
  readonly seconds: number

  constructor(seconds: number) {
    super(`yielded for ${seconds}s`)
    this.name = 'YieldTask'
    this.seconds = seconds
  }
}

/** A readable one-line description of anything thrown, including non-Error values. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message || error.name
  if (typeof error === 'string') return error
  try {
    return `non-Error thrown: ${JSON.stringify(error)}`
  } catch {
    return `non-Error thrown: ${String(error)}`
  }
}
