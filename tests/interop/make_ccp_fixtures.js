#!/usr/bin/env node
'use strict'
// Prints the CCP byte fixtures of tests/unit/codec/fixtures/ccp/ as one JSON document, made by
// the reference implementation ilp-protocol-ccp 1.2.3 (pinned in package.json):
//
//   cd tests/interop && npm ci && cd -
//   node tests/interop/make_ccp_fixtures.js > tests/unit/codec/fixtures/ccp/ccp_fixtures.json
//
// Every case holds the values given to the serializer ("input"), the bytes it wrote ("hex"),
// and what its own deserializer reads back from those bytes ("decoded"). The two differ only
// where the serializer rewrites route prop flags (see normalizedFlags in the Python codec).
// Byte strings are hex; routing table ids are the UUID strings the package uses.
// The output is deterministic: the values are fixed and Date.now is pinned for the Prepares.

const assert = require('assert')
const ccp = require('ilp-protocol-ccp')
const ccpVersion = require('ilp-protocol-ccp/package.json').version
const IlpPacket = require('ilp-packet')

assert.strictEqual(ccpVersion, '1.2.3', 'expected ilp-protocol-ccp 1.2.3; run npm ci in tests/interop')

const NIL_UUID = '00000000-0000-0000-0000-000000000000'
const UUID_A = '3b9ea6a8-0d1e-4c2f-9a56-7e2b1f4c8d90'
const UUID_B = 'ffffffff-ffff-4fff-bfff-ffffffffffff'
const UINT32_MAX = 4294967295

// -- helpers --------------------------------------------------------------------------------

/** Deterministic bytes: a counter pattern, so fixtures need no RNG. */
function pattern (n, seed) {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = (seed * 31 + i * 7) & 0xff
  return b
}

function auth (seed) {
  return pattern(32, seed)
}

/** A prop as JSON (the fixture shape): value always as hex of its bytes. */
function propToJson (p) {
  const value = p.isUtf8 ? Buffer.from(p.value, 'utf8') : p.value
  return {
    isOptional: p.isOptional,
    isTransitive: p.isTransitive,
    isPartial: p.isPartial,
    id: p.id,
    isUtf8: p.isUtf8,
    valueHex: value.toString('hex')
  }
}

function routeToJson (r) {
  return { prefix: r.prefix, path: r.path, authHex: r.auth.toString('hex'), props: r.props.map(propToJson) }
}

function updateToJson (u) {
  return {
    routingTableId: u.routingTableId,
    currentEpochIndex: u.currentEpochIndex,
    fromEpochIndex: u.fromEpochIndex,
    toEpochIndex: u.toEpochIndex,
    holdDownTime: u.holdDownTime,
    speaker: u.speaker,
    newRoutes: u.newRoutes.map(routeToJson),
    withdrawnRoutes: u.withdrawnRoutes
  }
}

function controlToJson (c) {
  return {
    mode: c.mode,
    lastKnownRoutingTableId: c.lastKnownRoutingTableId,
    lastKnownEpoch: c.lastKnownEpoch,
    features: c.features
  }
}

function controlCase (name, description, input) {
  const bytes = ccp.serializeCcpRouteControlRequestPayload(input)
  const decoded = ccp.deserializeCcpRouteControlRequestPayload(bytes)
  return { name, description, input: controlToJson(input), decoded: controlToJson(decoded), hex: bytes.toString('hex') }
}

function updateCase (name, description, input) {
  const bytes = ccp.serializeCcpRouteUpdateRequestPayload(input)
  const decoded = ccp.deserializeCcpRouteUpdateRequestPayload(bytes)
  return { name, description, input: updateToJson(input), decoded: updateToJson(decoded), hex: bytes.toString('hex') }
}

function prop (isOptional, isTransitive, isPartial, isUtf8, id, value) {
  return { isOptional, isTransitive, isPartial, isUtf8, id, value: isUtf8 ? value : Buffer.from(value) }
}

// -- route control ------------------------------------------------------------------------------

