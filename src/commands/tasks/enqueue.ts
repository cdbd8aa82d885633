import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {durationFlag, jsonDataFlag, priorityFlag} from '../../cli/flags.js'
import {enqueueTask} from '../../generators/queue/enqueue.js'

export interface TasksEnqueueResult {
  ref: string
  id: number
  taskClass: string
  priority: number
  delaySeconds: number
}

export default class TasksEnqueue extends BaseCommand<typeof TasksEnqueue> {
  static override summary = 'Enqueue one task on the queue generator'
  static override examples = [
    `<%= config.bin %> <%= command.id %> taskd.sleep --data '{"ms": 500}'`,
    '<%= config.bin %> <%= command.id %> app.reindex --priority index --delay 10m --object PHID-TASK-1',
  ]
  static override args = {taskClass: Args.string({description: 'Task class (a handler name)', required: true})}
  static override flags = {
    data: jsonDataFlag(),
    priority: priorityFlag({default: 2000}),
    delay: durationFlag({summary: 'Do not run before this long from now (e.g. 30s, 10m, 2h)'}),
    object: Flags.string({summary: 'Object ref the task is about (free-form, indexed)'}),
    container: Flags.string({summary: 'Container ref (free-form, indexed)'}),
  }

  async run(): Promise<TasksEnqueueResult> {
    const storage = await this.openStorage()
    const spec = {
      taskClass: this.args.taskClass,
      data: this.flags.data ?? null,
      priority: this.flags.priority,
      delaySeconds: this.flags.delay ?? 0,
      objectRef: this.flags.object ?? null,
      containerRef: this.flags.container ?? null,
    }
    const {ref, id} = await enqueueTask(storage, spec)
    this.log(`Enqueued ${ref} (${spec.taskClass}, priority ${spec.priority}${spec.delaySeconds ? `, delayed ${spec.delaySeconds}s` : ''})`)
    return {ref, id, taskClass: spec.taskClass, priority: spec.priority, delaySeconds: spec.delaySeconds}
  }
}
