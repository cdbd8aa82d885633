import {BaseCommand} from '../../cli/base-command.js'
import {formatTime, renderTable} from '../../cli/render.js'
import {overviewGenerators, type GeneratorOverview} from '../../generators/overview.js'

export interface GeneratorsListResult {
  generators: GeneratorOverview[]
}

export default class GeneratorsList extends BaseCommand<typeof GeneratorsList> {
  static override summary = 'List every generator the daemon would run, with status, cursor, last run and backlog'
  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']

  async run(): Promise<GeneratorsListResult> {
    const storage = await this.openStorage()
    const generators = await overviewGenerators(storage, await this.generators())
    const statusText = (g: GeneratorOverview) =>
      g.status === 'sleeping' && g.sleepingUntil ? `sleeping until ${formatTime(g.sleepingUntil)}` : g.status === 'failing' ? `failing (${g.errorStreak}x): ${g.lastError ?? ''}` : g.status
    const range = (g: GeneratorOverview) => (g.priorityRange.min === g.priorityRange.max ? String(g.priorityRange.min) : `${g.priorityRange.min}-${g.priorityRange.max}`)
    const backlog = (g: GeneratorOverview) => (g.backlog ? Object.entries(g.backlog).map(([k, v]) => `${k} ${v}`).join(', ') : '')
    this.log(
      renderTable(
        ['generator', 'priority', 'status', 'cursor', 'last run', 'last count', 'backlog'],
        generators.map((g) => [g.key, range(g), statusText(g), g.cursor, formatTime(g.lastRunAt), g.lastCount, backlog(g)]),
      ),
    )
    return {generators}
  }
}
