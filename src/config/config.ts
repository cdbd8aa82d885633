import {existsSync} from 'node:fs'
import path from 'node:path'
import {pathToFileURL} from 'node:url'

import {TaskdError, usageError} from '../core/errors.js'
import type {TaskGenerator} from '../core/generator.js'
import type {HandlerInput} from '../core/handler.js'
import type {Storage} from '../storage/storage.js'
import {defaultDatabaseUrl} from '../storage/url.js'

/** What a `taskd.config.js` / `taskd.config.mjs` module exports (default export or named exports). */
export interface TaskdConfig {
  /** Database URL; the `--database` flag and TASKD_DATABASE_URL take precedence. */
  database?: string
  /** Handlers by task class. */
  handlers?: Record<string, HandlerInput>
  /** The application's own generators, written against the exported TaskGenerator contract. */
  generators?: TaskGenerator<Storage>[]
  /** Webhook delivery: `allowCidrs` opens special-purpose ranges (loopback, private…) to delivery. */
  webhooks?: {allowCidrs?: string[]; timeoutSeconds?: number}
  /**
   * Called once when the command ends (for `taskd run`, after the daemon stopped): close the pools
   * and clients the handlers opened. An open pool keeps Node alive, so without this `taskd run`
   * would not exit after SIGTERM or `--until-idle`.
   */
  close?: () => unknown
}

/** Identity function that gives a config module its types. */
export function defineConfig(config: TaskdConfig): TaskdConfig {
  return config
}

export const CONFIG_FILES = ['taskd.config.js', 'taskd.config.mjs']

export interface LoadedConfig {
  config: TaskdConfig
  /** The file it came from, or null when there is none. */
  file: string | null
}

/** Finds and imports the config module: explicit path (flag or TASKD_CONFIG), else the working directory's. */
export async function loadConfig(explicit: string | undefined, cwd = process.cwd()): Promise<LoadedConfig> {
  let file: string | null = null
  if (explicit) {
    file = path.resolve(cwd, explicit)
    if (!existsSync(file)) throw usageError(`config module ${file} does not exist: fix --config or TASKD_CONFIG`, 'E_CONFIG')
  } else {
    file = CONFIG_FILES.map((name) => path.join(cwd, name)).find((candidate) => existsSync(candidate)) ?? null
  }
  if (!file) return {config: {}, file: null}
  let loaded: Record<string, unknown>
  try {
    loaded = (await import(pathToFileURL(file).href)) as Record<string, unknown>
  } catch (error) {
    throw new TaskdError('E_CONFIG', `cannot load config module ${file}: ${(error as Error).message}`, {cause: error})
  }
  const config = (loaded.default ?? loaded) as TaskdConfig
  validateConfig(config, file)
  return {config, file}
}

function validateConfig(config: TaskdConfig, file: string) {
  const fail = (what: string) => {
    throw new TaskdError('E_CONFIG', `config module ${file}: ${what}`)
  }
  if (typeof config !== 'object' || config === null) fail('must export an object')
  if (config.database !== undefined && typeof config.database !== 'string') fail('`database` must be a URL string')
  for (const [taskClass, handler] of Object.entries(config.handlers ?? {})) {
    const ok = typeof handler === 'function' || (typeof handler === 'object' && handler !== null && typeof handler.run === 'function')
    if (!ok) fail(`handler for '${taskClass}' must be a function or {run: function, ...}`)
  }
  if (config.close !== undefined && typeof config.close !== 'function') fail('`close` must be a function')
  if (config.generators !== undefined && !Array.isArray(config.generators)) fail('`generators` must be an array')
  const allow = config.webhooks?.allowCidrs
  if (allow !== undefined && (!Array.isArray(allow) || allow.some((c) => typeof c !== 'string'))) fail('`webhooks.allowCidrs` must be an array of CIDR strings')
  for (const g of config.generators ?? []) {
    for (const method of ['ready', 'lease', 'peek', 'renew', 'complete'] as const) {
      if (typeof g?.[method] !== 'function') fail(`generator '${g?.key ?? '?'}' lacks ${method}()`)
    }
    if (typeof g.key !== 'string' || !/^[a-z][a-z0-9-]*$/.test(g.key)) fail(`generator key '${g.key}' must match [a-z][a-z0-9-]*`)
  }
}

/** Database URL precedence: flag, then TASKD_DATABASE_URL, then the config module, then the SQLite default. */
export function resolveDatabaseUrl(flag: string | undefined, config: TaskdConfig, cwd = process.cwd()): string {
  return flag || process.env.TASKD_DATABASE_URL || config.database || defaultDatabaseUrl(cwd)
}
