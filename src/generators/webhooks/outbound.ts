import dns from 'node:dns'
import type {LookupFunction} from 'node:net'

import ipaddr from 'ipaddr.js'

import {usageError} from '../../core/errors.js'

/**
 * Outbound safety (SSRF): webhooks may only reach public unicast addresses. Loopback, private,
 * link-local (169.254/16, cloud metadata), CGNAT, unique-local, multicast, unspecified and every
 * other special-purpose range are refused, IPv4 and IPv6 (IPv4-mapped IPv6 unwrapped), unless an
 * allowlist CIDR from the config opens them. The check runs on the address actually dialed (inside
 * the socket's DNS lookup), so a DNS answer cannot change between check and connect.
 */
export type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number]

export function parseCidrs(cidrs: readonly string[] = []): Cidr[] {
  return cidrs.map((cidr): Cidr => {
    try {
      const [net, bits] = ipaddr.parseCIDR(cidr.includes('/') ? cidr : `${cidr}/${ipaddr.parse(cidr).kind() === 'ipv4' ? 32 : 128}`)
      // Addresses are compared after unwrapping IPv4-mapped IPv6, so the allowlist is unwrapped too.
      if (net.kind() === 'ipv6' && (net as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) return [(net as ipaddr.IPv6).toIPv4Address(), bits - 96]
      return [net, bits]
    } catch {
      throw usageError(`invalid CIDR '${cidr}' in webhooks.allowCidrs: expected e.g. 127.0.0.1/32 or 10.0.0.0/8`, 'E_CONFIG')
    }
  })
}

/** Why an address is refused, or null when it may be dialed. */
export function refusal(address: string, allow: readonly Cidr[]): string | null {
  let parsed: ipaddr.IPv4 | ipaddr.IPv6
  try {
    parsed = ipaddr.process(address)
  } catch {
    return `'${address}' is not an IP address`
  }
  if (allow.some(([net, bits]) => net.kind() === parsed.kind() && parsed.match([net, bits] as never))) return null
  const range = parsed.range()
  if (range !== 'unicast') return `${parsed.toString()} is in a special-purpose range (${range})`
  // Global unicast IPv6 is 2000::/3; anything else (e.g. the old IPv4-compatible ::a.b.c.d) is refused.
  if (parsed.kind() === 'ipv6' && !parsed.match(ipaddr.parseCIDR('2000::/3') as never)) return `${parsed.toString()} is outside global unicast IPv6 (2000::/3)`
  return null
}

export class BlockedAddressError extends Error {
  readonly code = 'E_BLOCKED_ADDRESS'
  constructor(host: string, reason: string) {
    super(`refusing to connect to ${host}: ${reason} (allow it with webhooks.allowCidrs in the config module)`)
    this.name = 'BlockedAddressError'
  }
}

/** A `lookup` for http.request that refuses blocked addresses at resolution time. */
export function guardedLookup(allow: readonly Cidr[]): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, {...options, all: true}, (error, addresses) => {
      if (error) return callback(error, '', 0)
      const list = addresses as dns.LookupAddress[]
      for (const a of list) {
        const reason = refusal(a.address, allow)
        if (reason) return callback(new BlockedAddressError(hostname, reason), '', 0)
      }
      if ((options as dns.LookupOptions).all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list)
      callback(null, list[0].address, list[0].family)
    })
  }
}
