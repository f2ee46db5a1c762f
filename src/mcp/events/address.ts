import net from 'node:net';

/**
 * The callback address rule of MCP Events webhooks (docs/MCP.md "Events"): which IP addresses a
 * delivery may connect to. A callback URL is chosen by whoever subscribes, so without this rule a
 * subscription would make the server POST into its own network (a cloud metadata service, an
 * admin port on 10.x, the Redis on loopback). Pure: the same rule is applied to a literal address
 * at `events/subscribe` and to each resolved address at each delivery.
 */

/** Why an address is not an ordinary public one; null when it is. */
export type AddressClass =
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'metadata'
  | 'unspecified'
  | 'reserved'
  | 'multicast'
  | 'invalid';

export interface AddressAllowance {
  /** `serve --events-allow-loopback`: loopback callbacks for development and tests. */
  loopback: boolean;
  /** `events.allowPrivateCallbacks`: private ranges (10/8, 172.16/12, 192.168/16, fc00::/7). */
  privateRanges: boolean;
}

export const NO_ALLOWANCE: AddressAllowance = { loopback: false, privateRanges: false };

function ipv4Bytes(ip: string): number[] | null {
  if (!net.isIPv4(ip)) return null;
  return ip.split('.').map(Number);
}

/** An IPv6 address as eight 16-bit groups (an embedded dotted IPv4 tail is converted). */
function ipv6Groups(ip: string): number[] | null {
  if (!net.isIPv6(ip)) return null;
  let text = ip.split('%')[0]!.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const b = ipv4Bytes(dotted[1]!);
    if (!b) return null;
    text =
      text.slice(0, -dotted[1]!.length) +
      `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = 8 - left.length - right.length;
  if (tail === undefined && missing !== 0) return null;
  const groups = [...left, ...Array<string>(Math.max(0, missing)).fill('0'), ...right];
  return groups.map((g) => parseInt(g || '0', 16));
}

function classifyV4(b: number[]): AddressClass | null {
  const [a, c] = [b[0]!, b[1]!];
  if (a === 0) return 'unspecified'; // 0.0.0.0/8: "this network"; connecting to it reaches loopback
  if (a === 127) return 'loopback';
  if (a === 10) return 'private';
  if (a === 172 && c >= 16 && c <= 31) return 'private';
  if (a === 192 && c === 168) return 'private';
  if (a === 169 && c === 254) return b[2] === 169 && b[3] === 254 ? 'metadata' : 'link-local';
  if (a === 100 && c >= 64 && c <= 127) return 'private'; // carrier-grade NAT, 100.64/10
  if (a === 192 && c === 0 && b[2] === 0) return 'reserved'; // IETF protocol assignments
  if (a === 192 && c === 0 && b[2] === 2) return 'reserved'; // documentation
  if (a === 198 && (c === 18 || c === 19)) return 'reserved'; // benchmarking
  if (a === 198 && c === 51 && b[2] === 100) return 'reserved';
  if (a === 203 && c === 0 && b[2] === 113) return 'reserved';
  if (a >= 224 && a <= 239) return 'multicast';
  if (a >= 240) return 'reserved'; // includes 255.255.255.255
  return null;
}

function classifyV6(g: number[]): AddressClass | null {
  if (g.every((x) => x === 0)) return 'unspecified';
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return 'loopback';
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d): the IPv4 rule decides.
  if (g.slice(0, 5).every((x) => x === 0) && (g[5] === 0xffff || g[5] === 0)) {
    return classifyV4([g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff]);
  }
  // NAT64 (64:ff9b::/96) embeds an IPv4 address the gateway connects to.
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) {
    return classifyV4([g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff]);
  }
  const first = g[0]!;
  // AWS's instance metadata over IPv6 (fd00:ec2::254) sits in the unique-local range: checked
  // first, so allowing private ranges never allows it.
  if (first === 0xfd00 && g[1] === 0x0ec2) return 'metadata';
  if ((first & 0xfe00) === 0xfc00) return 'private'; // fc00::/7 unique local
  if ((first & 0xffc0) === 0xfe80) return 'link-local'; // fe80::/10
  if ((first & 0xffc0) === 0xfec0) return 'private'; // fec0::/10 site-local (deprecated)
  if ((first & 0xff00) === 0xff00) return 'multicast';
  if (first === 0x2001 && g[1] === 0x0db8) return 'reserved'; // documentation
  return null;
}

/** The class of a literal IP address: null for an ordinary public address. */
export function classifyAddress(ip: string): AddressClass | null {
  const v4 = ipv4Bytes(ip);
  if (v4) return classifyV4(v4);
  const v6 = ipv6Groups(ip);
  if (v6 && v6.length === 8 && v6.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffff)) {
    return classifyV6(v6);
  }
  return 'invalid';
}

/**
 * Why a delivery may not connect to `ip`, or null when it may. Metadata, link-local,
 * unspecified, multicast and reserved addresses are never allowed: no configuration makes the
 * cloud's credential service a webhook receiver.
 */
export function addressRefusal(ip: string, allow: AddressAllowance): string | null {
  const kind = classifyAddress(ip);
  if (kind === null) return null;
  if (kind === 'loopback' && allow.loopback) return null;
  if (kind === 'private' && allow.privateRanges) return null;
  const fix =
    kind === 'loopback'
      ? ' (start the server with --events-allow-loopback to allow it, for development)'
      : kind === 'private'
        ? ' (set events.allowPrivateCallbacks in the config file to allow private ranges)'
        : '';
  return `the callback address ${ip} is ${kind.replace('-', ' ')}: deliveries go to public addresses only${fix}`;
}

/** A URL's host as an IP literal (brackets of IPv6 removed), or null when it is a name. */
export function literalHost(hostname: string): string | null {
  const bare =
    hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return net.isIP(bare) ? bare : null;
}
