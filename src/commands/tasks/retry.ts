import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {mutationSelectorFlags, selectorFromFlags} from '../../cli/task-selector.js'
import {renderMutation} from '../../cli/task-report.js'
import {retryTasks, type MutationResult} from '../../generators/queue/admin.js'

export type TasksRetryResult = MutationResult

export default class TasksRetry extends BaseCommand<typeof TasksRetry> {
  static override summary = 'Retry queue tasks: archived failed or cancelled tasks return with the same id; tasks waiting on a retry run now'
  static override description = `Archived tasks that failed or were cancelled go back to the active queue with the same id, failure count 0, available now. Active tasks waiting on a retry become available now. Archived successes are not run again unless --include-succeeded; running (leased) tasks are left alone. Safe to rerun.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --id queue:42',
    '<%= config.bin %> <%= command.id %> --archived --class app.reindex --min-failure-count 1 --dry-run',
    '<%= config.bin %> <%= command.id %> --id 42 --include-succeeded',
  ]
  static override flags = {
    ...mutationSelectorFlags,
    'include-succeeded': Flags.boolean({summary: 'Also run archived tasks that succeeded again'}),
  }

  async run(): Promise<TasksRetryResult> {
    const storage = await this.openStorage()
    const selector = selectorFromFlags(this.flags, {requireConstraint: true})
    const result = await retryTasks(storage, selector, {dryRun: this.flags['dry-run'], includeSucceeded: this.flags['include-succeeded']})
    this.log(renderMutation(result))
    return result
  }
}
