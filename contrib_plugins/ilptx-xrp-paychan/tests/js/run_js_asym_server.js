// Runs one ilp-plugin-xrp-asym-server 1.8.1 (on ilp-plugin-mini-accounts) for the asym interop test, with
// ilp-protocol-stream 2.7.1 over it as a STREAM sender to a client.
// argv[2]: JSON {xrpServer, secret, address, currencyScale, port, clientAddress (the host's ILP address), opts?,
//                spspPort?: N (serve SPSP for a STREAM server on the plugin: clients pay it)}.
// stdout: one JSON event a line: {"event":"connected"}, {"event":"chunk","sent":"<units>"}, {"event":"spsp","port":N},
// {"event":"received","total":"<units>"} (STREAM server),
// {"event":"done","id":N,...} / {"event":"failed","id":N,"error"}.
// stdin: one JSON command a line: {"id":N,"cmd":"stream","spsp":"http://...","chunks":[...]} (a STREAM payment of
// the chunks in turn; the server pays the client a claim after every Fulfill by itself),
// {"id":N,"cmd":"info"} (the client account: channel, clientChannel, claims), {"id":N,"cmd":"quit"}.
'use strict'
const readline = require('readline')
// sodium-native (an optional dependency with a native build) is not installed here, so sodium-universal is
// sodium-javascript, whose sodium_malloc gives a Uint8Array: the server's 'ED' + key.toString('hex') is then not hex.
// sodium-native gives a Buffer; so does this (the server's only use is that key).
require('sodium-javascript').sodium_malloc = (n) => Buffer.alloc(n)
const PluginXrpAsymServer = require('ilp-plugin-xrp-asym-server')
const StoreMemory = require('ilp-store-memory')
const IlpPacket = require('ilp-packet')
const ILDCP = require('ilp-protocol-ildcp')
const { createConnection } = require('ilp-protocol-stream')
const { serveSpsp, getJson } = require('./stream_common')

const cfg = JSON.parse(process.argv[2])
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const say = (level) => (...a) => console.error(level, ...a.map(x => typeof x === 'string' ? x : JSON.stringify(x)))
const log = { debug () {}, trace () {}, info: say('info'), warn: say('warn'), error: say('error') }

async function main () {
  const hostInfo = { clientAddress: cfg.clientAddress, assetCode: 'XRP', assetScale: cfg.currencyScale }
  const plugin = new PluginXrpAsymServer({
    xrpServer: cfg.xrpServer,
    secret: cfg.secret,
    address: cfg.address,
    currencyScale: cfg.currencyScale,
    port: cfg.port,
    debugHostIldcpInfo: hostInfo,
    _store: new StoreMemory(),
    log,
    ...(cfg.opts || {})
  })
  plugin.registerDataHandler(async () => { throw new Error('this host routes nothing') })
  plugin.registerMoneyHandler(async (amount) => out({ event: 'money', amount: amount.toString() }))
  await plugin.connect()
  plugin.deregisterDataHandler()
  out({ event: 'connected' })
  // what ilp-connector does for the host: the STREAM sender's IL-DCP is answered here (the server routes only to its
  // clients: its _sendPrepare refuses peer.config), every other packet goes through the server plugin
  const streamPlugin = Object.create(plugin)
  streamPlugin.sendData = async (data) => {
    if (data[0] === IlpPacket.Type.TYPE_ILP_PREPARE && IlpPacket.deserializeIlpPrepare(data).destination === 'peer.config') {
      return ILDCP.serializeIldcpResponse(hostInfo)
    }
    return plugin.sendData(data)
  }
  streamPlugin.disconnect = async () => {} // connection.end() disconnects its plugin: the host stays up
  streamPlugin.registerDataHandler = (handler) => plugin.registerDataHandler(handler)
  if (cfg.spspPort) await serveSpsp(streamPlugin, cfg.spspPort, out)
  const commands = readline.createInterface({ input: process.stdin })
  for await (const line of commands) {
    const c = JSON.parse(line)
    try {
      if (c.cmd === 'stream') {
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
      } else if (c.cmd === 'info') {
        const hasClientChannel = (a) => { try { return Boolean(a.getClientChannel()) } catch (e) { return false } }
        const accounts = [...plugin._accounts.values()].filter(hasClientChannel)
        const a = accounts[0]
        out({ event: 'done', id: c.id, states: [...plugin._accounts.values()].map((x) => x.getStateString()), account: a && a.getAccount(), channel: a && a.getChannel(),
              clientChannel: a && a.getClientChannel(), outgoingBalance: a && a.getOutgoingBalance().toString(),
              incomingClaim: a && a.getIncomingClaim() })
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
