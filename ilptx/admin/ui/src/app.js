// The ilptx operator dashboard: one page on the admin API (see ilptx/admin/dashboard.py).
// The bearer token is asked once and kept in sessionStorage only (gone with the browser tab);
// every request sends it as `Authorization: Bearer`, the live stream included (fetch() reading
// server-sent events), so it never appears in a URL.
import { h, render } from 'preact'
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import htm from 'htm'
import uPlot from 'uplot'

const html = htm.bind(h)
const TOKEN_KEY = 'ilptx-admin-token'
const ROOT = new URL('../', document.baseURI) // the admin API (the page is at <root>/dashboard/)
const REFRESH_MS = 5000
const HISTORY = 300 // samples kept (one a second)

class AuthError extends Error {}

// -- amounts: decimal strings in base units, shown with the asset's scale ----------------------

/** `"1234"`, scale 3, `"USD"` → `"1.234 USD"` (exact: BigInt; trailing zeros dropped). */
export function formatAmount (value, scale, code) {
  if (value === null || value === undefined) return '—'
  if (value === 'Infinity' || value === '-Infinity') return 'no limit'
  let n = BigInt(value)
  const negative = n < 0n
  if (negative) n = -n
  const unit = 10n ** BigInt(scale)
  let fraction = (n % unit).toString().padStart(scale, '0').replace(/0+$/, '')
  fraction = fraction ? '.' + fraction : ''
  return `${negative ? '−' : ''}${(n / unit).toString()}${fraction} ${code}`
}

const toNumber = (value, scale) => Number(value) / 10 ** scale

// -- the admin API ----------------------------------------------------------------------------

function client (token) {
  const headers = token ? { Authorization: `Bearer ${token}` } : {}
  return async function api (method, path, body) {
    const init = { method, headers: { ...headers }, cache: 'no-store' }
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json'
      init.body = JSON.stringify(body)
    }
    const response = await fetch(new URL(path, ROOT), init)
    if (response.status === 401) throw new AuthError('the admin API refused the token (401)')
    if (!response.ok) {
      const text = (await response.text()).trim()
      throw new Error(`${method} /${path} failed: ${response.status} ${text || response.statusText}`)
    }
    return response.status === 204 ? null : response.json()
  }
}

/** Read the live server-sent events with fetch() (the token in a header); calls onEvent(name, data). */
async function readEvents (token, signal, onEvent) {
  const response = await fetch(new URL('dashboard/api/live', ROOT), {
    headers: token ? { Authorization: `Bearer ${token}` } : {}, cache: 'no-store', signal
  })
  if (response.status === 401) throw new AuthError('the admin API refused the token (401)')
  if (!response.ok) throw new Error(`live stream: ${response.status} ${(await response.text()).trim()}`)
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) throw new Error('live stream ended')
    buffer += value
    let end
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      let name = 'message'
      const data = []
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim()
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart())
      }
      if (data.length) onEvent(name, JSON.parse(data.join('\n')))
    }
  }
}

// -- live traffic: totals and rates from consecutive samples ---------------------------------

const sum = (counts, ...keys) => keys.reduce((total, key) => total + (counts?.[key] || 0), 0)

function rates (samples, id) {
  const [a, b] = samples.slice(-2)
  if (!a || !b || !a.accounts[id] || !b.accounts[id]) return null
  const seconds = (b.t - a.t) / 1000 || 1
  const per = (side, ...keys) => (sum(b.accounts[id][side], ...keys) - sum(a.accounts[id][side], ...keys)) / seconds
  return {
    inFulfilled: per('in', 'fulfilled'),
    inRejected: per('in', 'rejected', 'failed'),
    outFulfilled: per('out', 'fulfilled'),
    outRejected: per('out', 'rejected', 'failed')
  }
}

function totals (sample) {
  let fulfilled = 0; let rejected = 0
  for (const entry of Object.values(sample?.accounts || {})) {
    fulfilled += sum(entry.in, 'fulfilled')
    rejected += sum(entry.in, 'rejected', 'failed')
  }
  return { fulfilled, rejected }
}

