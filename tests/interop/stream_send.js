#!/usr/bin/env node
'use strict'
/**
 * Send one STREAM payment with ilp-protocol-stream 2.7.1 to a given destination and shared
 * secret (e.g. an ilptx STREAM receiver), over an ilp-plugin-btp client of a connector.
 *
 *   node stream_send.js --uplink BTP_URL --destination ADDRESS --secret BASE64 [--amount N] [--timeout MS]
 *                       [--data-bytes N]   (also write N bytes of a fixed pattern on the stream)
 *
 * Prints one JSON line: {"sent": "...", "senderAddress": "...", "elapsedMs": N}; exits 0 when
 * the whole amount was sent, 1 otherwise (message on stderr).
 */
const BtpPlugin = require('ilp-plugin-btp')
const { createConnection } = require('./stream-shim')

function arg (name, fallback) {
  const at = process.argv.indexOf('--' + name)
  return at === -1 ? fallback : process.argv[at + 1]
}

async function main () {
  const uplink = arg('uplink')
  const destination = arg('destination')
  const secret = arg('secret')
  const amount = arg('amount', '1000000')
  const timeout = Number(arg('timeout', '60000'))
  if (!uplink || !destination || !secret) {
    process.stderr.write('usage: node stream_send.js --uplink URL --destination ADDR --secret B64 [--amount N]\n')
    process.exit(2)
  }
  const timer = setTimeout(() => { process.stderr.write('stream_send: timed out\n'); process.exit(1) }, timeout)
  const started = Date.now()
  const plugin = new BtpPlugin({ server: uplink })
  const connection = await createConnection({
    plugin, destinationAccount: destination, sharedSecret: Buffer.from(secret, 'base64')
  })
  const stream = connection.createStream()
  const dataBytes = Number(arg('data-bytes', '0'))
  if (dataBytes > 0) {
    const data = Buffer.alloc(dataBytes)
    for (let i = 0; i < dataBytes; i++) data[i] = (i * 7 + 3) % 251
    stream.write(data)
  }
  await stream.sendTotal(amount)
  await connection.end()
  clearTimeout(timer)
  process.stdout.write(JSON.stringify({
    sent: String(stream.totalSent), senderAddress: connection.sourceAccount, elapsedMs: Date.now() - started
  }) + '\n')
  await plugin.disconnect()
  process.exit(0)
}

main().catch(err => { process.stderr.write(`stream_send: ${err && err.stack}\n`); process.exit(1) })
