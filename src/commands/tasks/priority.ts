import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {mutationSelectorFlags, selectorFromFlags} from '../../cli/task-selector.js'
import {renderMutation} from '../../cli/task-report.js'
import {parsePriority} from '../../core/priority.js'
import {setPriority, type MutationResult} from '../../generators/queue/admin.js'

export type TasksPriorityResult = MutationResult

export default class TasksPriority extends BaseCommand<typeof TasksPriority> {
  static override summary = 'Set the priority of active queue tasks (a number or band name; lower runs sooner)'
  static override examples = ['<%= config.bin %> <%= command.id %> alerts --id queue:42', '<%= config.bin %> <%= command.id %> 3500 --class app.reindex --dry-run']
  static override args = {
    priority: Args.string({description: 'New priority: a positive integer or alerts, default, commit, bulk, index, import', required: true}),
  }
  static override flags = mutationSelectorFlags

  async run(): Promise<TasksPriorityResult> {
    const priority = parsePriority(this.args.priority)
    const storage = await this.openStorage()
    const result = await setPriority(storage, selectorFromFlags(this.flags, {requireConstraint: true}), priority, {dryRun: this.flags['dry-run']})
    this.log(renderMutation(result))
    return result
  }
}
