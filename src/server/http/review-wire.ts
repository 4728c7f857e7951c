import type { z } from 'zod'

// What the TokenReview and SubjectAccessReview edges share: the wording of a refused body, and
// answers serialised once per cached object.

/**
 * `invalid <kind>: <path>: <message>` from the first zod issue. Messages come from our schemas and
 * never quote the input, so a token sent to the wrong field is not echoed.
 */
export function invalidReview (kind: string, error: z.ZodError): string {
  const issue = error.issues[0]
  const path = issue !== undefined && issue.path.length > 0 ? `${issue.path.join('.')}: ` : ''
  return `invalid ${kind}: ${path}${issue?.message ?? 'malformed'}`
}

/**
 * `serialise` memoised per object and API version. The engines hand out the same object for
 * every cache hit (a decision, an identity), so a hit serialises nothing; an entry goes with its
 * object when the cache drops it (WeakMap).
 */
export function answerTexts<K extends object, V extends string> (serialise: (version: V, key: K) => string): (version: V, key: K) => string {
  const texts = new WeakMap<K, Map<V, string>>()
  return (version, key) => {
    let byVersion = texts.get(key)
    if (byVersion === undefined) texts.set(key, byVersion = new Map())
    let text = byVersion.get(version)
    if (text === undefined) byVersion.set(version, text = serialise(version, key))
    return text
  }
}
