import {Args, Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {rotateSecret, type WebhookView} from '../../generators/webhooks/hooks.js'

export default class WebhooksRotateSecret extends BaseCommand<typeof WebhooksRotateSecret> {
  static override summary = 'Give a webhook a new secret (printed once, with --reveal, so it can be given to the receiver)'
  static override args = {id: Args.integer({description: 'Webhook id', required: true, min: 1})}
  static override flags = {reveal: Flags.boolean({summary: 'Print the new secret once (it is never shown again)'})}

  async run(): Promise<{hook: WebhookView; secret?: string}> {
    const storage = await this.openStorage()
    const {hook, secret} = await rotateSecret(storage, this.args.id)
    this.log(this.flags.reveal ? `Webhook ${hook.id} new secret: ${secret}` : `Webhook ${hook.id} has a new secret (${hook.secret}); rerun with --reveal to print a new one for the receiver.`)
    return this.flags.reveal ? {hook, secret} : {hook}
  }
}
