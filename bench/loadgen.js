#!/usr/bin/env node
'use strict'
/**
 * BTP load generator: how many ILP packets per second a connector switches.
 *
 * Two ilp-plugin-btp 1.5.0 clients connect to a running connector: a receiver
 * on one child account, whose data handler fulfills every Prepare at once
 * with a fixed fulfillment, and a sender on another, which sends N Prepares
 * (amount 1, expiry now+30 s, condition = SHA-256(fulfillment)) to
 * DESTINATION with C in flight at a time, each with a distinct sequence
 * number as data. Latency is measured per packet from
 * handing the Prepare to the plugin to getting its Fulfill back. A warm-up
 * round (not measured) runs first.
 *
 * Usage:
 *   node loadgen.js --sender URL --receiver URL --destination ADDR
 *                   [--packets 10000] [--concurrency 50] [--warmup 500]
 *                   [--label NAME]
 *
 *   --sender       BTP URL of the sending account,   e.g. btp+ws://:alice_secret@127.0.0.1:7768
 *   --receiver     BTP URL of the receiving account, e.g. btp+ws://:bob_secret@127.0.0.1:7769
 *   --destination  ILP address the Prepares go to; must route to the receiver's
 *                  account, e.g. test.bench.bob.x for child account bob
 *   --label        name of the connector, copied into the result
 *
 * Output on stdout: one JSON line, then one human-readable line, e.g.
 *   {"label":"reference","packets":10000,"concurrency":50,"fulfilled":10000,
 *    "rejected":0,"receivedByReceiver":10000,"seconds":2.1,"packetsPerSecond":4761.9,
 *    "latencyMs":{"p50":10.2,"p99":19.8,"max":31.0},"loadgenCpuPercent":97}
 *   reference: 10000 packets, 50 in flight: 4762 packets/s, latency p50 10.20 ms, p99 19.80 ms,
 *   max 31.00 ms, load generator CPU 97%
 * (loadgenCpuPercent is the CPU this process used while measuring, in % of
 * one core; near 100 means the load generator, not the connector, set the pace.)
 *
 * Exit status 0 when every packet was fulfilled, 1 otherwise (rejects, errors
 * or the 5-minute overall timeout), 2 on bad usage.
 */

const crypto = require('crypto')
const BtpPlugin = require('ilp-plugin-btp')
const IlpPacket = require('ilp-packet')

const OVERALL_TIMEOUT_MS = 5 * 60 * 1000
const EXPIRY_MS = 30 * 1000

const FULFILLMENT = crypto.createHash('sha256').update('ilptx bench fulfillment').digest()
const CONDITION = crypto.createHash('sha256').update(FULFILLMENT).digest()
const FULFILL_PACKET = IlpPacket.serializeIlpFulfill({ fulfillment: FULFILLMENT, data: Buffer.alloc(0) })

// Every Prepare carries a distinct 8-byte sequence number as its data. Without
// it, Prepares built in the same millisecond are byte-identical, and the
// reference connector's deduplicate middleware answers the repeats from its
// cache without forwarding them, which would flatter its figures.
let sequence = 0n

function usage (message) {
  process.stderr.write(`loadgen: ${message}\n` +
    'usage: node loadgen.js --sender URL --receiver URL --destination ADDR ' +
    '[--packets N] [--concurrency C] [--warmup W] [--label NAME]\n')
  process.exit(2)
}

function parseArgs (argv) {
  const opts = { packets: '10000', concurrency: '50', warmup: '500', label: 'connector' }
  for (let i = 0; i < argv.length; i++) {
    const match = /^--(sender|receiver|destination|packets|concurrency|warmup|label)(?:=(.*))?$/.exec(argv[i])
    if (!match) usage(`unknown argument: ${argv[i]}`)
    const value = match[2] !== undefined ? match[2] : argv[++i]
    if (value === undefined) usage(`missing value for --${match[1]}`)
    opts[match[1]] = value
  }
  for (const key of ['sender', 'receiver', 'destination']) {
    if (!opts[key]) usage(`--${key} is required`)
  }
  for (const key of ['packets', 'concurrency', 'warmup']) {
    if (!/^[0-9]+$/.test(opts[key])) usage(`--${key} must be a non-negative integer`)
    opts[key] = Number(opts[key])
  }
  if (opts.packets < 1 || opts.concurrency < 1) usage('--packets and --concurrency must be at least 1')
  return opts
}

function fail (message) {
  process.stderr.write(`loadgen: FAILED: ${message}\n`)
  process.exit(1)
}

/**
 * Send `count` Prepares with `concurrency` in flight.
 *
 * @returns {{fulfilled: number, rejected: number, rejectCodes: object,
 *            latenciesMs: Float64Array, seconds: number}}
 */
