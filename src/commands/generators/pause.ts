import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {findGenerator} from '../../generators/index.js'
import {pauseGenerator, type PauseResult} from '../../generators/overview.js'

export default class GeneratorsPause extends BaseCommand<typeof GeneratorsPause> {
  static override summary = 'Pause a generator: every daemon skips it until it is resumed'
  static override examples = ['<%= config.bin %> <%= command.id %> gc']
  static override args = {key: Args.string({description: 'Generator key (see `taskd generators list`)', required: true})}

  async run(): Promise<PauseResult> {
    const generator = findGenerator(await this.generators(), this.args.key)
    const result = await pauseGenerator(await this.openStorage(), generator.key, true)
    this.log(result.changed ? `Generator ${generator.key} paused; running daemons notice at their next heartbeat.` : `Generator ${generator.key} was already paused.`)
    return result
  }
}
