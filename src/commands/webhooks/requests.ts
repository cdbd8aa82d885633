import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {formatTime, renderTable} from '../../cli/render.js'
import {listRequests, type RequestView} from '../../generators/webhooks/operations.js'
import type {WebhookRequestStatus} from '../../storage/schema.js'

export default class WebhooksRequests extends BaseCommand<typeof WebhooksRequests> {
  static override summary = 'List webhook requests from the history, newest first'
  static override examples = ['<%= config.bin %> <%= command.id %> --hook 3 --status queued --limit 50']
  static override flags = {
    hook: Flags.integer({summary: 'Only this webhook', min: 1}),
    status: Flags.string({summary: 'Only this status', options: ['queued', 'sent', 'failed']}),
    limit: Flags.integer({char: 'n', summary: 'At most this many', default: 50, min: 1, max: 10_000}),
  }

  async run(): Promise<{requests: RequestView[]}> {
    const storage = await this.openStorage()
    const requests = await listRequests(storage, {hookId: this.flags.hook, status: this.flags.status as WebhookRequestStatus | undefined, limit: this.flags.limit})
    this.log(
      requests.length
        ? renderTable(
            ['id', 'hook', 'event', 'status', 'attempts', 'next attempt', 'last error', 'http'],
            requests.map((r) => [r.id, r.hookId, r.eventType, r.status, r.attempts, r.status === 'queued' ? formatTime(r.nextAttemptAt) : '', r.lastError ? `${r.lastError.type}: ${r.lastError.message ?? ''}`.slice(0, 60) : '', r.responseStatus]),
          )
        : 'No requests match.',
    )
    return {requests}
  }
}
