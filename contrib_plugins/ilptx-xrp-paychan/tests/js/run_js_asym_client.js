// Runs one ilp-plugin-xrp-asym-client 1.6.0 (a moneyd uplink) for the asym-server interop test, with
// ilp-protocol-stream 2.7.1 over it as a STREAM sender through the server.
// argv[2]: JSON {server (BTP URL, no password: the token is derived), xrpServer, secret, currencyScale,
//                settleThreshold (units: a claim is sent once this much was fulfilled and not yet paid)}.
// stdout: one JSON event a line: {"event":"connected","channel","clientChannel"}, {"event":"settled","amount","paid"},
// {"event":"chunk","sent"}, {"event":"done","id":N,...} / {"event":"failed","id":N,"error"}.
// stdin: one JSON command a line: {"id":N,"cmd":"pay","amount":"<units>"} (sendMoney: prefunding),
// {"id":N,"cmd":"stream","spsp":"http://...","chunks":[...]}, {"id":N,"cmd":"info"}, {"id":N,"cmd":"quit"}.
'use strict'
const readline = require('readline')
// as run_js_asym_server.js: sodium-javascript's sodium_malloc gives a Uint8Array, sodium-native (not built here) a Buffer
require('sodium-javascript').sodium_malloc = (n) => Buffer.alloc(n)
const PluginXrpAsymClient = require('ilp-plugin-xrp-asym-client')
const IlpPacket = require('ilp-packet')
const { createConnection } = require('ilp-protocol-stream')
const { getJson } = require('./stream_common')

const cfg = JSON.parse(process.argv[2])
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const say = (level) => (...a) => console.error(level, ...a.map(x => typeof x === 'string' ? x : JSON.stringify(x)))
const log = { debug () {}, trace () {}, info: say('info'), warn: say('warn'), error: say('error') }

async function main () {
  const plugin = new PluginXrpAsymClient({
    server: cfg.server, xrpServer: cfg.xrpServer, secret: cfg.secret, currencyScale: cfg.currencyScale
  }, { log })
  await plugin.connect()
  out({ event: 'connected', channel: plugin._channel, clientChannel: plugin._clientChannel })
  let owed = 0n
  let paid = 0n
  const pay = async (amount) => {
    await plugin.sendMoney(amount.toString())
    paid += amount
    out({ event: 'settled', amount: amount.toString(), paid: paid.toString() })
  }
  // what a connector's settleThreshold does for moneyd: pay the server for what it fulfilled
  const streamPlugin = Object.create(plugin)
  streamPlugin.sendData = async (data) => {
    const reply = await plugin.sendData(data)
    if (data[0] === IlpPacket.Type.TYPE_ILP_PREPARE && reply[0] === IlpPacket.Type.TYPE_ILP_FULFILL) {
      owed += BigInt(IlpPacket.deserializeIlpPrepare(data).amount)
      if (owed >= BigInt(cfg.settleThreshold)) {
        const amount = owed
        owed = 0n
        await pay(amount)
      }
    }
    return reply
  }
  streamPlugin.disconnect = async () => {}
  streamPlugin.registerDataHandler = (handler) => plugin.registerDataHandler(handler)
  const commands = readline.createInterface({ input: process.stdin })
  for await (const line of commands) {
    const c = JSON.parse(line)
    try {
      if (c.cmd === 'pay') {
        await pay(BigInt(c.amount))
      } else if (c.cmd === 'stream') {
        const spsp = await getJson(c.spsp)
        const connection = await createConnection({
          plugin: streamPlugin, destinationAccount: spsp.destination_account, sharedSecret: Buffer.from(spsp.shared_secret, 'base64')
        })
        const stream = connection.createStream()
        let sent = 0n
        for (const chunk of c.chunks) {
          sent += BigInt(chunk)
          await stream.sendTotal(sent.toString(), { timeout: 60000 })
          out({ event: 'chunk', sent: sent.toString() })
        }
        await connection.end()
        if (owed > 0n) {
          const amount = owed
          owed = 0n
          await pay(amount)
        }
      } else if (c.cmd === 'info') {
        out({ event: 'done', id: c.id, channel: plugin._channel, clientChannel: plugin._clientChannel, paid: paid.toString() })
        continue
      } else if (c.cmd === 'quit') {
        await plugin.disconnect()
        out({ event: 'done', id: c.id })
        process.exit(0)
      }
      out({ event: 'done', id: c.id })
    } catch (err) {
      out({ event: 'failed', id: c.id, error: String((err && err.stack) || err) })
    }
  }
}

main().catch((err) => { console.error(err); out({ event: 'crashed', error: String((err && err.stack) || err) }); process.exit(1) })
