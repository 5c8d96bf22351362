#!/usr/bin/env node
'use strict'
/**
 * An ilp-protocol-stream 2.7.1 receiver, for paying it from other implementations.
 *
 * It connects to a connector as a BTP client (ilp-plugin-btp), learns its address with IL-DCP,
 * and accepts STREAM money on every stream (receive max: Infinity).
 *
 * Usage:
 *   node stream_receive.js --uplink btp+ws://:secret@127.0.0.1:PORT [--expect N] [--timeout MS]
 *
 * Output (stdout, one JSON object per line):
 *   {"destination": "test.ilptx.shop.<token>", "secret": "<base64>"}   once it is ready
 *   {"received": "N", "closed": true|false}   when a connection closes, or when --expect N
 *                                            base units have arrived (whichever comes first)
 * then it exits 0. Exit 1 on an error or after --timeout (default 60000) ms; 2 on bad usage.
 */

const crypto = require('crypto')
const BtpPlugin = require('ilp-plugin-btp')
const { createServer } = require('./stream-shim')

function arg (name, fallback) {
  const at = process.argv.indexOf('--' + name)
  return at === -1 ? fallback : process.argv[at + 1]
}

function fail (message) {
  process.stderr.write(`stream_receive: FAILED: ${message}\n`)
  process.exit(1)
}

async function main () {
  const uplink = arg('uplink')
  const expect = arg('expect') === undefined ? undefined : BigInt(arg('expect'))
  const timeout = Number(arg('timeout', '60000'))
  if (!uplink) {
    process.stderr.write('usage: node stream_receive.js --uplink URL [--expect N] [--timeout MS]\n')
    process.exit(2)
  }
  const timer = setTimeout(() => fail(`timed out after ${timeout} ms (received ${received})`), timeout)
  let received = 0n
  let done = false

  function finish (closed) {
    if (done) return
    done = true
    clearTimeout(timer)
    // let the Fulfill of the last packet go out before hanging up
    setTimeout(() => {
      process.stdout.write(JSON.stringify({ received: received.toString(), closed }) + '\n', () => {
        plugin.disconnect().catch(() => {}).then(() => process.exit(0))
        setTimeout(() => process.exit(0), 1000)
      })
    }, 200)
  }

  const plugin = new BtpPlugin({ server: uplink })
  const server = await createServer({ plugin, serverSecret: crypto.randomBytes(32) })
  server.on('connection', connection => {
    connection.on('stream', stream => {
      stream.setReceiveMax(Infinity)
      stream.on('money', amount => {
        received += BigInt(amount)
        process.stderr.write(`stream_receive: +${amount} = ${received}\n`)
        if (expect !== undefined && received >= expect) finish(false)
      })
    })
    connection.on('close', () => finish(true))
    connection.on('error', err => process.stderr.write(`stream_receive: connection error: ${err}\n`))
  })
  const { destinationAccount, sharedSecret } = server.generateAddressAndSecret()
  process.stdout.write(JSON.stringify({ destination: destinationAccount, secret: sharedSecret.toString('base64') }) + '\n')
}

process.on('unhandledRejection', err => fail(`unhandled rejection: ${err && err.stack ? err.stack : err}`))
main().catch(err => fail(err && err.stack ? err.stack : err))
