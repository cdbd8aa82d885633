import {Args} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {findGenerator} from '../../generators/index.js'
import {getState, setPaused} from '../../storage/generator-state.js'

export interface GeneratorPauseResult {
  generator: string
  paused: boolean
  /** False when the generator already was in that state (safe to rerun). */
  changed: boolean
}

export default class GeneratorsPause extends BaseCommand<typeof GeneratorsPause> {
  static override summary = 'Pause a generator: every daemon skips it until it is resumed'
  static override examples = ['<%= config.bin %> <%= command.id %> gc']
  static override args = {key: Args.string({description: 'Generator key (see `taskd generators list`)', required: true})}

  async run(): Promise<GeneratorPauseResult> {
    const generator = findGenerator(await this.generators(), this.args.key)
    const storage = await this.openStorage()
    const before = (await getState(storage, generator.key)).paused
    await setPaused(storage, generator.key, true)
    this.log(before ? `Generator ${generator.key} was already paused.` : `Generator ${generator.key} paused; running daemons notice at their next heartbeat.`)
    return {generator: generator.key, paused: true, changed: !before}
  }
}
