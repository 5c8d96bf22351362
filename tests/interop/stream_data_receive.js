#!/usr/bin/env node
'use strict'
/**
 * An ilp-protocol-stream 2.7.1 receiver that collects STREAM data.
 *
 *   node stream_data_receive.js --uplink BTP_URL --expect BYTES [--timeout MS]
 *
 * First stdout line: {"destination": ..., "secret": base64}. When BYTES have arrived on its
 * streams (or its connection closes): {"bytes": N, "sha256": hex, "money": "M"}; then exits.
 */
const crypto = require('crypto')
const BtpPlugin = require('ilp-plugin-btp')
const { createServer } = require('./stream-shim')

function arg (name, fallback) {
  const at = process.argv.indexOf('--' + name)
  return at === -1 ? fallback : process.argv[at + 1]
}

async function main () {
  const expect = Number(arg('expect'))
  const timer = setTimeout(() => { process.stderr.write('stream_data_receive: timed out\n'); process.exit(1) },
    Number(arg('timeout', '60000')))
  const plugin = new BtpPlugin({ server: arg('uplink') })
  const server = await createServer({ plugin })
  const { destinationAccount, sharedSecret } = server.generateAddressAndSecret()
  process.stdout.write(JSON.stringify({ destination: destinationAccount, secret: sharedSecret.toString('base64') }) + '\n')
  const chunks = []
  let money = 0
  let done = false
  const finish = () => {
    if (done) return
    done = true
    const all = Buffer.concat(chunks)
    process.stdout.write(JSON.stringify({
      bytes: all.length, sha256: crypto.createHash('sha256').update(all).digest('hex'), money: String(money)
    }) + '\n')
    clearTimeout(timer)
    setTimeout(() => process.exit(0), 100)
  }
  server.on('connection', connection => {
    connection.on('stream', stream => {
      stream.setReceiveMax(Infinity)
      stream.on('money', amount => { money += Number(amount) })
      stream.on('data', chunk => {
        chunks.push(chunk)
        if (Buffer.concat(chunks).length >= expect) finish()
      })
    })
    connection.on('close', finish)
  })
}

main().catch(err => { process.stderr.write(`stream_data_receive: ${err && err.stack}\n`); process.exit(1) })
