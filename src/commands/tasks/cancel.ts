import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {mutationSelectorFlags, selectorFromFlags} from '../../cli/task-selector.js'
import {renderMutation} from '../../cli/task-report.js'
import {cancelTasks, type MutationResult} from '../../generators/queue/admin.js'

export type TasksCancelResult = MutationResult

export default class TasksCancel extends BaseCommand<typeof TasksCancel> {
  static override summary = 'Cancel queue tasks: archive active tasks with result cancelled (running ones only with --force)'
  static override description = `Active tasks are archived as cancelled. Tasks a daemon holds (running, or whose lease expired) are skipped and reported unless --force, which cancels them anyway: that daemon's result is then dropped. Archived tasks are skipped. Safe to rerun.`
  static override examples = [
    '<%= config.bin %> <%= command.id %> --id queue:42',
    '<%= config.bin %> <%= command.id %> --class app.reindex --max-priority 3000 --dry-run',
    '<%= config.bin %> <%= command.id %> --id 42 --force',
  ]
  static override flags = {
    ...mutationSelectorFlags,
    force: Flags.boolean({summary: 'Also cancel tasks a daemon is running (its result is dropped)'}),
  }

  async run(): Promise<TasksCancelResult> {
    const storage = await this.openStorage()
    const selector = selectorFromFlags(this.flags, {requireConstraint: true})
    const result = await cancelTasks(storage, selector, {dryRun: this.flags['dry-run'], force: this.flags.force, reason: 'cancelled by an operator (taskd tasks cancel)'})
    this.log(renderMutation(result))
    return result
  }
}
