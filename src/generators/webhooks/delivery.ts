import {createHmac, randomBytes} from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'

import {BlockedAddressError, guardedLookup, refusal, type Cidr} from './outbound.js'

/** Phabricator's webhook timeout (its docs say 10 s; the code uses 15 s). */
export const DELIVERY_TIMEOUT_SECONDS = 15
const BODY_LIMIT = 1000

/** A new secret in the Standard Webhooks format (`whsec_` + base64 of 24 random bytes). */
export function generateSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`
}

export function maskSecret(secret: string): string {
  return secret.startsWith('whsec_') ? 'whsec_****' : '****'
}

export interface WebhookSignatures {
  'x-phabricator-webhook-signature': string
  'webhook-id': string
  'webhook-timestamp': string
  'webhook-signature': string
}

/**
 * Signs a body twice: Phabricator's header (hex HMAC-SHA256 of the body, keyed by the secret
 * string) and Standard Webhooks' (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, keyed by the
 * base64-decoded secret without its `whsec_` prefix).
 */
export function signWebhook(secret: string, messageId: string, timestamp: number, body: string): WebhookSignatures {
  const phabricator = createHmac('sha256', secret).update(body).digest('hex')
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64')
  const standard = createHmac('sha256', key).update(`${messageId}.${timestamp}.${body}`).digest('base64')
  return {
    'x-phabricator-webhook-signature': phabricator,
    'webhook-id': messageId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': `v1,${standard}`,
  }
}

export interface WebhookMessage {
  requestId: number
  eventType: string
  objectRef: string | null
  payload: unknown
  createdAt: number
  test?: boolean
}

/** The JSON body a receiver gets. */
export function webhookBody(message: WebhookMessage): string {
  return JSON.stringify({
    id: `req_${message.requestId}`,
    type: message.eventType,
    object: message.objectRef,
    timestamp: message.createdAt,
    test: message.test ?? false,
    data: message.payload,
  })
}

/**
 * Keep-alive pools, one per allowlist: the guard runs when a socket is dialed, so a socket opened
 * under one allowlist (e.g. 127.0.0.1/32) must never carry a delivery made under another.
 */
const agentPools = new Map<string, {http: http.Agent; https: https.Agent}>()

function agentsFor(allow: readonly Cidr[]): {http: http.Agent; https: https.Agent} {
  const key = allow
    .map(([address, bits]) => `${address.toString()}/${bits}`)
    .sort()
    .join(',')
  let pool = agentPools.get(key)
  if (!pool) {
    // As Node's global agents: keep-alive, idle sockets closed after 5 s.
    pool = {http: new http.Agent({keepAlive: true, timeout: 5000, scheduling: 'lifo'}), https: new https.Agent({keepAlive: true, timeout: 5000, scheduling: 'lifo'})}
    agentPools.set(key, pool)
  }
  return pool
}

export type DeliveryResult =
  | {ok: true; status: number; body: string}
  | {ok: false; errorType: 'http' | 'timeout' | 'network' | 'blocked' | 'url'; code: string; message: string; status?: number; body?: string}

/** One HTTP POST: 15 s timeout, success is 2xx, redirects are not followed, the address is checked. */
export async function deliverWebhook(
  url: string,
  secret: string,
  message: WebhookMessage,
  options: {allow: readonly Cidr[]; timeoutSeconds?: number; signal?: AbortSignal; now?: number},
): Promise<DeliveryResult> {
  let target: URL
  try {
    target = new URL(url)
  } catch {
    return {ok: false, errorType: 'url', code: 'bad-url', message: `invalid URL '${url}'`}
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    return {ok: false, errorType: 'url', code: 'bad-scheme', message: `webhook URLs must be http or https, not ${target.protocol}`}
  }
  // An IP literal is dialed without a DNS lookup, so it is checked here.
  const literal = target.hostname.replace(/^\[|\]$/g, '')
  if (net.isIP(literal)) {
    const reason = refusal(literal, options.allow)
    if (reason) return {ok: false, errorType: 'blocked', code: 'blocked', message: new BlockedAddressError(literal, reason).message}
  }
  const body = webhookBody(message)
  const timestamp = Math.floor(options.now ?? Date.now() / 1000)
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'taskd-webhooks/1',
    'content-length': String(Buffer.byteLength(body)),
    ...signWebhook(secret, `req_${message.requestId}`, timestamp, body),
  }
  const timeoutMs = (options.timeoutSeconds ?? DELIVERY_TIMEOUT_SECONDS) * 1000
  const signals = [AbortSignal.timeout(timeoutMs), ...(options.signal ? [options.signal] : [])]
  const signal = AbortSignal.any(signals)
  const pool = agentsFor(options.allow)
  const [client, agent] = target.protocol === 'https:' ? [https, pool.https] : [http, pool.http]
  return new Promise<DeliveryResult>((resolve) => {
    const request = client.request(target, {method: 'POST', headers, agent, lookup: guardedLookup(options.allow), signal}, (response) => {
      let text = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => {
        if (text.length < BODY_LIMIT) text += chunk
      })
      response.on('end', () => {
        const status = response.statusCode ?? 0
        const truncated = text.slice(0, BODY_LIMIT)
        if (status >= 200 && status < 300) resolve({ok: true, status, body: truncated})
        else resolve({ok: false, errorType: 'http', code: String(status), message: `receiver answered HTTP ${status}`, status, body: truncated})
      })
      response.on('error', (error) => resolve(transportFailure(error, signal)))
    })
    request.on('error', (error) => resolve(transportFailure(error, signal)))
    request.end(body)
  })
}

function transportFailure(error: Error & {code?: string}, signal: AbortSignal): DeliveryResult {
  if (error instanceof BlockedAddressError) return {ok: false, errorType: 'blocked', code: 'blocked', message: error.message}
  if (signal.aborted) {
    const reason = signal.reason as Error | undefined
    if (reason?.name === 'TimeoutError') return {ok: false, errorType: 'timeout', code: 'timeout', message: 'no answer within the delivery timeout'}
    return {ok: false, errorType: 'network', code: 'aborted', message: `delivery aborted: ${reason?.message ?? 'stopping'}`}
  }
  return {ok: false, errorType: 'network', code: error.code ?? 'error', message: error.message.slice(0, 500)}
}
