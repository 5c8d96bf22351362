#!/usr/bin/env node
'use strict'
/**
 * Run the JS reference connector (ilp-connector 23.0.2) from a config file
 * written with the same keys ilptx reads, so one config drives both.
 *
 * Usage:
 *   node run_reference_connector.js --config FILE.json
 *
 * FILE.json holds the reference connector's config keys (ilpAddress, backend,
 * spread, store, accounts.{id}.{relation, assetCode, assetScale, plugin,
 * options}, ...), exactly as CONNECTOR_* environment variables would.
 * (JSON is also valid YAML, so the same file can be given to ilptx.)
 *
 * One translation is made: ilp-plugin-btp 1.5.0 ignores `listener.host` and
 * would listen on every interface, so for each account whose
 * `options.listener` has a `host` and no `wsOpts`, this sets
 * `listener.wsOpts = {host, port}`, which the plugin hands to `ws`.
 * If `store` is unset it defaults to "memory" (the only store 23.0.2 ships).
 *
 * Prints one line `ready address=<ilpAddress>` on stdout once every account's
 * plugin has connected or the connector's initialConnectTimeout has passed
 * (the connector serves packets before that). SIGTERM and SIGINT shut it down
 * gracefully and exit 0, as the ilptx twistd service does.
 */

const fs = require('fs')

function main () {
  const args = process.argv.slice(2)
  const at = args.indexOf('--config')
  if (at === -1 || !args[at + 1]) {
    process.stderr.write('usage: node run_reference_connector.js --config FILE.json\n')
    process.exit(2)
  }
  const config = JSON.parse(fs.readFileSync(args[at + 1], 'utf8'))
  if (config.store === undefined) config.store = 'memory'
  for (const account of Object.values(config.accounts || {})) {
    const listener = account.options && account.options.listener
    if (listener && listener.host && !listener.wsOpts) {
      listener.wsOpts = { host: listener.host, port: listener.port }
    }
  }

  const { createApp } = require('ilp-connector')
  const connector = createApp(config)
  // listen() logs and swallows its own errors; it resolves when the accounts
  // have connected (or initialConnectTimeout passed).
  connector.listen().then(() => {
    process.stdout.write(`ready address=${config.ilpAddress}\n`)
  })

  let shuttingDown = false
  const stop = async signal => {
    if (shuttingDown) process.exit(1)
    shuttingDown = true
    process.stderr.write(`run_reference_connector: ${signal}, shutting down\n`)
    try {
      await connector.shutdown()
      process.exit(0)
    } catch (err) {
      process.stderr.write(`run_reference_connector: shutdown failed: ${err && err.stack}\n`)
      process.exit(1)
    }
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

main()