// -- components -------------------------------------------------------------------------------

function Login ({ error, onToken }) {
  const [value, setValue] = useState('')
  const submit = (event) => { event.preventDefault(); onToken(value) }
  return html`<main class="login">
    <section aria-labelledby="login-title">
      <h1 id="login-title">ilptx connector dashboard</h1>
      <form onSubmit=${submit}>
        <label for="token">Admin API token (<code>adminApiToken</code>)</label>
        <input id="token" type="password" autocomplete="off" required value=${value}
               onInput=${(e) => setValue(e.currentTarget.value)} />
        <p class="base">Kept in this browser tab only (sessionStorage), sent as a header, never in a URL.</p>
        <button class="primary" type="submit">Sign in</button>
      </form>
      ${error && html`<p class="error" role="alert" id="login-error">${error}</p>`}
    </section>
  </main>`
}

/** A modal <dialog> asking to confirm; `busy` while the request runs, `error` stays inside it. */
function Confirm ({ title, children, confirmLabel, onConfirm, onClose }) {
  const ref = useRef()
  const [error, setError] = useState(null)
  const [busy, setBusy] = useState(false)
  useEffect(() => { ref.current.showModal() }, [])
  const confirm = async () => {
    setBusy(true); setError(null)
    try {
      await onConfirm()
      ref.current.close()
    } catch (e) {
      setError(e.message)
      setBusy(false)
    }
  }
  return html`<dialog ref=${ref} aria-labelledby="dialog-title" onClose=${onClose}>
    <h2 id="dialog-title">${title}</h2>
    ${children}
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <div class="row">
      <button class="primary" type="button" onClick=${confirm} disabled=${busy}>${confirmLabel}</button>
      <button type="button" onClick=${() => ref.current.close()}>Cancel</button>
    </div>
  </dialog>`
}

function AdjustBalance ({ account, api, onDone, onClose }) {
  const [diff, setDiff] = useState('')
  const valid = /^(0|-?[1-9][0-9]*)$/.test(diff)
  const { assetScale, assetCode } = account.info
  return html`<${Confirm} title=${`Adjust the balance of ${account.id}`} confirmLabel="Apply the change"
      onClose=${onClose}
      onConfirm=${async () => {
        if (!valid) throw new Error('the change must be a whole number of base units, e.g. -1000')
        const result = await api('POST', 'balance', { accountId: account.id, amountDiff: diff })
        onDone(`Balance of ${account.id} is now ${formatAmount(result.balance, assetScale, assetCode)}`)
      }}>
    <p>Records money moved outside the connector (POST /balance). Positive: the peer owes us more.</p>
    <label for="amount-diff">Change in base units (scale ${assetScale}: 1 ${assetCode} = ${'1' + '0'.repeat(assetScale)})</label>
    <input id="amount-diff" inputmode="numeric" autocomplete="off" value=${diff}
           aria-describedby="amount-preview" onInput=${(e) => setDiff(e.currentTarget.value.trim())} />
    <p id="amount-preview" aria-live="polite">${valid
      ? `${diff.startsWith('-') ? '' : '+'}${formatAmount(diff, assetScale, assetCode)}, from ${formatAmount(account.balance?.balance ?? '0', assetScale, assetCode)}`
      : 'Enter a whole number, e.g. 1000 or -1000.'}</p>
  </${Confirm}>`
}

function BalanceBar ({ entry, scale, code }) {
  if (!entry) return html`<span class="base">no balance kept</span>`
  const value = toNumber(entry.balance, scale)
  const low = entry.minimum === '-Infinity' ? Math.min(0, value) : toNumber(entry.minimum, scale)
  const high = entry.maximum === 'Infinity' ? Math.max(0, value) : toNumber(entry.maximum, scale)
  const label = `balance ${formatAmount(entry.balance, scale, code)}, minimum ${formatAmount(entry.minimum, scale, code)}, maximum ${formatAmount(entry.maximum, scale, code)}`
  return html`${high > low && html`<meter min=${low} max=${high} value=${value} aria-label=${label} title=${label}></meter>`}
    <span class="base">${formatAmount(entry.minimum, scale, code)} … ${formatAmount(entry.maximum, scale, code)}</span>`
}

