// Cache keys are the SHA-256 of the token (the security rules): FIPS 180-2 test vectors.
import t from 'tap'
import { tokenKey } from '../../src/authn/token-key.js'

t.test('tokenKey is the hex SHA-256 of the token', async t => {
  t.equal(tokenKey('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  t.equal(tokenKey('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'), '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1')
  t.not(tokenKey('gAAAAA-a'), tokenKey('gAAAAA-b'))
  t.notMatch(tokenKey('gAAAAA-secret'), /secret/)
})
