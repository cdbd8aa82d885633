import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {formatMicros, formatTime, renderTable} from '../../cli/render.js'
import {parseTaskId, showTask, type TaskDetail} from '../../generators/queue/admin.js'

export type TasksShowResult = TaskDetail

type Field = [name: string, value: string | number | null]

export default class TasksShow extends BaseCommand<typeof TasksShow> {
  static override summary = 'Show one queue task, active or archived: every field, its state and its decoded data'
  static override examples = ['<%= config.bin %> <%= command.id %> queue:42', '<%= config.bin %> <%= command.id %> 42 --json']
  static override args = {task: Args.string({description: 'Task id: 42 or queue:42', required: true})}

  async run(): Promise<TasksShowResult> {
    const id = parseTaskId(this.args.task)
    const storage = await this.openStorage()
    const task = await showTask(storage, id)
    const lifecycle: Field[] =
      task.table === 'active'
        ? [
            ['available', formatTime(task.availableAt)],
            ['lease owner', task.leaseOwner],
            ['lease expires', formatTime(task.leaseExpires)],
            ['last failure', formatTime(task.failureTime)],
            ['last error', task.lastError],
          ]
        : [
            ['archived', formatTime(task.archivedAt)],
            ['duration', formatMicros(task.durationUs)],
            ['reason', task.reason],
          ]
    const fields: Field[] = [
      ['task', task.ref],
      ['state', task.state],
      ['table', task.table],
      ['class', task.taskClass],
      ['priority', task.priority],
      ['object', task.objectRef],
      ['container', task.containerRef],
      ['attempts', task.attempts],
      ['failures', task.failureCount],
      ['created', formatTime(task.createdAt)],
      ...lifecycle,
      ['legacy id', task.legacyId],
      ['data bytes', task.dataBytes],
    ]
    this.log(renderTable(['field', 'value'], fields.filter(([, value]) => value !== null && value !== '').map(([name, value]) => [name, value])))
    this.log(task.dataError ? `data: ${task.dataError}` : `data: ${JSON.stringify(task.data, null, 2)}`)
    return task
  }
}