function Info ({ value }) {
  if (value === null || typeof value !== 'object') return html`<span>${value === null ? '—' : String(value)}</span>`
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value)
  if (!entries.length) return html`<span>none</span>`
  return html`<dl class="info">${entries.map(([k, v]) => html`<dt>${k}</dt><dd><${Info} value=${v} /></dd>`)}</dl>`
}

function Accounts ({ data, samples, setDialog, api, notify }) {
  const latest = samples[samples.length - 1]
  return html`<section aria-labelledby="accounts-title" id="accounts">
    <h2 id="accounts-title">Accounts</h2>
    <table id="accounts-table">
      <caption>Per account: connection, balance against its limits, settlement and live traffic</caption>
      <thead><tr>
        <th scope="col">Account</th><th scope="col">Relation</th><th scope="col">Plugin</th>
        <th scope="col">Connected</th><th scope="col" class="num">Balance</th><th scope="col">Limits</th>
        <th scope="col" class="num">Settle threshold</th><th scope="col" class="num">In fulfilled/rejected per s</th>
        <th scope="col" class="num">Out fulfilled/rejected per s</th><th scope="col">Reject codes</th>
        <th scope="col">Actions</th>
      </tr></thead>
      <tbody>${data.accounts.map((account) => {
        const { info } = account
        const scale = info.assetScale; const code = info.assetCode
        const live = latest?.accounts[account.id]
        const balance = live?.balance ?? account.balance?.balance
        const r = rates(samples, account.id)
        const codes = Object.entries(live?.codes || {})
        return html`<tr data-account=${account.id}>
          <th scope="row" class="mono">${account.id}</th>
          <td>${info.relation}</td><td class="mono">${info.plugin}</td>
          <td><span class=${account.connected ? 'yes' : 'no'}>${account.connected ? 'yes' : 'no'}</span></td>
          <td class="num" data-balance=${balance ?? ''}>${balance === undefined || balance === null
            ? '—' : html`${formatAmount(balance, scale, code)}<span class="base">${balance} base units</span>`}</td>
          <td><${BalanceBar} entry=${account.balance && { ...account.balance, balance: balance ?? account.balance.balance }} scale=${scale} code=${code} /></td>
          <td class="num">${info.balance?.settleThreshold !== undefined
            ? formatAmount(String(info.balance.settleThreshold), scale, code) : '—'}</td>
          <td class="num">${r ? `${r.inFulfilled.toFixed(1)} / ${r.inRejected.toFixed(1)}` : '…'}</td>
          <td class="num">${r ? `${r.outFulfilled.toFixed(1)} / ${r.outRejected.toFixed(1)}` : '…'}</td>
          <td class="codes">${codes.length ? codes.map(([c, n]) => `${c} ×${n}`).join(', ') : 'none'}</td>
          <td><div class="row">
            <button type="button" disabled=${!account.balance} aria-label=${`Adjust the balance of ${account.id}`}
              onClick=${() => setDialog(html`<${AdjustBalance} account=${account} api=${api}
                onDone=${notify} onClose=${() => setDialog(null)} />`)}>Adjust…</button>
            <button type="button" class="danger" aria-label=${`Remove account ${account.id}`}
              onClick=${() => setDialog(html`<${Confirm} title=${`Remove account ${account.id}?`} confirmLabel="Remove"
                onClose=${() => setDialog(null)}
                onConfirm=${async () => { await api('DELETE', `accounts/${encodeURIComponent(account.id)}`); notify(`Account ${account.id} removed`) }}>
                <p>Its routes and plugin stop now; its balance stays in the store. An account of the
                config file comes back at the next start; one added here does not.</p></${Confirm}>`)}>Remove…</button>
          </div></td>
        </tr>${account.adminInfo && html`<tr><td colspan="11">
          <strong>Channel state of ${account.id}</strong> (the plugin's admin info)
          ${account.adminInfoError ? html`<p class="error">${account.adminInfoError}</p>` : html`<${Info} value=${account.channel} />`}
        </td></tr>`}`
      })}</tbody>
    </table>
  </section>`
}

