import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {parseDuration} from '../core/duration.js'
import {parsePriority} from '../core/priority.js'
import {Daemon} from '../daemon/daemon.js'
import {createLogger, type LogFormat} from '../daemon/logger.js'
import {selectGenerators} from '../generators/index.js'

export default class Run extends BaseCommand<typeof Run> {
  static override enableJsonFlag = false
  static override summary = 'Run the daemon in the foreground: lease tasks from the generators and execute them'
  static override description = `Runs until SIGINT/SIGTERM (graceful: running handlers get --grace to finish, then their leases are
released for another daemon; a second signal stops at once), or with --until-idle until nothing is ready.
Many daemons may run against one MySQL database.`
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --concurrency 16 --database mysql://taskd:secret@db:3306/taskd',
    '<%= config.bin %> <%= command.id %> --until-idle',
    '<%= config.bin %> <%= command.id %> --min-priority alerts --generators queue',
  ]
  static override flags = {
    concurrency: Flags.integer({char: 'c', summary: 'Tasks run at once', default: 4, min: 1, max: 1024}),
    generators: Flags.string({summary: 'Only these generators (comma-separated keys)'}),
    'min-priority': Flags.string({summary: 'Only tasks at this priority or more urgent (a number or a band name, e.g. alerts)'}),
    'until-idle': Flags.boolean({summary: 'Exit 0 once nothing is ready and nothing is running'}),
    'lease-seconds': Flags.integer({summary: 'Default lease length; the heartbeat extends it while a task runs', default: 60, min: 3}),
    'poll-max': Flags.string({summary: 'Idle polling ceiling (e.g. 250ms, 1s)', default: '250ms'}),
    grace: Flags.string({summary: 'On stop, how long running tasks may finish before their leases are released', default: '30s'}),
    'log-format': Flags.string({summary: 'Log lines as text or JSON', options: ['text', 'json'], default: 'text'}),
  }

  async run(): Promise<void> {
    const pollMax = parseDuration(this.flags['poll-max'], '--poll-max')
    const grace = parseDuration(this.flags.grace, '--grace')
    const ceiling = this.flags['min-priority'] === undefined ? undefined : parsePriority(this.flags['min-priority'])
    const {config} = await this.config_()
    const generators = selectGenerators(await this.generators(), this.flags.generators)
    const storage = await this.openStorage()
    const logger = createLogger({format: this.flags['log-format'] as LogFormat})
    const daemon = new Daemon({
      storage,
      generators,
      handlers: config.handlers,
      concurrency: this.flags.concurrency,
      leaseSeconds: this.flags['lease-seconds'],
      pollMaxSeconds: pollMax,
      priorityCeiling: ceiling,
      untilIdle: this.flags['until-idle'],
      logger,
    })
    let signals = 0
    const onSignal = (signal: NodeJS.Signals) => {
      signals++
      logger.info(signals === 1 ? 'signal received; stopping gracefully' : 'second signal; stopping now', {signal})
      void daemon.stop({graceSeconds: signals === 1 ? grace : 0})
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    try {
      await daemon.start()
      await daemon.finished()
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
      // The daemon is done; a handler's leftover timer or connection pool must not keep the process
      // up (a supervisor waits for the exit). The timer is unref'd: a clean process exits before it.
      setTimeout(() => process.exit(), 2000).unref()
    }
  }
}
