#!/usr/bin/env node
'use strict'
/**
 * One STREAM payment through a connector, end to end, with the JS ILP stack.
 *
 * A receiver (ilp-protocol-stream server) and a sender (ilp-protocol-stream
 * client) each connect to the connector under test as BTP clients
 * (ilp-plugin-btp). Both learn their ILP address from the connector with
 * IL-DCP. The sender streams AMOUNT to the receiver; the receiver counts the
 * money it gets.
 *
 * Usage:
 *   node stream_pay.js --receiver URL --sender URL [--amount N] [--timeout MS]
 *
 *   --receiver  BTP URL of the receiver's account, e.g.
 *               btp+ws://:bob_secret@127.0.0.1:7769   (env RECEIVER_BTP_URL)
 *   --sender    BTP URL of the sender's account, e.g.
 *               btp+ws://:alice_secret@127.0.0.1:7768 (env SENDER_BTP_URL)
 *   --amount    amount to send, in the sender's base units; default 1000000
 *               (env AMOUNT)
 *   --timeout   overall deadline in milliseconds; default 60000 (env TIMEOUT_MS)
 *
 * Output: exactly one JSON line on stdout, e.g.
 *   {"sent":"1000000","received":"1000000","senderAddress":"test.ilptx.alice",
 *    "receiverAddress":"test.ilptx.bob","elapsedMs":312}
 * where "received" is the sum of the receiver's `money` events. Logs and
 * errors go to stderr (set DEBUG=ilp* for the libraries' own logs).
 *
 * Exit status: 0 when the payment completed and received == sent; 1 on any
 * failure or timeout (with a message on stderr); 2 on bad usage.
 */

const crypto = require('crypto')
const BtpPlugin = require('ilp-plugin-btp')
const { createServer, createConnection } = require('./stream-shim')

function usage (message) {
  process.stderr.write(`stream_pay: ${message}\n` +
    'usage: node stream_pay.js --receiver BTP_URL --sender BTP_URL [--amount N] [--timeout MS]\n')
  process.exit(2)
}

function parseArgs (argv, env) {
  const opts = {
    receiver: env.RECEIVER_BTP_URL,
    sender: env.SENDER_BTP_URL,
    amount: env.AMOUNT || '1000000',
    timeout: env.TIMEOUT_MS || '60000'
  }
  for (let i = 0; i < argv.length; i++) {
    const match = /^--(receiver|sender|amount|timeout)(?:=(.*))?$/.exec(argv[i])
    if (!match) usage(`unknown argument: ${argv[i]}`)
    const value = match[2] !== undefined ? match[2] : argv[++i]
    if (value === undefined) usage(`missing value for --${match[1]}`)
    opts[match[1]] = value
  }
  if (!opts.receiver) usage('--receiver (or RECEIVER_BTP_URL) is required')
  if (!opts.sender) usage('--sender (or SENDER_BTP_URL) is required')
  if (!/^[1-9][0-9]*$/.test(opts.amount)) usage(`--amount must be a positive integer, got ${opts.amount}`)
  if (!/^[1-9][0-9]*$/.test(opts.timeout)) usage(`--timeout must be a positive integer, got ${opts.timeout}`)
  opts.timeout = Number(opts.timeout)
  return opts
}

/** Fail the whole run: one clear line on stderr, exit 1. */
function fail (message) {
  process.stderr.write(`stream_pay: FAILED: ${message}\n`)
  process.exit(1)
}

/** Resolve when `predicate()` holds (checked on each `event` of `emitter`), reject after `ms`. */
function waitFor (emitter, event, predicate, ms, what) {
  return new Promise((resolve, reject) => {
    if (predicate()) return resolve()
    const timer = setTimeout(() => {
      emitter.removeListener(event, check)
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`))
    }, ms)
    function check () {
      if (!predicate()) return
      clearTimeout(timer)
      emitter.removeListener(event, check)
      resolve()
    }
    emitter.on(event, check)
  })
}

/** Run `promise`, but give up after `ms` (used for best-effort cleanup). */
function bounded (promise, ms) {
  return Promise.race([promise, new Promise(resolve => setTimeout(resolve, ms))])
}

/** What the run is doing now, for failure messages. */
let step = 'starting'

async function main () {
  const opts = parseArgs(process.argv.slice(2), process.env)
  const amount = BigInt(opts.amount)
  const started = Date.now()
  const deadline = setTimeout(() => fail(`overall timeout of ${opts.timeout} ms hit while ${step}`), opts.timeout)

  // --- receiver ------------------------------------------------------------
  step = `connecting the receiver to ${redact(opts.receiver)} (BTP auth, then IL-DCP)`
  const receiverPlugin = new BtpPlugin({ server: opts.receiver })
  const server = await createServer({ plugin: receiverPlugin, serverSecret: crypto.randomBytes(32) })

  let received = 0n
  const moneyEvents = new (require('events').EventEmitter)()
  server.on('connection', connection => {
    connection.on('stream', stream => {
      stream.setReceiveMax(Infinity)
      stream.on('money', value => {
        received += BigInt(value)
        moneyEvents.emit('money')
      })
    })
  })
  const { destinationAccount, sharedSecret } = server.generateAddressAndSecret()

  // --- sender --------------------------------------------------------------
  step = `connecting the sender to ${redact(opts.sender)} (BTP auth, IL-DCP, STREAM handshake and rate probe)`
  const senderPlugin = new BtpPlugin({ server: opts.sender })
  const connection = await createConnection({ plugin: senderPlugin, destinationAccount, sharedSecret })

  step = `sending ${amount} (sender connection at ${connection.sourceAccount})`
  const stream = connection.createStream()
  await stream.sendTotal(amount.toString(), { timeout: opts.timeout })

  // The sender counts money when the Fulfill comes back; the receiver's
  // `money` events fire while it builds that Fulfill, so they are normally
  // already in. Wait briefly in case the last one is still in flight.
  step = 'waiting for the receiver to account for the last packet'
  await waitFor(moneyEvents, 'money', () => received >= amount, 5000,
    `the receiver to reach ${amount} (has ${received})`)

  const result = {
    sent: stream.totalSent,
    received: received.toString(),
    senderAddress: connection.sourceAccount,
    receiverAddress: server.serverAccount,
    elapsedMs: Date.now() - started
  }

  // Close politely, but never let cleanup decide the outcome.
  step = 'closing'
  // (server.close() would try to send its own ConnectionClose to a sender
  // that is already gone and wait for that to fail, so just hang up instead.)
  await bounded(connection.end().catch(() => {}), 2000)
  await bounded(receiverPlugin.disconnect().catch(() => {}), 1000)
  clearTimeout(deadline)

  if (result.sent !== amount.toString()) {
    fail(`sender reports totalSent=${result.sent}, expected ${amount}`)
  }
  if (received !== amount) {
    fail(`receiver got ${received}, expected exactly ${amount}`)
  }
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0))
}

/** A BTP URL without its secret, for messages. */
function redact (url) {
  return String(url).replace(/\/\/([^@/]*)@/, '//***@')
}

process.on('unhandledRejection', err => fail(`unhandled rejection while ${step}: ${err && err.stack ? err.stack : err}`))
main().catch(err => fail(`while ${step}: ${err && err.stack ? err.stack : err}`))