const TEMPLATE = JSON.stringify({
  relation: 'child', plugin: 'btp', assetCode: 'USD', assetScale: 9,
  balance: { minimum: '-1000000', maximum: '1000000' },
  options: { listener: { port: 7790, secret: 'change me' } }
}, null, 2)

function AddAccount ({ api, setDialog, notify }) {
  const [id, setId] = useState('')
  const [settings, setSettings] = useState(TEMPLATE)
  const submit = (event) => {
    event.preventDefault()
    let parsed
    try { parsed = JSON.parse(settings) } catch (e) { notify(null, `The settings are not JSON: ${e.message}`); return }
    setDialog(html`<${Confirm} title=${`Add account ${id}?`} confirmLabel="Add the account" onClose=${() => setDialog(null)}
      onConfirm=${async () => {
        const result = await api('PUT', `accounts/${encodeURIComponent(id)}`, parsed)
        notify(`Account ${result.account} added (${result.connected ? 'connected' : 'not connected yet'})`)
      }}>
      <p>Starts its plugin now and keeps it in the store (it comes back after a restart).</p></${Confirm}>`)
  }
  return html`<section aria-labelledby="add-title">
    <h2 id="add-title">Add an account at run time</h2>
    <form onSubmit=${submit}>
      <label for="new-id">Account id</label>
      <input id="new-id" required pattern="[A-Za-z0-9._~-]+" value=${id} onInput=${(e) => setId(e.currentTarget.value)} />
      <label for="new-settings">Settings (an <code>accounts.ID</code> entry of the config, JSON)</label>
      <textarea id="new-settings" rows="9" value=${settings} onInput=${(e) => setSettings(e.currentTarget.value)}></textarea>
      <div class="row"><button type="submit">Add…</button></div>
    </form>
  </section>`
}

function Routes ({ routes }) {
  const entries = Object.entries(routes.routes)
  return html`<section aria-labelledby="routes-title">
    <h2 id="routes-title">Routing</h2>
    <p>CCP epoch <strong id="ccp-epoch">${routes.currentEpoch}</strong>${routes.routingTableId &&
      html`, routing table <span class="mono">${routes.routingTableId}</span>`}</p>
    <table id="routes-table">
      <caption>Routing table: ${entries.length} prefixes</caption>
      <thead><tr><th scope="col">Prefix</th><th scope="col">Next hop</th><th scope="col">Path</th><th scope="col">Source</th></tr></thead>
      <tbody>${entries.map(([prefix, route]) => html`<tr data-prefix=${prefix}>
        <td class="mono">${prefix}</td><td class="mono">${route.nextHop || '(this connector)'}</td>
        <td class="mono">${route.path || '—'}</td><td>${route.source}</td></tr>`)}</tbody>
    </table>
  </section>`
}

function Alerts ({ alerts, api, setDialog, notify }) {
  return html`<section aria-labelledby="alerts-title">
    <h2 id="alerts-title">Alerts (${alerts.length})</h2>
    ${alerts.length === 0 ? html`<p>No alerts.</p>` : html`<ul>${alerts.map((alert) => html`<li>
      <span class="mono">${alert.accountId}</span>: ${alert.message} (×${alert.count}, since ${alert.createdAt})
      <button type="button" aria-label=${`Dismiss alert ${alert.id}`} onClick=${() => setDialog(html`<${Confirm}
        title="Dismiss this alert?" confirmLabel="Dismiss" onClose=${() => setDialog(null)}
        onConfirm=${async () => { await api('DELETE', `alerts/${alert.id}`); notify(`Alert ${alert.id} dismissed`) }}>
        <p>${alert.message}</p></${Confirm}>`)}>Dismiss…</button></li>`)}</ul>`}
  </section>`
}

