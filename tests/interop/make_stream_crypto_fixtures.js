#!/usr/bin/env node
'use strict'
// Prints the STREAM crypto fixtures of tests/unit/stream/fixtures/ as one JSON document, made by
// the reference implementation ilp-protocol-stream 2.7.1 (pinned in package.json):
//
//   cd tests/interop && npm ci && cd -
//   node tests/interop/make_stream_crypto_fixtures.js > tests/unit/stream/fixtures/stream_crypto_fixtures.json
//
// Everything goes through the package's own code (dist/src/crypto.js, util/crypto-node.js,
// packet.js, server.js). The output is deterministic: the package draws its IVs from
// require('crypto').randomBytes and its token nonces from crypto-node's randomBytes export, and
// both are replaced below by fixed byte patterns. All byte strings are hex.

const assert = require('assert')
const nodeCrypto = require('crypto')
const streamVersion = require('ilp-protocol-stream/package.json').version
const cryptoHelper = require('ilp-protocol-stream/dist/src/crypto')
const cryptoNode = require('ilp-protocol-stream/dist/src/util/crypto-node')
const packetModule = require('ilp-protocol-stream/dist/src/packet')
const { Server } = require('ilp-protocol-stream/dist/src/server')

assert.strictEqual(streamVersion, '2.7.1', 'expected ilp-protocol-stream 2.7.1; run npm ci in tests/interop')

/** Deterministic bytes: a counter pattern, so fixtures need no RNG. */
function pattern (n, seed) {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = (seed + i * 7) & 0xff
  return b
}

// Every random draw returns the next of these, in order (and fails if more are drawn).
let draws = []
function fixedRandom (n) {
  assert(draws.length > 0, 'unexpected random draw of ' + n + ' bytes')
  const next = draws.shift()
  assert.strictEqual(next.length, n, 'random draw of ' + n + ' bytes, fixture has ' + next.length)
  return Buffer.from(next)
}
nodeCrypto.randomBytes = fixedRandom
cryptoNode.randomBytes = fixedRandom

const hex = (b) => Buffer.from(b).toString('hex')

async function main () {
  const out = { generator: 'tests/interop/make_stream_crypto_fixtures.js', 'ilp-protocol-stream': streamVersion }

  // -- key derivation, HMAC, hash ------------------------------------------------------------
  const sharedSecret = pattern(32, 1)
  const encryptionKey = await cryptoHelper.generatePskEncryptionKey(sharedSecret)
  const fulfillmentKey = await cryptoHelper.generateFulfillmentKey(sharedSecret)
  out.keys = { shared_secret: hex(sharedSecret), encryption_key: hex(encryptionKey), fulfillment_key: hex(fulfillmentKey) }
  out.hmac = { key: hex(pattern(32, 9)), message: hex(Buffer.from('hello stream')), digest: hex(await cryptoHelper.hmac(pattern(32, 9), Buffer.from('hello stream'))) }

  // -- AES-256-GCM envelope: iv || tag || ciphertext ------------------------------------------
  out.encrypt = []
  for (const [plaintext, ivSeed] of [[Buffer.from('the quick brown fox jumps over the lazy dog'), 3], [Buffer.alloc(0), 4], [pattern(300, 5), 6]]) {
    const iv = pattern(12, ivSeed)
    draws = [iv]
    const data = await cryptoHelper.encrypt(encryptionKey, plaintext)
    assert.deepStrictEqual(await cryptoHelper.decrypt(encryptionKey, data), plaintext)
    out.encrypt.push({ key: hex(encryptionKey), iv: hex(iv), plaintext: hex(plaintext), data: hex(data) })
  }

  // -- a whole packet, serialized, padded and encrypted by the package --------------------------
  const P = packetModule
  const packet = new P.Packet(5, P.IlpPacketType.Prepare, 1000, [
    new P.ConnectionNewAddressFrame('test.alice.client'),
    new P.ConnectionAssetDetailsFrame('XRP', 9),
    new P.StreamMoneyFrame(1, 3),
    new P.StreamMaxMoneyFrame(1, Infinity, 42),
    new P.StreamDataFrame(1, 0, Buffer.from('hi')),
    new P.StreamCloseFrame(1, P.ErrorCode.NoError, 'done')
  ])
  const plaintext = packet._serialize()
  out.packets = []
  for (const [pad, ivSeed] of [[undefined, 7], [200, 8]]) {
    const iv = pattern(12, ivSeed)
    draws = [iv]
    const data = await packet.serializeAndEncrypt(encryptionKey, pad)
    const fulfillment = await cryptoHelper.generateFulfillment(fulfillmentKey, data)
    const condition = await cryptoHelper.hash(fulfillment)
    const back = await P.Packet.decryptAndDeserialize(encryptionKey, data)
    assert.strictEqual(back.frames.length, packet.frames.length)
    out.packets.push({
      shared_secret: hex(sharedSecret),
      iv: hex(iv),
      pad_to: pad === undefined ? null : pad,
      plaintext: hex(plaintext),
      data: hex(data),
      fulfillment: hex(fulfillment),
      condition: hex(condition)
    })
  }

  // -- server: connection token, destination address, shared secret -------------------------
  out.server = []
  const serverSecret = pattern(32, 11)
  const fakeServer = { connected: true, serverSecret, serverAccount: 'test.server' }
  const cases = [
    [undefined, 13, 14],
    ['my-tag~1', 15, 16],
    [{ connectionTag: 'invoice42', receiptNonce: pattern(16, 17), receiptSecret: pattern(32, 18) }, 19, 20]
  ]
  for (const [opts, nonceSeed, ivSeed] of cases) {
    const nonce = pattern(cryptoHelper.TOKEN_NONCE_LENGTH, nonceSeed)
    const iv = pattern(12, ivSeed)
    draws = [nonce, iv]
    const { destinationAccount, sharedSecret: connSecret, receiptsEnabled } = Server.prototype.generateAddressAndSecret.call(fakeServer, opts)
    const segment = destinationAccount.slice('test.server.'.length)
    const token = Buffer.from(segment, 'base64')
    assert.deepStrictEqual(cryptoHelper.generateSharedSecretFromToken(serverSecret, token), connSecret)
    const tokenPlaintext = cryptoHelper.decryptConnectionAddressToken(serverSecret, token)
    let tag = ''
    let receiptNonce = ''
    let receiptSecret = ''
    if (typeof opts === 'string') tag = opts
    else if (opts) { tag = opts.connectionTag; receiptNonce = hex(opts.receiptNonce); receiptSecret = hex(opts.receiptSecret) }
    out.server.push({
      server_secret: hex(serverSecret),
      server_account: 'test.server',
      token_nonce: hex(nonce),
      iv: hex(iv),
      connection_tag: tag,
      receipt_nonce: receiptNonce,
      receipt_secret: receiptSecret,
      receipts_enabled: receiptsEnabled,
      token_plaintext: hex(tokenPlaintext),
      token: hex(token),
      destination_account: destinationAccount,
      shared_secret: hex(connSecret)
    })
  }
  assert.strictEqual(draws.length, 0)
  process.stdout.write(JSON.stringify(out, null, 2) + '\n')
}

main().catch((err) => { console.error(err); process.exit(1) })
