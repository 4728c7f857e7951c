// SO_REUSEPORT for the listeners (--listen-reuse-port): what lets a DaemonSet surge pod on the host
// network bind 127.0.0.1:8443 while the old pod still serves there. Node sets it through the
// `reusePort` listen option from 22.12 and 23.1, on Linux (among the platforms we run on); older
// Nodes ignore the option, so the second bind fails with EADDRINUSE, and some platforms refuse it.

/** Whether this Node can bind with SO_REUSEPORT (`net` listen option `reusePort`). */
export function reusePortSupported (version: string = process.versions.node, platform: string = process.platform): boolean {
  if (platform !== 'linux') return false
  const [major = 0, minor = 0] = version.replace(/^v/, '').split('.').map(Number)
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12)
}

/** Said once at start when --listen-reuse-port is asked for and this Node cannot do it. */
export function reusePortUnsupportedMessage (version: string = process.versions.node): string {
  return `SO_REUSEPORT is not available on Node ${version} (needs Node 22.12+ or 23.1+ on Linux): ` +
    'the port is bound alone, so a second server (a DaemonSet surge pod) cannot listen on it until this one stops; ' +
    'roll out with maxSurge: 0, maxUnavailable: 1 (docs/operators/operations.md#rollouts)'
}

/**
 * Whether to bind one listener with SO_REUSEPORT: asked for, supported, and a fixed port. Port 0
 * never shares (a surge partner cannot know it, and with --workers each worker would get a port
 * of its own: they share it through node:cluster instead).
 */
export function useReusePort (asked: boolean, port: number, supported: boolean = reusePortSupported()): boolean {
  return asked && supported && port !== 0
}