const precise = (u, values) => values.map((v) => +v.toPrecision(6))

function Chart ({ title, series, data }) {
  const ref = useRef()
  const plot = useRef()
  const key = series.map((s) => s.label).join('|')
  useEffect(() => {
    const width = () => Math.max(300, ref.current.clientWidth - 10)
    plot.current = new uPlot({ title, width: width(), height: 200, series: [{}, ...series], axes: [{}, { size: 80, values: precise }] },
      data, ref.current)
    const resize = () => plot.current.setSize({ width: width(), height: 200 })
    window.addEventListener('resize', resize)
    return () => { window.removeEventListener('resize', resize); plot.current.destroy() }
  }, [key])
  useEffect(() => { plot.current.setData(data) }, [data])
  return html`<figure class="chart" ref=${ref} aria-label=${title}></figure>`
}

const COLOURS = ['#1d4ed8', '#b91c1c', '#15803d', '#a16207', '#7e22ce', '#0e7490']

function Traffic ({ samples, accounts }) {
  const latest = samples[samples.length - 1]
  const now = totals(latest)
  const before = totals(samples[samples.length - 2])
  const seconds = samples.length > 1 ? (latest.t - samples[samples.length - 2].t) / 1000 : 1
  const xs = samples.slice(1).map((s) => s.t / 1000)
  const throughput = [xs, [], []]
  for (let i = 1; i < samples.length; i++) {
    const a = totals(samples[i - 1]); const b = totals(samples[i])
    const dt = (samples[i].t - samples[i - 1].t) / 1000 || 1
    throughput[1].push((b.fulfilled - a.fulfilled) / dt)
    throughput[2].push((b.rejected - a.rejected) / dt)
  }
  const withBalance = accounts.filter((a) => a.balance)
  const balances = [xs, ...withBalance.map((a) => samples.slice(1).map((s) =>
    s.accounts[a.id]?.balance == null ? null : toNumber(s.accounts[a.id].balance, a.info.assetScale)))]
  return html`<section aria-labelledby="traffic-title">
    <h2 id="traffic-title">Live traffic</h2>
    <p class="totals" aria-live="off">Prepares handled: <strong id="packets-total">${now.fulfilled + now.rejected}</strong>${' '}
      (fulfilled <span id="packets-fulfilled">${now.fulfilled}</span>, rejected <span id="packets-rejected">${now.rejected}</span>)
      · now <span id="packets-rate">${samples.length > 1 ? ((now.fulfilled + now.rejected - before.fulfilled - before.rejected) / seconds).toFixed(1) : '0'}</span> per second</p>
    <div class="charts">
      <${Chart} title="Prepares per second (all accounts)" data=${throughput}
        series=${[{ label: 'fulfilled/s', stroke: COLOURS[2], width: 2 }, { label: 'rejected/s', stroke: COLOURS[1], width: 2 }]} />
      <${Chart} title="Balance (asset units)" data=${balances}
        series=${withBalance.map((a, i) => ({ label: `${a.id} (${a.info.assetCode})`, stroke: COLOURS[i % COLOURS.length], width: 2 }))} />
    </div>
  </section>`
}

