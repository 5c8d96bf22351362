// Prints (stdout, JSON) what the JS side computes for the inputs in argv[2] (JSON {keys: [{secret, peer}],
// claims: [{privateKey, channel, drops}], channels: [{source, destination, sequence}]}):
// * keys: the channel key ilp-plugin-xrp-paychan 2.4.1 derives (its own code path: util.hmac of
//   ilp-plugin-xrp-paychan-shared 4.1.3 + tweetnacl's sign.keyPair.fromSeed, tag CHANNEL_KEYS of index.js);
// * claims: util.encodeClaim's bytes, the plugin's tweetnacl signature, and xrpl.js 4.6.0's
//   signPaymentChannelClaim / verifyPaymentChannelClaim over the same claim;
// * channels: util.computeChannelId and xrpl.js hashes.hashPaymentChannel.
// tests/test_xrp_js_vectors.py compares the Python side (ilptx_xrp_paychan.claims) with this output.
'use strict'
const nacl = require('tweetnacl')
const { util } = require('ilp-plugin-xrp-paychan-shared')
const xrpl = require('xrpl')

const CHANNEL_KEYS = 'ilp-plugin-xrp-paychan-channel-keys'
const input = JSON.parse(process.argv[2])

const keys = input.keys.map(({ secret, peer }) => {
  const pair = nacl.sign.keyPair.fromSeed(util.hmac(secret, CHANNEL_KEYS + peer))
  return { publicKey: 'ED' + Buffer.from(pair.publicKey).toString('hex').toUpperCase() }
})
const claims = input.claims.map(({ privateKey, publicKey, channel, drops }) => {
  const seed = Buffer.from(privateKey.slice(2), 'hex')
  const encoded = util.encodeClaim(drops, channel)
  const naclSignature = Buffer.from(nacl.sign.detached(encoded, nacl.sign.keyPair.fromSeed(seed).secretKey))
  const xrplSignature = xrpl.signPaymentChannelClaim(channel, xrpl.dropsToXrp(drops).toString(), privateKey)
  return {
    bytes: encoded.toString('hex'),
    naclSignature: naclSignature.toString('hex'),
    xrplSignature,
    xrplVerifies: xrpl.verifyPaymentChannelClaim(channel, xrpl.dropsToXrp(drops).toString(), xrplSignature, publicKey)
  }
})
const channels = input.channels.map(({ source, destination, sequence }) => ({
  plugin: util.computeChannelId(source, destination, sequence),
  xrpl: xrpl.hashes.hashPaymentChannel(source, destination, sequence)
}))
process.stdout.write(JSON.stringify({ keys, claims, channels }) + '\n')
