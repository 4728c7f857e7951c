// The edge's own answers: how a body is read, how a refused request is worded.

/**
 * JSON.parse, refusing `__proto__` and `constructor` keys: they have no place in a review, and
 * refusing them closes prototype-pollution paths in anything that later copies the body. The
 * reviver only runs when such a key may be present, so ordinary bodies parse at full speed.
 */
export function parseJsonBody (text: string): unknown {
  if (text.trim() === '') throw new Error('empty body: expected a JSON review')
  const suspicious = text.includes('__proto__') || text.includes('constructor') || text.includes('\\u')
  try {
    return suspicious
      ? JSON.parse(text, (key, value: unknown) => {
        if (key === '__proto__' || key === 'constructor') throw new Error(`forbidden key ${JSON.stringify(key)} in the body`)
        return value
      })
      : JSON.parse(text)
  } catch (err) {
    const msg = (err as Error).message
    throw new Error(msg.startsWith('forbidden key') ? msg : `body is not valid JSON: ${msg}`)
  }
}

/**
 * A request value quoted in a 4xx message only when it is short: a long one may be a token sent to
 * the wrong place, and error messages never carry tokens.
 */
export function shown (v: unknown): string {
  if (typeof v !== 'string') return typeof v
  return v.length <= 40 ? JSON.stringify(v) : `a string of ${v.length} characters`
}

/** A Kubernetes-style Status body, so a human reading a 4xx sees the reason. */
export function statusBody (code: number, reason: string, message: string): object {
  return { apiVersion: 'v1', kind: 'Status', status: 'Failure', code, reason, message }
}
