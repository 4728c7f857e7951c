// Warnings found while parsing a configuration that was nevertheless accepted (a key the Go binary
// would ignore, say). A parser attaches them to the value it returns; whoever applies the value
// (src/kube/config-source.ts, live-config.ts) logs them. Kept beside the value rather than in it, so
// the value's shape, equality and serialisation do not change.

const attached = new WeakMap<object, readonly string[]>()

/** Returns `value` with `warnings` attached (none attached when the list is empty). */
export function withWarnings<T extends object> (value: T, warnings: readonly string[]): T {
  if (warnings.length > 0) attached.set(value, [...warnings])
  return value
}

/** The warnings attached to a parsed value; empty for anything else. */
export function warningsOf (value: unknown): readonly string[] {
  return typeof value === 'object' && value !== null ? attached.get(value) ?? [] : []
}
