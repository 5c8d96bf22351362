// What both Node runners share: the ilp-protocol-stream fix below, an SPSP-served STREAM server, an SPSP GET.
// ilp-protocol-stream 2.7.1 assigns `this.closed` on its Duplex; Node >= 18 made Readable#closed a getter, so every
// new stream throws. Same fix as tests/interop/stream-shim.js of ilptx: an own accessor that shadows the getter.
'use strict'
const http = require('http')
const { createServer } = require('ilp-protocol-stream')
const { DataAndMoneyStream } = require('ilp-protocol-stream/dist/src/stream')

if (!Object.prototype.hasOwnProperty.call(DataAndMoneyStream.prototype, 'closed')) {
  const CLOSED = Symbol('closed')
  Object.defineProperty(DataAndMoneyStream.prototype, 'closed', {
    configurable: true, get () { return this[CLOSED] === true }, set (value) { this[CLOSED] = Boolean(value) }
  })
}

// A STREAM server on `plugin` with SPSP on 127.0.0.1:`port`; `out` gets {"event":"received","total"} per money
// event and {"event":"spsp","port"} once listening.
async function serveSpsp (plugin, port, out) {
  const server = await createServer({ plugin })
  let total = 0n
  server.on('connection', (connection) => {
    connection.on('stream', (stream) => {
      stream.setReceiveMax('100000000000000')
      stream.on('money', (amount) => {
        total += BigInt(amount)
        out({ event: 'received', total: total.toString() })
      })
    })
  })
  http.createServer((req, res) => {
    const { destinationAccount, sharedSecret } = server.generateAddressAndSecret()
    res.setHeader('Content-Type', 'application/spsp4+json')
    res.end(JSON.stringify({ destination_account: destinationAccount, shared_secret: sharedSecret.toString('base64') }))
  }).listen(port, '127.0.0.1', () => out({ event: 'spsp', port }))
}

// GET an SPSP endpoint: its JSON
function getJson (url) {
  return new Promise((resolve, reject) => {
    http.get(url, { headers: { accept: 'application/spsp4+json' } }, (res) => {
      let body = ''
      res.on('data', (c) => { body += c })
      res.on('end', () => { try { resolve(JSON.parse(body)) } catch (e) { reject(e) } })
    }).on('error', reject)
  })
}

module.exports = { serveSpsp, getJson }
