import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {jsonDataFlag} from '../../cli/flags.js'
import {publishWebhookEvent, type PublishedEvent} from '../../generators/webhooks/hooks.js'

export default class WebhooksPublish extends BaseCommand<typeof WebhooksPublish> {
  static override summary = 'Publish an event: one request per matching webhook, in one transaction'
  static override examples = [`<%= config.bin %> <%= command.id %> --event task.closed --object T123 --data '{"status": "resolved"}'`]
  static override flags = {
    event: Flags.string({summary: 'Event type, e.g. task.closed', required: true}),
    object: Flags.string({summary: 'Ref of the object the event is about'}),
    data: jsonDataFlag({summary: 'Event payload as JSON'}),
  }

  async run(): Promise<PublishedEvent> {
    const storage = await this.openStorage()
    const published = await publishWebhookEvent(storage, {eventType: this.flags.event, objectRef: this.flags.object ?? null, data: this.flags.data ?? null})
    this.log(`Published ${published.eventType}: ${published.requests.length} request(s) queued${published.requests.length ? ` (${published.requests.map((r) => r.id).join(', ')})` : ''}.`)
    return published
  }
}
