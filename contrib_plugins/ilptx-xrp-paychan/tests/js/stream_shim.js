// ilp-protocol-stream 2.7.1 assigns `this.closed` on its Duplex; Node >= 18 made Readable#closed a getter, so every
// new stream throws. Same fix as tests/interop/stream-shim.js of ilptx: an own accessor that shadows the getter.
'use strict'
const { DataAndMoneyStream } = require('ilp-protocol-stream/dist/src/stream')

if (!Object.prototype.hasOwnProperty.call(DataAndMoneyStream.prototype, 'closed')) {
  const CLOSED = Symbol('closed')
  Object.defineProperty(DataAndMoneyStream.prototype, 'closed', {
    configurable: true, get () { return this[CLOSED] === true }, set (value) { this[CLOSED] = Boolean(value) }
  })
}
