import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, realpathSync, rmSync} from 'node:fs'
import {createRequire} from 'node:module'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

import {Storage} from '../../src/storage/storage.js'
import {until} from './databases.js'

/** The package root: `bin/run.js` runs the built `dist/` through the oclif manifest (`npm run build` first). */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const BIN = path.join(ROOT, 'bin', 'run.js')

/** taskd's own settings in the runner's environment must not leak into a spawned CLI. */
const SCRUBBED = ['TASKD_DATABASE_URL', 'TASKD_CONFIG', 'TASKD_CONTENT_TYPE', 'TASKD_DEBUG', 'DEBUG']

export interface CliOptions {
  /** Working directory; use a fresh `tempDir()` so the embedded default database is the test's own. */
  cwd: string
  /** Extra environment; `undefined` removes a variable. */
  env?: Record<string, string | undefined>
  /** Written to stdin, which is then closed. */
  input?: string
  /** Kills the child (SIGKILL) and fails after this long: a safety net, not a measurement. */
  timeoutMs?: number
}

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** stdout parsed as JSON, or undefined when it is not JSON. */
  json: unknown
}

/** The environment a spawned CLI gets (toolchain pitfall 8: NODE_ENV=production, or oclif runs src/ through tsx). */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {...process.env}
  for (const name of SCRUBBED) delete env[name]
  Object.assign(env, {NODE_ENV: 'production', TASKD_SKIP_NEW_VERSION_CHECK: 'true', OCLIF_SKIP_NEW_VERSION_CHECK: 'true'})
  for (const [name, value] of Object.entries(extra)) {
    if (value === undefined) delete env[name]
    else env[name] = value
  }
  return env
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

const live = new Set<ChildProcess>()

/** SIGKILLs every child this helper started that is still running (by its own pid). For afterAll/afterEach. */
export function killLeftovers(): void {
  for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  live.clear()
}

process.once('exit', killLeftovers)

function track(child: ChildProcess) {
  live.add(child)
  child.once('exit', () => live.delete(child))
}

/** Runs `taskd <args>` to completion. */
export function runCli(args: readonly string[], options: CliOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {cwd: options.cwd, env: cliEnv(options.env), stdio: ['pipe', 'pipe', 'pipe']})
    track(child)
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const timeoutMs = options.timeoutMs ?? 120_000
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`taskd ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr.slice(-2000)}`))
    }, timeoutMs)
    child.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({code, signal, stdout, stderr, json: parseJson(stdout)})
    })
    child.stdin.on('error', () => undefined)
    child.stdin.end(options.input ?? '')
  })
}

/** `runCli` that fails with the whole output unless the exit code is 0; returns the parsed JSON. */
export async function runCliOk<T = unknown>(args: readonly string[], options: CliOptions): Promise<T> {
  const result = await runCli(args, options)
  if (result.code !== 0) throw new Error(`taskd ${args.join(' ')} exited ${result.code ?? result.signal}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`)
  return result.json as T
}

export interface DaemonProcess {
  readonly child: ChildProcess
  readonly pid: number
  /** Everything written so far. */
  readonly stdout: string
  readonly stderr: string
  /** Parsed `--log-format json` lines written so far (other lines are skipped). */
  events(): {event: string; level: string; [field: string]: unknown}[]
  signal(signal: NodeJS.Signals): void
  /** Resolves once the process has exited (already exited: at once). */
  exited(): Promise<{code: number | null; signal: NodeJS.Signals | null}>
  /** Like exited(), but fails (with the output) if the process is still running after timeoutMs. */
  waitForExit(timeoutMs?: number): Promise<{code: number | null; signal: NodeJS.Signals | null}>
  /** Polls until a logged event satisfies the predicate; fails early if the daemon exits first. */
  waitForEvent(event: string, predicate?: (fields: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>
  readonly running: boolean
}

/** Spawns `taskd run <args>` as a long-lived child (JSON log lines unless args choose a format). */
export function startDaemon(args: readonly string[], options: Omit<CliOptions, 'input'>): DaemonProcess {
  const argv = ['run', ...(args.includes('--log-format') ? [] : ['--log-format', 'json']), ...args]
  const child = spawn(process.execPath, [BIN, ...argv], {cwd: options.cwd, env: cliEnv(options.env), stdio: ['ignore', 'pipe', 'pipe']})
  track(child)
  if (child.pid === undefined) throw new Error('could not spawn taskd run')
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  // 'close' (not 'exit'): every byte of stdout and stderr has been read by then.
  const done = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) => child.on('close', (code, signal) => resolve({code, signal})))
  let finished = false
  void done.then(() => (finished = true))
  const describe = () => `taskd ${argv.join(' ')} (pid ${child.pid})\nstdout: ${stdout.slice(-4000)}\nstderr: ${stderr.slice(-4000)}`
  const events = () =>
    stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => parseJson(line))
      .filter((e): e is {event: string; level: string} => typeof e === 'object' && e !== null && 'event' in e)
  const daemon: DaemonProcess = {
    child,
    pid: child.pid,
    get stdout() {
      return stdout
    },
    get stderr() {
      return stderr
    },
    get running() {
      return !finished
    },
    events,
    signal: (signal) => {
      if (!finished) child.kill(signal)
    },
    exited: () => done,
    waitForExit: async (timeoutMs = 60_000) => {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`still running after ${timeoutMs} ms: ${describe()}`)), timeoutMs)
      })
      try {
        return await Promise.race([done, timeout])
      } finally {
        clearTimeout(timer)
      }
    },
    waitForEvent: async (event, predicate = () => true, timeoutMs = 60_000) => {
      return until(
        () => {
          const found = events().find((e) => e.event === event && predicate(e))
          if (found) return found
          if (finished) throw new Error(`exited before logging '${event}': ${describe()}`)
          return null
        },
        {timeoutMs, what: `'${event}' from ${describe()}`},
      )
    },
  }
  return daemon
}

const tempDirs: string[] = []

/** A fresh empty directory (realpath, so it matches the absolute paths taskd prints). */
export function tempDir(prefix = 'taskd-e2e-'): string {
  const dir = realpathSync(mkdtempSync(path.join(os.tmpdir(), prefix)))
  tempDirs.push(dir)
  return dir
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, {recursive: true, force: true})
}

/** A `file:` URL for a package the test suite has, so a config module in a temp dir can import it. */
export function importableUrl(specifier: string): string {
  return pathToFileURL(createRequire(import.meta.url).resolve(specifier)).href
}

/** Opens the database a CLI used (no migration), runs fn, closes it. */
export async function withStorage<T>(url: string, fn: (storage: Storage) => Promise<T>): Promise<T> {
  const storage = await Storage.open(url)
  try {
    return await fn(storage)
  } finally {
    await storage.close()
  }
}

/** Names of the tables in the database (empty for a fresh one). */
export function tableNames(url: string): Promise<string[]> {
  return withStorage(url, async (storage) => (await storage.db.introspection.getTables()).map((t) => t.name).sort())
}
