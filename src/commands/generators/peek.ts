import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {renderTable, summarizeData} from '../../cli/render.js'
import {findGenerator} from '../../generators/index.js'

export interface PeekedTask {
  ref: string
  taskClass: string
  priority: number
  attempt: number
  data: unknown
}

export interface GeneratorsPeekResult {
  generator: string
  tasks: PeekedTask[]
}

export default class GeneratorsPeek extends BaseCommand<typeof GeneratorsPeek> {
  static override summary = 'Show the tasks a generator would hand out now, in order, without changing anything'
  static override examples = ['<%= config.bin %> <%= command.id %> queue --limit 20', '<%= config.bin %> <%= command.id %> gc --json']
  static override args = {key: Args.string({description: 'Generator key (see `taskd generators list`)', required: true})}
  static override flags = {
    limit: Flags.integer({char: 'n', summary: 'At most this many tasks', default: 20, min: 1, max: 10_000}),
  }

  async run(): Promise<GeneratorsPeekResult> {
    const generator = findGenerator(await this.generators(), this.args.key)
    const storage = await this.openStorage()
    const tasks = (await generator.peek({store: storage, owner: 'peek'}, {limit: this.flags.limit})).map((t) => ({
      ref: t.ref,
      taskClass: t.taskClass,
      priority: t.priority,
      attempt: t.attempt + 1,
      data: t.data,
    }))
    this.log(tasks.length ? renderTable(['ref', 'class', 'priority', 'next attempt', 'data'], tasks.map((t) => [t.ref, t.taskClass, t.priority, t.attempt, summarizeData(t.data)])) : `Generator ${generator.key} has nothing ready.`)
    return {generator: generator.key, tasks}
  }
}
