// Runs one ilp-plugin-xrp-paychan 2.4.1 for the interop tests, with ilp-protocol-stream 2.7.1 over it.
// argv[2]: JSON {xrpServer, secret, currencyScale, listener?: {port, secret}, server?: "btp+ws://...", opts?,
//                spspPort?: N (serve SPSP for a STREAM server on the plugin)}.
// stdout: one JSON event a line: {"event":"connected"}, {"event":"spsp","port":N}, {"event":"money","amount":"<units>"},
// {"event":"received","total":"<units>"} (STREAM server), {"event":"done","id":N,...} / {"event":"failed","id":N,"error"}.
// stdin: one JSON command a line: {"id":N,"cmd":"sendMoney","amount":"..."},
// {"id":N,"cmd":"stream","spsp":"http://...","chunks":["...",...]} (a STREAM payment of the chunks in turn, sendMoney
// of each chunk once it has been delivered), {"id":N,"cmd":"info"} (the plugin's channels), {"id":N,"cmd":"quit"}.
'use strict'
const readline = require('readline')
const PluginXrpPaychan = require('ilp-plugin-xrp-paychan')
const StoreMemory = require('ilp-store-memory')
const { createConnection } = require('ilp-protocol-stream')
const { serveSpsp, getJson } = require('./stream_common')

const cfg = JSON.parse(process.argv[2])
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const say = (level) => (...a) => console.error(level, ...a.map(x => typeof x === 'string' ? x : JSON.stringify(x)))
const log = { debug () {}, trace () {}, info: say('info'), warn: say('warn'), error: say('error') }

async function main () {
  const plugin = new PluginXrpPaychan({
    xrpServer: cfg.xrpServer,
    secret: cfg.secret,
    currencyScale: cfg.currencyScale,
    ...(cfg.listener ? { listener: cfg.listener } : { server: cfg.server }),
    ...(cfg.opts || {}),
    _store: new StoreMemory() // what ilp-connector passes: the plugin keeps its channels and claims there
  }, { log })
  plugin.registerMoneyHandler(async (amount) => out({ event: 'money', amount: amount.toString() }))
  await plugin.connect()
  out({ event: 'connected' })
  if (cfg.spspPort) await serveSpsp(plugin, cfg.spspPort, out)
  const commands = readline.createInterface({ input: process.stdin })
  for await (const line of commands) {
    const c = JSON.parse(line)
    try {
      if (c.cmd === 'sendMoney') {
        await plugin.sendMoney(c.amount)
      } else if (c.cmd === 'stream') {
        const spsp = await getJson(c.spsp)
        const connection = await createConnection({
          plugin, destinationAccount: spsp.destination_account, sharedSecret: Buffer.from(spsp.shared_secret, 'base64')
        })
        const stream = connection.createStream()
        let sent = 0n
        for (const chunk of c.chunks) {
          sent += BigInt(chunk)
          await stream.sendTotal(sent.toString(), { timeout: 60000 })
          await plugin.sendMoney(chunk)
          out({ event: 'chunk', sent: sent.toString() })
        }
        await connection.end()
      } else if (c.cmd === 'info') {
        out({ event: 'done', id: c.id, outgoing: plugin._outgoingChannel, incoming: plugin._incomingChannel,
              incomingClaim: plugin._incomingClaim, outgoingClaim: plugin._outgoingClaim, address: plugin._address })
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
