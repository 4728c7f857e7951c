import { Agent, fetch, type Response } from 'undici'

// The test Keystone (uWSGI --http-socket) closes the connection after every answer without
// saying "Connection: close". A keep-alive client that sends its next request before it has read
// that close gets "fetch failed" (other side closed): the flake of secrets.test.ts right after the
// fault tests. Test set-up calls therefore open one connection per request. The code under test
// keeps its keep-alive pool and its own retry on a stale connection (src/keystone/client.ts).
const oneConnectionPerRequest = new Agent({ pipelining: 0 })

/** fetch for test set-up calls to a test Keystone or its IdP: no connection reuse. */
export async function keystoneFetch (url: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}): Promise<Response> {
  return await fetch(url, { ...init, dispatcher: oneConnectionPerRequest })
}
