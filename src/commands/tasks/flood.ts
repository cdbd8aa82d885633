import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {jsonDataFlag, priorityFlag} from '../../cli/flags.js'
import {spinner} from '../../cli/render.js'
import {enqueueTasks} from '../../generators/queue/enqueue.js'

export interface TasksFloodResult {
  count: number
  taskClass: string
  seconds: number
}

export default class TasksFlood extends BaseCommand<typeof TasksFlood> {
  static override summary = 'Enqueue many tasks at once (load tests, benchmarks), in bulk inserts'
  static override examples = ['<%= config.bin %> <%= command.id %> --count 2000', `<%= config.bin %> <%= command.id %> --count 100 --class taskd.sleep --data '{"ms": 50}'`]
  static override flags = {
    count: Flags.integer({char: 'n', summary: 'How many tasks', required: true, min: 1, max: 10_000_000}),
    class: Flags.string({summary: 'Task class', default: 'taskd.noop'}),
    data: jsonDataFlag(),
    priority: priorityFlag({default: 2000}),
  }

  async run(): Promise<TasksFloodResult> {
    const storage = await this.openStorage()
    const {count, class: taskClass, priority} = this.flags
    const progress = spinner(`Enqueueing ${count} ${taskClass} tasks`, this.jsonEnabled()).start()
    const started = Date.now()
    const chunk = 10_000
    let done = 0
    try {
      while (done < count) {
        const n = Math.min(chunk, count - done)
        await storage.transaction((store) => enqueueTasks(store, Array.from({length: n}, () => ({taskClass, priority, data: this.flags.data ?? null}))))
        done += n
        progress.text = `Enqueued ${done}/${count}`
      }
    } finally {
      progress.stop()
    }
    const seconds = (Date.now() - started) / 1000
    this.log(`Enqueued ${count} ${taskClass} tasks in ${seconds.toFixed(2)}s (${Math.round(count / Math.max(seconds, 0.001))}/s)`)
    return {count, taskClass, seconds}
  }
}
