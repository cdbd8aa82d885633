import {BaseCommand} from '../../cli/base-command.js'
import {formatMicros, formatTime} from '../../cli/render.js'
import {taskIdFlag} from '../../cli/task-selector.js'
import {buildHandlerRegistry} from '../../daemon/daemon.js'
import {executeTask, type ExecuteResult} from '../../generators/queue/admin.js'

export type TasksExecuteResult = ExecuteResult

export default class TasksExecute extends BaseCommand<typeof TasksExecute> {
  static override summary = 'Run one queue task in the foreground now, ignoring leases and delays (for debugging); exit 1 if it fails'
  static override description = `Takes the task's lease (from a daemon too, whose result is then dropped), runs its handler from the config module in this process, and records the outcome as a daemon would: archived on success or permanent failure, put back for its retry wait on an error. Archived tasks must be brought back with \`taskd tasks retry\` first.`
  static override examples = ['<%= config.bin %> <%= command.id %> --id queue:42', '<%= config.bin %> <%= command.id %> --id 42 --config ./taskd.config.js --json']
  static override flags = {
    id: taskIdFlag({summary: 'The task to run: 42 or queue:42', required: true}),
  }

  async run(): Promise<TasksExecuteResult> {
    const storage = await this.openStorage()
    const handlers = buildHandlerRegistry(await this.generators(), (await this.config_()).config.handlers)
    const result = await executeTask(storage, this.flags.id, {handlers, log: (message) => this.logToStderr(`[${this.flags.id}] ${message}`)})
    if (result.tookOverFrom) this.warn(`took the lease of ${result.ref} over from ${result.tookOverFrom}; its result will be dropped`)
    this.log(describe(result))
    if (result.outcome === 'fail' || result.outcome === 'retry') {
      // The task failed: print the result as usual, then exit 1.
      if (this.jsonEnabled()) this.logJson(result)
      this.exit(1)
    }
    return result
  }
}

function describe(r: ExecuteResult): string {
  const head = `${r.ref} (${r.taskClass}, attempt ${r.attempt})`
  const tail = r.recorded ? `; now ${r.state ?? 'gone'}` : '; outcome dropped: the lease was taken over meanwhile'
  switch (r.outcome) {
    case 'success':
      return `${head} succeeded in ${formatMicros(r.durationUs)}${r.followUps ? `, enqueued ${r.followUps} follow-up(s)` : ''}${tail}`
    case 'fail':
      return `${head} failed permanently: ${r.error}${tail}`
    case 'retry':
      return `${head} failed: ${r.error}; retry at ${formatTime(r.retryAt === null ? null : Math.ceil(r.retryAt))}${tail}`
    case 'yield':
      return `${head} yielded until ${formatTime(r.yieldUntil === null ? null : Math.ceil(r.yieldUntil))}${tail}`
    case 'release':
      return `${head} released${tail}`
  }
}
