import {BaseCommand} from '../../cli/base-command.js'
import {formatTime, renderTable} from '../../cli/render.js'
import {listHooks, type WebhookView} from '../../generators/webhooks/hooks.js'

export default class WebhooksList extends BaseCommand<typeof WebhooksList> {
  static override summary = 'List webhooks (secrets masked)'
  static override examples = ['<%= config.bin %> <%= command.id %> --json']

  async run(): Promise<{hooks: WebhookView[]}> {
    const storage = await this.openStorage()
    const hooks = await listHooks(storage)
    const now = storage.now()
    this.log(
      hooks.length
        ? renderTable(
            ['id', 'name', 'status', 'url', 'events', 'note'],
            hooks.map((h) => [h.id, h.name, h.status, h.url, h.status === 'firehose' ? '*' : h.events.join(' '), h.pausedUntil > now ? `paused until ${formatTime(h.pausedUntil)}` : (h.disabledReason ?? '')]),
          )
        : 'No webhooks. Add one with `taskd webhooks add --name N --url U`.',
    )
    return {hooks}
  }
}
