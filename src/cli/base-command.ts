import {Command, Errors, Flags, type Interfaces} from '@oclif/core'

import {loadConfig, resolveDatabaseUrl, type LoadedConfig} from '../config/config.js'
import {TaskdError, describeError} from '../core/errors.js'
import type {TaskGenerator} from '../core/generator.js'
import {allGenerators} from '../generators/index.js'
import {ensureSchema} from '../storage/migrations.js'
import {Storage} from '../storage/storage.js'
import {redactUrl} from '../storage/url.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

/**
 * Every taskd command: `--database`, `--config`, `--verbose`; loads the config module, opens the
 * storage on demand, maps errors to one line and an exit code (2 bad usage, 1 failure), and always
 * closes the connection.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true

  static override baseFlags = {
    database: Flags.string({
      char: 'd',
      summary: 'Database URL: sqlite:PATH, sqlite::memory: or mysql://user:pass@host:port/db (default: .taskd/taskd.sqlite)',
      env: 'TASKD_DATABASE_URL',
      helpGroup: 'GLOBAL',
    }),
    config: Flags.string({
      summary: 'Config module with handlers, generators and database (default: ./taskd.config.js or .mjs)',
      env: 'TASKD_CONFIG',
      helpGroup: 'GLOBAL',
    }),
    verbose: Flags.boolean({summary: 'Print stack traces with errors', helpGroup: 'GLOBAL'}),
  }

  protected flags!: BaseFlags<T>
  protected args!: BaseArgs<T>
  private loadedConfig: LoadedConfig | null = null
  private storage: Storage | null = null

  public override async init(): Promise<void> {
    await super.init()
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as BaseArgs<T>
  }

  protected async config_(): Promise<LoadedConfig> {
    this.loadedConfig ??= await loadConfig(this.flags.config)
    return this.loadedConfig
  }

  protected async generators(): Promise<TaskGenerator<Storage>[]> {
    return allGenerators((await this.config_()).config)
  }

  /** Opens the database chosen by flag, env, config module or default, and checks the schema is current. */
  protected async openStorage(options: {checkSchema?: boolean} = {}): Promise<Storage> {
    if (this.storage) return this.storage
    const {config} = await this.config_()
    this.storage = await Storage.open(resolveDatabaseUrl(this.flags.database, config))
    if (options.checkSchema ?? true) await ensureSchema(this.storage)
    return this.storage
  }

  protected override async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    if (err instanceof Errors.ExitError) throw err
    // A parse error leaves this.flags unset, so look at argv too: --verbose must work for every error.
    const verbose = Boolean(this.flags?.verbose) || this.argv.includes('--verbose') || Boolean(process.env.DEBUG)
    if (verbose && err.stack) process.stderr.write(redactUrl(err.stack) + '\n')
    const taskd = err instanceof TaskdError
    // oclif's own parse errors (unknown flag, missing arg, bad value) carry their exit code (2) in err.oclif.exit.
    const parse = !taskd && Boolean(err.oclif)
    const exit = taskd ? err.exit : parse ? (err.oclif?.exit ?? err.exitCode ?? 2) : 1
    const code = taskd ? err.code : parse && exit === 2 ? 'E_USAGE' : 'E_INTERNAL'
    // One line: what went wrong (and, in the message, what to do). Passwords never reach it.
    const message = redactUrl(oneLine(taskd || parse ? err.message : `unexpected error: ${describeError(err)}`))
    process.exitCode = exit
    if (this.jsonEnabled()) {
      // Only these fields: oclif's default error JSON serialises the whole parse context, including
      // every flag value (a --database password among them) and the package.json.
      this.logJson({error: {code, message, oclif: {exit}}})
      return
    }
    // Not through oclif's printer: it wraps long messages over several lines.
    process.stderr.write(`Error: ${message}${parse ? ` (see: taskd ${this.id?.replaceAll(':', ' ') ?? ''} --help)` : ''}\n`)
    this.exit(exit)
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    await this.storage?.close().catch(() => undefined)
    this.storage = null
    const config = this.loadedConfig?.config
    this.loadedConfig = null
    if (config?.close) {
      try {
        await config.close()
      } catch (error) {
        process.stderr.write(`Warning: the config module's close() failed: ${oneLine(redactUrl(describeError(error)))}\n`)
      }
    }
    return super.finally(err)
  }
}

/** oclif's parse messages span lines ("Parsing --data \n\t<reason>\nSee more help…"): fold them into one. */
function oneLine(message: string): string {
  return message
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('See more help'))
    .join(' ')
    .replace(/^Parsing (--[\w-]+) /, '$1: ')
}
