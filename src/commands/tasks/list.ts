import {BaseCommand} from '../../cli/base-command.js'
import {formatTime, renderTable} from '../../cli/render.js'
import {readSelectorFlags, selectorFromFlags} from '../../cli/task-selector.js'
import {listTasks, type ListResult} from '../../generators/queue/admin.js'

export type TasksListResult = ListResult

export default class TasksList extends BaseCommand<typeof TasksList> {
  static override summary = 'List queue tasks, active and archived, picked by a selector (newest first)'
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --archived --min-failure-count 1 --limit 20',
    '<%= config.bin %> <%= command.id %> --class app.reindex --active --json',
  ]
  static override flags = readSelectorFlags

  async run(): Promise<TasksListResult> {
    const storage = await this.openStorage()
    const result = await listTasks(storage, selectorFromFlags(this.flags))
    if (result.tasks.length === 0) {
      this.log('No tasks match the selection.')
      return result
    }
    this.log(
      renderTable(
        ['task', 'state', 'class', 'priority', 'failures', 'attempts', 'when', 'lease owner'],
        result.tasks.map((t) => [
          t.ref,
          t.state,
          t.taskClass,
          t.priority,
          t.failureCount,
          t.attempts,
          t.table === 'archived' ? `archived ${formatTime(t.archivedAt)}` : t.state === 'leased' || t.state === 'expired' ? `lease until ${formatTime(t.leaseExpires)}` : `available ${formatTime(t.availableAt)}`,
          t.leaseOwner,
        ]),
      ),
    )
    if (result.more) this.log(`More tasks match: showing the newest ${result.limit}; raise --limit or narrow the selection.`)
    return result
  }
}
