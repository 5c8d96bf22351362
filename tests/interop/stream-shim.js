'use strict'
/**
 * ilp-protocol-stream 2.7.1, patched to run on Node >= 18.
 *
 * Use this module instead of `require('ilp-protocol-stream')`; it returns the
 * same exports.
 *
 * The problem
 * -----------
 * `DataAndMoneyStream` (dist/src/stream.js) extends `stream.Duplex` and keeps
 * its own open/closed flag in a plain property: the constructor does
 * `this.closed = false`, and `_final`/`_destroy` do `this.closed = true`.
 * Node 18 added a read-only `closed` getter to `Readable.prototype` (and
 * `Writable.prototype`), which reports `_readableState.closed`. The compiled
 * module runs in strict mode, so assigning through an inherited getter that
 * has no setter throws:
 *
 *   TypeError: Cannot set property closed of #<Readable> which has only a getter
 *
 * and every STREAM connection dies the moment its first stream is created.
 *
 * The fix
 * -------
 * Give `DataAndMoneyStream.prototype` its own `closed` accessor, which shadows
 * Node's getter for this class only. It stores the library's flag on the
 * instance under a private symbol, so the library reads back exactly what it
 * wrote (its `closed` means "no more money or data may be sent", which is not
 * the same as Node's "the 'close' event has been emitted"). Node's own stream
 * machinery reads `_readableState.closed` / `_writableState.closed`, never the
 * `closed` property of a Duplex, so it is unaffected. Nothing else in the
 * package assigns to a getter-only stream property (checked against 2.7.1;
 * `Connection.closed` is on an EventEmitter and is fine).
 *
 * On Node < 18 there is no inherited getter; the accessor is then merely
 * redundant, so the shim is safe to load everywhere.
 */

const stream = require('ilp-protocol-stream')
const { DataAndMoneyStream } = require('ilp-protocol-stream/dist/src/stream')

const CLOSED = Symbol('ilp-protocol-stream closed flag')

if (!Object.prototype.hasOwnProperty.call(DataAndMoneyStream.prototype, 'closed')) {
  Object.defineProperty(DataAndMoneyStream.prototype, 'closed', {
    configurable: true,
    enumerable: false,
    get () {
      return this[CLOSED] === true
    },
    set (value) {
      this[CLOSED] = Boolean(value)
    }
  })
}

if (stream.DataAndMoneyStream !== DataAndMoneyStream) {
  // Both paths must name the one class the library instantiates.
  throw new Error('stream-shim: ilp-protocol-stream layout changed; re-check the shim')
}

module.exports = stream
