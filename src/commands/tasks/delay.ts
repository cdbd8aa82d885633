import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {mutationSelectorFlags, selectorFromFlags} from '../../cli/task-selector.js'
import {renderMutation} from '../../cli/task-report.js'
import {parseDuration} from '../../core/duration.js'
import {delayTasks, type MutationResult} from '../../generators/queue/admin.js'

export type TasksDelayResult = MutationResult

export default class TasksDelay extends BaseCommand<typeof TasksDelay> {
  static override summary = 'Hold queue tasks back: waiting tasks become available this long from now (0 makes them ready now)'
  static override description = `Sets the time the selected active tasks become available to now plus the duration; a shorter delay brings a task forward. Running (leased) and archived tasks are skipped. A rerun anchors the delay to the new now.`
  static override examples = ['<%= config.bin %> <%= command.id %> 2h --class app.reindex', '<%= config.bin %> <%= command.id %> 0 --id queue:42', '<%= config.bin %> <%= command.id %> 30m --id 42 --dry-run']
  static override args = {
    duration: Args.string({description: 'How long from now, e.g. 30s, 10m, 2h, 1d, or 0', required: true}),
  }
  static override flags = mutationSelectorFlags

  async run(): Promise<TasksDelayResult> {
    const seconds = parseDuration(this.args.duration, 'delay')
    const storage = await this.openStorage()
    const result = await delayTasks(storage, selectorFromFlags(this.flags, {requireConstraint: true}), {seconds}, {dryRun: this.flags['dry-run']})
    this.log(renderMutation(result))
    return result
  }
}