const control = [
  controlCase('idle-nil', 'IDLE, nil routing table id, epoch 0, no features',
    { mode: ccp.Mode.MODE_IDLE, lastKnownRoutingTableId: NIL_UUID, lastKnownEpoch: 0, features: [] }),
  controlCase('sync-nil', 'SYNC, nil routing table id, epoch 0, no features (what a fresh connector sends)',
    { mode: ccp.Mode.MODE_SYNC, lastKnownRoutingTableId: NIL_UUID, lastKnownEpoch: 0, features: [] }),
  controlCase('sync-known', 'SYNC from a known table and epoch, no features',
    { mode: ccp.Mode.MODE_SYNC, lastKnownRoutingTableId: UUID_A, lastKnownEpoch: 52, features: [] }),
  controlCase('idle-features', 'IDLE, max epoch, two features (one non-ASCII UTF-8)',
    { mode: ccp.Mode.MODE_IDLE, lastKnownRoutingTableId: UUID_B, lastKnownEpoch: UINT32_MAX, features: ['foo', 'b\u00e4r \u2713'] }),
  controlCase('sync-features', 'SYNC with three features incl. the empty string',
    { mode: ccp.Mode.MODE_SYNC, lastKnownRoutingTableId: UUID_A, lastKnownEpoch: 128, features: ['a', '', 'lowercase-feature.v1'] }),
  controlCase('sync-many-features', 'SYNC with 300 features (count 0x012c) and one of 200 bytes (long-form length)',
    {
      mode: ccp.Mode.MODE_SYNC,
      lastKnownRoutingTableId: UUID_A,
      lastKnownEpoch: 65536,
      features: Array.from({ length: 299 }, (_, i) => 'f' + i).concat(['x'.repeat(200)])
    })
]

// -- route update ---------------------------------------------------------------------------------

const flagProps = []
for (let i = 0; i < 16; i++) {
  const isOptional = Boolean(i & 8)
  const isTransitive = Boolean(i & 4)
  const isPartial = Boolean(i & 2)
  const isUtf8 = Boolean(i & 1)
  flagProps.push(prop(isOptional, isTransitive, isPartial, isUtf8, i * 4097, isUtf8 ? 'v\u00e9' + i : [i, 0, 255]))
}

const update = [
  updateCase('empty', 'no new and no withdrawn routes, all-zero header',
    {
      routingTableId: NIL_UUID,
      currentEpochIndex: 0,
      fromEpochIndex: 0,
      toEpochIndex: 0,
      holdDownTime: 0,
      speaker: 'test.a',
      newRoutes: [],
      withdrawnRoutes: []
    }),
  updateCase('heartbeat', 'an empty update as ilp-connector sends it: epochs equal, hold-down 45000 ms',
    {
      routingTableId: UUID_A,
      currentEpochIndex: 7,
      fromEpochIndex: 7,
      toEpochIndex: 7,
      holdDownTime: 45000,
      speaker: 'g.connector.alice',
      newRoutes: [],
      withdrawnRoutes: []
    }),
  updateCase('new-routes', 'several new routes: single- and multi-hop paths, an empty path, one prop',
    {
      routingTableId: UUID_A,
      currentEpochIndex: 52,
      fromEpochIndex: 50,
      toEpochIndex: 52,
      holdDownTime: 30000,
      speaker: 'test.alice',
      newRoutes: [
        { prefix: 'test.alice', path: ['test.alice'], auth: auth(1), props: [] },
        { prefix: 'test.bob.child', path: ['test.alice', 'test.bob', 'test.bob.child'], auth: auth(2), props: [] },
        { prefix: 'g', path: [], auth: auth(3), props: [] },
        { prefix: 'test.carol', path: ['test.alice', 'test.carol'], auth: auth(4), props: [prop(true, true, false, true, 1, 'hello')] }
      ],
      withdrawnRoutes: []
    }),
  updateCase('withdrawn', 'withdrawn routes only',
    {
      routingTableId: UUID_B,
      currentEpochIndex: 1000,
      fromEpochIndex: 990,
      toEpochIndex: 1000,
      holdDownTime: 45000,
      speaker: 'test.bob',
      newRoutes: [],
      withdrawnRoutes: ['test.gone', 'test.gone.too', 'g']
    }),
  updateCase('new-and-withdrawn', 'new and withdrawn routes together, max UInt32 header fields',
    {
      routingTableId: UUID_B,
      currentEpochIndex: UINT32_MAX,
      fromEpochIndex: UINT32_MAX - 1,
      toEpochIndex: UINT32_MAX,
      holdDownTime: UINT32_MAX,
      speaker: 'private.x~y_z-0',
      newRoutes: [
        { prefix: 'private.x~y_z-0.a', path: ['private.x~y_z-0'], auth: auth(5), props: [] }
      ],
      withdrawnRoutes: ['private.old']
    }),
  updateCase('prop-flags', 'one route with 16 props: every combination of optional/transitive/partial/utf8 (the serializer rewrites some flags)',
    {
      routingTableId: UUID_A,
      currentEpochIndex: 3,
      fromEpochIndex: 2,
      toEpochIndex: 3,
      holdDownTime: 1000,
      speaker: 'test.flags',
      newRoutes: [
        { prefix: 'test.flags', path: ['test.flags'], auth: auth(6), props: flagProps },
        { prefix: 'test.flags.2', path: ['test.flags'], auth: auth(7), props: [prop(false, true, false, false, 65535, [])] }
      ],
      withdrawnRoutes: []
    }),
  updateCase('long-strings', 'long-form length prefixes: 1023-char speaker, 200-char prefix and hops, 128- and 300-byte prop values',
    {
      routingTableId: UUID_A,
      currentEpochIndex: 9,
      fromEpochIndex: 0,
      toEpochIndex: 9,
      holdDownTime: 45000,
      speaker: 'g.' + 's'.repeat(1021),
      newRoutes: [
        {
          prefix: 'g.' + 'p'.repeat(198),
          path: ['g.' + 'h'.repeat(198), 'g.short'],
          auth: auth(8),
          props: [
            prop(true, true, true, false, 2, pattern(128, 9)),
            prop(true, false, false, false, 3, pattern(300, 10)),
            prop(true, true, false, true, 4, '\u00fc'.repeat(100))
          ]
        }
      ],
      withdrawnRoutes: ['g.' + 'w'.repeat(300)]
    }),
  updateCase('long-lists', 'long lists: 130 new routes (count 0x0082), a 200-hop path, 300 withdrawn routes (count 0x012c), 130 props',
    {
      routingTableId: UUID_B,
      currentEpochIndex: 431,
      fromEpochIndex: 1,
      toEpochIndex: 431,
      holdDownTime: 45000,
      speaker: 'test.many',
      newRoutes: Array.from({ length: 130 }, (_, i) => ({
        prefix: 'test.r' + i,
        path: i === 0
          ? Array.from({ length: 200 }, (_, j) => 'test.h' + j)
          : ['test.many', 'test.r' + i],
        auth: auth(100 + i),
        props: i === 1
          ? Array.from({ length: 130 }, (_, j) => prop(true, true, false, false, j, [j]))
          : []
      })),
      withdrawnRoutes: Array.from({ length: 300 }, (_, i) => 'test.w' + i)
    })
]

