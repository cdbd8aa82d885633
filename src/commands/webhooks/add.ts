import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {addHook, type WebhookView} from '../../generators/webhooks/hooks.js'

export default class WebhooksAdd extends BaseCommand<typeof WebhooksAdd> {
  static override summary = 'Add a webhook: a firehose (every event) or one subscribed to event type patterns'
  static override examples = [
    '<%= config.bin %> <%= command.id %> --name audit --url https://audit.example.com/hook --firehose',
    '<%= config.bin %> <%= command.id %> --name ci --url https://ci.example.com/hook --events "build.*" --events task.closed',
  ]
  static override flags = {
    name: Flags.string({summary: 'A name for operators', required: true}),
    url: Flags.string({summary: 'http(s) URL the requests are POSTed to', required: true}),
    secret: Flags.string({summary: 'HMAC secret (default: a new whsec_… Standard Webhooks secret)'}),
    firehose: Flags.boolean({summary: 'Receive every event'}),
    events: Flags.string({summary: 'Event type pattern to subscribe to (repeatable; * is a wildcard)', multiple: true}),
    reveal: Flags.boolean({summary: 'Print the secret once, to hand it to the receiver (never shown again)'}),
  }

  async run(): Promise<WebhookView & {revealedSecret?: string}> {
    const storage = await this.openStorage()
    const hook = await addHook(storage, {name: this.flags.name, url: this.flags.url, secret: this.flags.secret, firehose: this.flags.firehose, events: this.flags.events})
    this.log(`Added webhook ${hook.id} (${hook.name}, ${hook.status}) → ${hook.url}.`)
    if (!this.flags.reveal) return hook
    const {secret} = await storage.db.selectFrom('taskd_webhooks').select('secret').where('id', '=', hook.id).executeTakeFirstOrThrow()
    this.log(`Secret (shown once): ${secret}`)
    return {...hook, revealedSecret: secret}
  }
}
