// Runs one ilp-plugin-ethereum 3.0.0-beta.20 (role client, on ilp-plugin-btp) for the interop tests.
// argv[2]: JSON {url, key, contractAddress, listener?: {port, secret}, server?: "btp+ws://...", opts?,
// fulfillment?: hex} (with a fulfillment, every ILP Prepare is answered with a Fulfill for it).
// stdout: one JSON event a line: {"event":"connected"}, {"event":"money","amount":"<gwei>"},
// {"event":"done","id":N} / {"event":"failed","id":N,"error":"..."} for each command.
// stdin: one JSON command a line: {"id":N,"cmd":"fund","wei":"..."} (fundOutgoingChannel),
// {"id":N,"cmd":"sendMoney","gwei":"..."}, {"id":N,"cmd":"requestClose"}, {"id":N,"cmd":"quit"}.
'use strict'
const readline = require('readline')
const { ethers } = require('ethers')
const BigNumber = require('bignumber.js')
const EthereumPlugin = require('ilp-plugin-ethereum')
const IlpPacket = require('ilp-packet')

const cfg = JSON.parse(process.argv[2])
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n')
const quiet = { debug () {}, trace () {}, info (...a) { console.error('info', ...a) }, warn (...a) { console.error('warn', ...a) }, error (...a) { console.error('error', ...a) } }

async function main () {
  const provider = new ethers.providers.JsonRpcProvider(cfg.url)
  const plugin = new EthereumPlugin({
    role: 'client',
    ethereumPrivateKey: cfg.key,
    ethereumProvider: provider,
    contractAddress: cfg.contractAddress,
    ...(cfg.listener ? { listener: cfg.listener } : { server: cfg.server }),
    ...(cfg.opts || {})
  }, { log: quiet })
  plugin.registerDataHandler(async (data) => {
    if (!cfg.fulfillment) throw new Error('no data expected')
    out({ event: 'prepare', amount: IlpPacket.deserializeIlpPrepare(data).amount })
    return IlpPacket.serializeIlpFulfill({ fulfillment: Buffer.from(cfg.fulfillment, 'hex'), data: Buffer.alloc(0) })
  })
  plugin.registerMoneyHandler(async (amount) => out({ event: 'money', amount: amount.toString() }))
  await plugin.connect()
  out({ event: 'connected' })
  const account = () => plugin._accounts.get('peer')
  const commands = readline.createInterface({ input: process.stdin })
  for await (const line of commands) {
    const c = JSON.parse(line)
    try {
      if (c.cmd === 'fund') await account().fundOutgoingChannel(new BigNumber(c.wei))
      else if (c.cmd === 'sendMoney') await plugin.sendMoney(c.gwei)
      else if (c.cmd === 'requestClose') await account().requestClose()
      else if (c.cmd === 'quit') { await plugin.disconnect(); out({ event: 'done', id: c.id }); process.exit(0) }
      out({ event: 'done', id: c.id })
    } catch (err) {
      out({ event: 'failed', id: c.id, error: String(err && err.stack || err) })
    }
  }
}

main().catch((err) => { console.error(err); process.exit(1) })
