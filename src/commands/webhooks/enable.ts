import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {enableHook, type WebhookView} from '../../generators/webhooks/hooks.js'

export default class WebhooksEnable extends BaseCommand<typeof WebhooksEnable> {
  static override summary = 'Enable a webhook (and clear an error pause)'
  static override args = {id: Args.integer({description: 'Webhook id', required: true, min: 1})}
  static override flags = {firehose: Flags.boolean({summary: 'Make it a firehose (every event)', allowNo: true})}

  async run(): Promise<WebhookView> {
    const storage = await this.openStorage()
    const hook = await enableHook(storage, this.args.id, this.flags.firehose)
    this.log(`Webhook ${hook.id} is ${hook.status}.`)
    return hook
  }
}