function Dashboard ({ token, onAuthFailed, onLogout }) {
  const api = useCallback(client(token), [token])
  const [data, setData] = useState(null)
  const [samples, setSamples] = useState([])
  const [live, setLive] = useState(false)
  const [dialog, setDialog] = useState(null)
  const [message, setMessage] = useState(null)
  const [error, setError] = useState(null)

  const load = useCallback(async () => {
    try {
      const [accounts, balance, routes, alerts] = await Promise.all([
        api('GET', 'accounts'), api('GET', 'balance'), api('GET', 'dashboard/api/routes'), api('GET', 'alerts')])
      const list = await Promise.all(Object.entries(accounts.accounts).map(async ([id, entry]) => {
        const account = { id, ...entry, balance: balance.accounts[id] }
        if (entry.adminInfo) {
          try { account.channel = (await api('GET', `accounts/${encodeURIComponent(id)}`)).info } catch (e) {
            if (e instanceof AuthError) throw e
            account.adminInfoError = e.message
          }
        }
        return account
      }))
      setData({ address: accounts.address, accounts: list, routes, alerts: alerts.alerts })
      setError(null)
    } catch (e) {
      if (e instanceof AuthError) onAuthFailed(e.message)
      else setError(e.message)
    }
  }, [api])

  useEffect(() => {
    load()
    const timer = setInterval(load, REFRESH_MS)
    return () => clearInterval(timer)
  }, [load])

  useEffect(() => { // the live stream, reconnecting every 2 s after a failure
    const abort = new AbortController()
    let timer
    const connect = () => readEvents(token, abort.signal, (name, value) => {
      setLive(true)
      if (name === 'history') setSamples(value.slice(-HISTORY))
      else if (name === 'sample') setSamples((old) => [...old.slice(1 - HISTORY), value])
    }).catch((e) => {
      setLive(false)
      if (abort.signal.aborted) return
      if (e instanceof AuthError) onAuthFailed(e.message)
      else timer = setTimeout(connect, 2000)
    })
    connect()
    return () => { abort.abort(); clearTimeout(timer) }
  }, [token])

  const notify = (text, problem) => {
    setMessage(text); if (problem) setError(problem)
    load()
  }

  return html`<a class="skip" href="#accounts">Skip to the accounts</a>
    <header>
      <h1>ilptx connector</h1>
      <span class="address" id="ilp-address">${data?.address}</span>
      <span class=${live ? 'live-on' : 'live-off'} role="status" id="live-state">${live ? '● live' : '○ live stream reconnecting…'}</span>
      <span class="spacer"></span>
      <button type="button" onClick=${onLogout}>Sign out</button>
    </header>
    <main>
      <div role="status" aria-live="polite" class="notice" id="notice">${message}</div>
      ${error && html`<p class="error" role="alert" id="error">${error}</p>`}
      ${data ? html`
        <${Accounts} data=${data} samples=${samples} setDialog=${setDialog} api=${api} notify=${notify} />
        <${Traffic} samples=${samples} accounts=${data.accounts} />
        <${Routes} routes=${data.routes} />
        <${Alerts} alerts=${data.alerts} api=${api} setDialog=${setDialog} notify=${notify} />
        <${AddAccount} api=${api} setDialog=${setDialog} notify=${notify} />` : html`<p>Loading…</p>`}
    </main>
    ${dialog}`
}

function App () {
  const [token, setToken] = useState(() => sessionStorage.getItem(TOKEN_KEY) ?? '')
  const [state, setState] = useState('checking') // checking | login | ok
  const [error, setError] = useState(null)

  const tryToken = async (candidate, entered) => {
    try {
      await client(candidate)('GET', 'accounts')
      if (candidate) sessionStorage.setItem(TOKEN_KEY, candidate)
      setToken(candidate); setError(null); setState('ok')
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY)
      setError(e instanceof AuthError ? (entered ? 'Wrong token: the admin API answered 401.' : null) : e.message)
      setState('login')
    }
  }
  useEffect(() => { tryToken(token, false) }, [])

  if (state === 'checking') return html`<p>Connecting to the admin API…</p>`
  if (state === 'login') return html`<${Login} error=${error} onToken=${(t) => tryToken(t, true)} />`
  return html`<${Dashboard} token=${token}
    onAuthFailed=${(message) => { sessionStorage.removeItem(TOKEN_KEY); setError(message); setState('login') }}
    onLogout=${() => { sessionStorage.removeItem(TOKEN_KEY); setToken(''); setError(null); setState('login') }} />`
}

render(html`<${App} />`, document.getElementById('app'))