async function run (plugin, destination, count, concurrency) {
  const latenciesMs = new Float64Array(count)
  const rejectCodes = {}
  let next = 0
  let fulfilled = 0
  let rejected = 0

  async function worker () {
    while (next < count) {
      const index = next++
      const data = Buffer.alloc(8)
      data.writeBigUInt64BE(sequence++)
      const prepare = IlpPacket.serializeIlpPrepare({
        amount: '1',
        executionCondition: CONDITION,
        expiresAt: new Date(Date.now() + EXPIRY_MS),
        destination,
        data
      })
      const started = process.hrtime.bigint()
      const response = await plugin.sendData(prepare)
      latenciesMs[index] = Number(process.hrtime.bigint() - started) / 1e6
      if (response[0] === IlpPacket.Type.TYPE_ILP_FULFILL) {
        fulfilled++
      } else {
        rejected++
        let code = 'not-an-ILP-response'
        try {
          if (response[0] === IlpPacket.Type.TYPE_ILP_REJECT) {
            const reject = IlpPacket.deserializeIlpReject(response)
            code = `${reject.code} ${reject.message}`
          }
        } catch (err) {}
        rejectCodes[code] = (rejectCodes[code] || 0) + 1
      }
    }
  }

  const started = process.hrtime.bigint()
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  return { fulfilled, rejected, rejectCodes, latenciesMs, seconds }
}

/** The q-quantile (0..1) of sorted values, nearest-rank. */
function quantile (sorted, q) {
  const rank = Math.max(1, Math.ceil(q * sorted.length))
  return sorted[rank - 1]
}

const round2 = x => Math.round(x * 100) / 100

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  let step = 'connecting'
  const deadline = setTimeout(() => fail(`overall timeout of ${OVERALL_TIMEOUT_MS} ms hit while ${step}`),
    OVERALL_TIMEOUT_MS)

  let receivedPrepares = 0
  const receiver = new BtpPlugin({ server: opts.receiver })
  receiver.registerDataHandler(async data => {
    if (data[0] !== IlpPacket.Type.TYPE_ILP_PREPARE) {
      throw new Error(`receiver expected an ILP Prepare, got type ${data[0]}`)
    }
    receivedPrepares++
    return FULFILL_PACKET
  })
  const sender = new BtpPlugin({ server: opts.sender })
  step = 'connecting the receiver'
  await receiver.connect()
  step = 'connecting the sender'
  await sender.connect()

  if (opts.warmup > 0) {
    step = `warming up (${opts.warmup} packets)`
    const warm = await run(sender, opts.destination, opts.warmup, opts.concurrency)
    if (warm.rejected) fail(`warm-up: ${warm.rejected} rejected: ${JSON.stringify(warm.rejectCodes)}`)
  }

  step = `sending ${opts.packets} packets`
  receivedPrepares = 0
  const cpuBefore = process.cpuUsage()
  const result = await run(sender, opts.destination, opts.packets, opts.concurrency)
  const cpu = process.cpuUsage(cpuBefore)
  clearTimeout(deadline)

  const sorted = Float64Array.from(result.latenciesMs).sort()
  const summary = {
    label: opts.label,
    packets: opts.packets,
    concurrency: opts.concurrency,
    fulfilled: result.fulfilled,
    rejected: result.rejected,
    receivedByReceiver: receivedPrepares,
    seconds: round2(result.seconds),
    packetsPerSecond: round2(opts.packets / result.seconds),
    latencyMs: {
      p50: round2(quantile(sorted, 0.5)),
      p99: round2(quantile(sorted, 0.99)),
      max: round2(sorted[sorted.length - 1])
    },
    // CPU the load generator itself used while measuring, in % of one core:
    // near 100 means it, not the connector, set the pace.
    loadgenCpuPercent: Math.round((cpu.user + cpu.system) / 1e4 / result.seconds)
  }
  if (result.rejected) summary.rejectCodes = result.rejectCodes
  const l = summary.latencyMs
  process.stdout.write(JSON.stringify(summary) + '\n' +
    `${opts.label}: ${opts.packets} packets, ${opts.concurrency} in flight: ` +
    `${Math.round(summary.packetsPerSecond)} packets/s, latency p50 ${l.p50.toFixed(2)} ms, ` +
    `p99 ${l.p99.toFixed(2)} ms, max ${l.max.toFixed(2)} ms, load generator CPU ${summary.loadgenCpuPercent}%` +
    (result.rejected ? ` (${result.rejected} REJECTED)` : '') + '\n', () => {
    if (result.rejected) fail(`${result.rejected} of ${opts.packets} packets rejected: ${JSON.stringify(result.rejectCodes)}`)
    if (receivedPrepares !== result.fulfilled) {
      fail(`${result.fulfilled} Fulfills came back but the receiver saw ${receivedPrepares} Prepares`)
    }
    // The plugins' reconnecting sockets would keep the process alive; we are done.
    process.exit(0)
  })
}

process.on('unhandledRejection', err => fail(`unhandled rejection: ${err && err.stack ? err.stack : err}`))
main().catch(err => fail(err && err.stack ? err.stack : String(err)))
