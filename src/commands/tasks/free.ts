import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {mutationSelectorFlags, selectorFromFlags} from '../../cli/task-selector.js'
import {renderMutation} from '../../cli/task-report.js'
import {freeTasks, type MutationResult} from '../../generators/queue/admin.js'

export type TasksFreeResult = MutationResult

export default class TasksFree extends BaseCommand<typeof TasksFree> {
  static override summary = 'Free queue tasks stuck on a dead daemon: release their leases so any daemon takes them now'
  static override description = `Sets the lease owner and expiry of the selected active tasks to NULL. A lease that has not expired and belongs to a daemon whose heartbeat is alive is skipped unless --force (the task could then run twice). Safe to rerun.`
  static override examples = ['<%= config.bin %> <%= command.id %> --id queue:42', '<%= config.bin %> <%= command.id %> --active --all --dry-run']
  static override flags = {
    ...mutationSelectorFlags,
    force: Flags.boolean({summary: 'Also free leases held by a live daemon (the task may run twice)'}),
  }

  async run(): Promise<TasksFreeResult> {
    const storage = await this.openStorage()
    const selector = selectorFromFlags(this.flags, {requireConstraint: true})
    const result = await freeTasks(storage, selector, {dryRun: this.flags['dry-run'], force: this.flags.force})
    this.log(renderMutation(result))
    return result
  }
}