// -- whole packets ----------------------------------------------------------------------------------

// Pin the clock so that the Prepares (expiresAt = now + the package's expiry) are reproducible.
const NOW = Date.UTC(2020, 0, 2, 3, 4, 5, 678)
const realNow = Date.now
Date.now = () => NOW
const controlPrepare = ccp.constructCcpRouteControlRequest(
  { mode: ccp.Mode.MODE_SYNC, lastKnownRoutingTableId: UUID_A, lastKnownEpoch: 52, features: [] })
const updatePrepare = ccp.constructCcpRouteUpdateRequest({
  routingTableId: UUID_A,
  currentEpochIndex: 7,
  fromEpochIndex: 7,
  toEpochIndex: 7,
  holdDownTime: 45000,
  speaker: 'g.connector.alice',
  newRoutes: [],
  withdrawnRoutes: []
})
Date.now = realNow

function prepareToJson (name, p) {
  return {
    name,
    amount: p.amount,
    expiresAt: p.expiresAt.toISOString(),
    expiryMs: p.expiresAt.getTime() - NOW,
    executionConditionHex: p.executionCondition.toString('hex'),
    destination: p.destination,
    dataHex: p.data.toString('hex'),
    hex: IlpPacket.serializeIlpPrepare(p).toString('hex')
  }
}

const fixtures = {
  generator: 'tests/interop/make_ccp_fixtures.js',
  package: 'ilp-protocol-ccp@' + ccpVersion,
  now: new Date(NOW).toISOString(),
  control,
  update,
  prepares: [
    prepareToJson('control', controlPrepare),
    prepareToJson('update', updatePrepare)
  ],
  response: {
    fulfillmentHex: ccp.constructCcpResponse().fulfillment.toString('hex'),
    dataHex: ccp.constructCcpResponse().data.toString('hex'),
    hex: ccp.serializeCcpResponse().toString('hex')
  }
}

// One case per line: readable diffs without spreading the long cases over thousands of lines.
function render (doc) {
  const lines = Object.entries(doc).map(([key, value]) => {
    const body = Array.isArray(value)
      ? '[\n' + value.map((item) => '  ' + JSON.stringify(item)).join(',\n') + '\n ]'
      : JSON.stringify(value)
    return ' ' + JSON.stringify(key) + ': ' + body
  })
  return '{\n' + lines.join(',\n') + '\n}\n'
}

process.stdout.write(render(fixtures))
