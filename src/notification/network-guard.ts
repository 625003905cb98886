import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * Where a webhook or Slack URL may point (SPEC §13 safety). Link-local and cloud metadata
 * addresses are never reachable; loopback and private ranges only with
 * NOTIFY_ALLOW_PRIVATE_NETWORKS=true. Checked on the resolved address at send time, and at
 * create time when the host is an IP literal.
 */
const NEVER = new BlockList();
NEVER.addSubnet('169.254.0.0', 16, 'ipv4'); // link-local, 169.254.169.254 metadata
NEVER.addSubnet('0.0.0.0', 8, 'ipv4'); // "this network": 0.0.0.0 reaches localhost
NEVER.addSubnet('100.100.100.200', 32, 'ipv4'); // Alibaba Cloud metadata
NEVER.addSubnet('224.0.0.0', 4, 'ipv4'); // multicast
NEVER.addSubnet('240.0.0.0', 4, 'ipv4'); // reserved, broadcast
NEVER.addSubnet('fe80::', 10, 'ipv6'); // link-local
NEVER.addSubnet('fd00:ec2::254', 128, 'ipv6'); // AWS metadata over IPv6
NEVER.addSubnet('::', 128, 'ipv6'); // unspecified
NEVER.addSubnet('ff00::', 8, 'ipv6'); // multicast

const PRIVATE = new BlockList();
PRIVATE.addSubnet('127.0.0.0', 8, 'ipv4');
PRIVATE.addSubnet('10.0.0.0', 8, 'ipv4');
PRIVATE.addSubnet('172.16.0.0', 12, 'ipv4');
PRIVATE.addSubnet('192.168.0.0', 16, 'ipv4');
PRIVATE.addSubnet('100.64.0.0', 10, 'ipv4'); // carrier-grade NAT
PRIVATE.addSubnet('198.18.0.0', 15, 'ipv4'); // benchmarking
PRIVATE.addSubnet('::1', 128, 'ipv6');
PRIVATE.addSubnet('fc00::', 7, 'ipv6'); // unique local

/** `::ffff:7f00:1` and `::ffff:127.0.0.1` are IPv4 addresses in IPv6 clothing: judge them as IPv4. */
function unwrapMapped(address: string): string {
  const lower = address.toLowerCase().replace(/^\[|\]$/g, '');
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted) return dotted[1];
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex) {
    const [high, low] = [parseInt(hex[1], 16), parseInt(hex[2], 16)];
    return [high >> 8, high & 255, low >> 8, low & 255].join('.');
  }
  return lower;
}

/** Why an address may not be reached, or undefined when it may. */
export function refusalFor(address: string, allowPrivateNetworks: boolean): string | undefined {
  const ip = unwrapMapped(address);
  const family = isIP(ip);
  if (family === 0) return `${address} is not an IP address`;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (NEVER.check(ip, type)) return `${address} is a link-local, metadata or reserved address, never reachable`;
  if (!allowPrivateNetworks && PRIVATE.check(ip, type)) {
    return `${address} is a loopback or private address (allowed only with NOTIFY_ALLOW_PRIVATE_NETWORKS=true)`;
  }
  return undefined;
}

/** The host of a URL as an IP literal (brackets removed), or undefined for a name. */
export function ipLiteralHost(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return isIP(host) ? host : undefined;
}

export class RefusedAddressError extends Error {
  readonly code = 'EADDRREFUSED';
}

type LookupCallback = (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for http.request that resolves as usual and then refuses the connection when any
 * resolved address is forbidden: the check happens on the address actually connected to, so a
 * name that resolves to 127.0.0.1 or 169.254.169.254 (DNS rebinding included) is caught.
 */
export function guardedLookup(allowPrivateNetworks: boolean) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const refused = addresses.map((entry) => refusalFor(entry.address, allowPrivateNetworks)).find(Boolean);
      if (refused) return callback(new RefusedAddressError(`${hostname} resolves to ${refused}`), []);
      if (options.all) return callback(null, addresses);
      callback(null, addresses[0].address, addresses[0].family);
    });
  };
}
