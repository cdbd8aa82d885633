import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {findGenerator} from '../../generators/index.js'
import {pauseGenerator, type PauseResult} from '../../generators/overview.js'

export default class GeneratorsResume extends BaseCommand<typeof GeneratorsResume> {
  static override summary = 'Resume a paused generator'
  static override examples = ['<%= config.bin %> <%= command.id %> gc']
  static override args = {key: Args.string({description: 'Generator key (see `taskd generators list`)', required: true})}

  async run(): Promise<PauseResult> {
    const generator = findGenerator(await this.generators(), this.args.key)
    const result = await pauseGenerator(await this.openStorage(), generator.key, false)
    this.log(result.changed ? `Generator ${generator.key} resumed.` : `Generator ${generator.key} was not paused.`)
    return result
  }
}
