import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {findGenerator} from '../../generators/index.js'
import {getState, setPaused} from '../../storage/generator-state.js'
import type {GeneratorPauseResult} from './pause.js'

export default class GeneratorsResume extends BaseCommand<typeof GeneratorsResume> {
  static override summary = 'Resume a paused generator'
  static override examples = ['<%= config.bin %> <%= command.id %> gc']
  static override args = {key: Args.string({description: 'Generator key (see `taskd generators list`)', required: true})}

  async run(): Promise<GeneratorPauseResult> {
    const generator = findGenerator(await this.generators(), this.args.key)
    const storage = await this.openStorage()
    const before = (await getState(storage, generator.key)).paused
    await setPaused(storage, generator.key, false)
    this.log(before ? `Generator ${generator.key} resumed.` : `Generator ${generator.key} was not paused.`)
    return {generator: generator.key, paused: false, changed: before}
  }
}
