// Prints (stdout, JSON) the claim digests, signatures and BTP sub-protocol messages that
// ilp-plugin-ethereum 3.0.0-beta.20 itself produces for fixed keys and values, using the
// plugin's own code: build/utils/channel.js (createPaymentDigest, isValidClaimSignature) and
// EthereumAccount.prototype.{signClaim, sendClaim, fetchEthereumAddress, handleData}
// (build/account.js) called on a minimal `this`, with bitcoin-ts secp256k1 and ethers v4 as
// the plugin uses them. tests/test_eth_claims.py and test_eth_protocol.py compare the Python
// side with the committed output (../fixtures/js_vectors.json) and regenerate it when
// node_modules is present.
'use strict'
const { ethers } = require('ethers')
const { instantiateSecp256k1 } = require('bitcoin-ts')
const channel = require('ilp-plugin-ethereum/build/utils/channel')
const EthereumAccount = require('ilp-plugin-ethereum/build/account').default

const KEYS = [
  '0x4f3edf983ac636a65a842ce7c78d9aa706d3b113bce9c46f30d7d21715b23b1d',
  '0x6cbed15c793ce57650b9877cf6fa156fbef513c4e6134f022a85b1ffdd59b2a1',
  '0x' + '11'.repeat(32)
]
const CONTRACTS = ['0xe78A0F7E598Cc8b0Bb87894B0F60dD2a88d6a8Ab', '0x8ffdea290f4dcdc553841a432e56aa26c91ab777']
const CHANNELS = ['0x' + '00'.repeat(32), '0x' + 'ab'.repeat(32), '0x5b8a7c2f0c4c8f5e1d3b9a6e7f0a1b2c3d4e5f60718293a4b5c6d7e8f9000102']
const VALUES = ['0', '1', '1000000000', '123456789012345678', '115792089237316195423570985008687907853269984665640564039457584007913129639935']
const TOKEN = '0x396317F2EA46A1CEA58A58D44D2D902F1A257588'

const quietLog = { debug () {}, info () {}, error () {}, warn () {}, trace () {} }

async function main () {
  const secp256k1 = await instantiateSecp256k1()
  const claims = []
  let i = 0
  for (const key of KEYS) {
    const wallet = new ethers.Wallet(key)
    const fakeAccount = { master: { _secp256k1: secp256k1, _wallet: wallet } }
    for (const tokenContract of [undefined, TOKEN]) {
      for (const value of VALUES) {
        const contractAddress = CONTRACTS[i % CONTRACTS.length]
        const channelId = CHANNELS[i % CHANNELS.length]
        i++
        const state = { channelId, contractAddress, tokenContract, spent: { toString: () => value } }
        const signed = EthereumAccount.prototype.signClaim.call(fakeAccount, state)
        const claim = { channelId, signature: signed.signature, value, contractAddress, tokenContract }
        if (!channel.isValidClaimSignature(secp256k1, claim, wallet.address)) throw new Error('JS rejects its own claim')
        const digest = channel.createPaymentDigest(contractAddress, channelId, value, tokenContract)
        let sent
        await EthereumAccount.prototype.sendClaim.call({ sendMessage: async m => { sent = m } }, signed)
        const entry = sent.data.protocolData[0]
        claims.push({
          privateKey: key,
          address: wallet.address,
          contractAddress,
          channelId,
          value,
          tokenContract: tokenContract || null,
          // keccak256(encodePacked(...)): the plain digest, before the EIP-191 prefix
          digest: ethers.utils.solidityKeccak256(
            tokenContract ? ['address', 'bytes32', 'uint256', 'address'] : ['address', 'bytes32', 'uint256'],
            tokenContract ? [contractAddress, channelId, value, tokenContract] : [contractAddress, channelId, value]),
          prefixedDigest: '0x' + digest.toString('hex'),
          signature: signed.signature,
          // ethers v4's own message signing over the same digest (a second stack)
          ethersSignature: wallet.signMessage(ethers.utils.arrayify(
            ethers.utils.solidityKeccak256(
              tokenContract ? ['address', 'bytes32', 'uint256', 'address'] : ['address', 'bytes32', 'uint256'],
              tokenContract ? [contractAddress, channelId, value, tokenContract] : [contractAddress, channelId, value]))),
          btp: { protocolName: entry.protocolName, contentType: entry.contentType, data: entry.data.toString('utf8') }
        })
      }
    }
  }
  for (const c of claims) c.ethersSignature = await c.ethersSignature

  // info: what the plugin sends on connect and answers to a peer's info (account.js)
  const wallet = new ethers.Wallet(KEYS[0])
  let infoRequest
  await EthereumAccount.prototype.fetchEthereumAddress.call({
    account: {},
    master: { _wallet: wallet, _log: quietLog },
    sendMessage: async m => { infoRequest = m; return { protocolData: [] } },
    linkEthereumAddress () {}
  })
  const infoResponse = await EthereumAccount.prototype.handleData.call({
    master: { _wallet: wallet, _log: quietLog },
    linkEthereumAddress () {}
  }, { data: { protocolData: [{ protocolName: 'info', contentType: 2, data: Buffer.from(JSON.stringify({ ethereumAddress: new ethers.Wallet(KEYS[1]).address })) }] } })
  const asJson = e => ({ protocolName: e.protocolName, contentType: e.contentType, data: e.data.toString('utf8') })
  // a machinomy claim is answered with no protocol data (handleData returns [])
  const claimResponse = await EthereumAccount.prototype.handleData.call({
    master: { _wallet: wallet, _log: quietLog },
    account: { accountName: 'peer', incoming: { add: async () => {} } },
    validateClaim () { return () => {} },
    autoFundOutgoingChannel: async () => {}
  }, { data: { protocolData: [{ protocolName: 'machinomy', contentType: 2, data: Buffer.from(claims[0].btp.data) }] } })
  const out = {
    generator: 'ilp-plugin-ethereum@' + require('ilp-plugin-ethereum/package.json').version +
      ' ethers@' + require('ethers/package.json').version + ' bitcoin-ts@' + require('bitcoin-ts/package.json').version,
    claims,
    info: { address: wallet.address, request: asJson(infoRequest.data.protocolData[0]), response: infoResponse.map(asJson) },
    claimResponse
  }
  process.stdout.write(JSON.stringify(out, null, 1) + '\n')
}

main().catch(err => { console.error(err); process.exit(1) })
