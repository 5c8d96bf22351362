"""The dashboard's server side (ilptx.admin.dashboard) through StubTreq: static files without the
token, data routes and the live stream behind it, route sources, live samples on a Clock."""

from __future__ import annotations

import json
import re

import pytest
import treq
from twisted.web.test.requesthelper import DummyRequest

from admin_harness import Node, result_of
from ilptx.admin.dashboard import STATIC_DIR, LiveTraffic, _EventStream

TOKEN = "dash-token"
STATIC = sorted(p.name for p in STATIC_DIR.iterdir())


def open_stream(node: Node, token=TOKEN):
    """GET /dashboard/api/live; :returns: (response, chunks received so far, a list)."""
    d = node.http.get("http://127.0.0.1:7780/dashboard/api/live",
                      headers={"Authorization": f"Bearer {token}"} if token else {})
    node.http.flush()
    response = result_of(d)
    chunks: list[bytes] = []
    treq.collect(response, chunks.append)
    node.http.flush()
    return response, chunks


def events(chunks) -> list[tuple[str, object]]:
    """Parse the server-sent events written so far: ``[(event name, JSON data)]``."""
    text = b"".join(chunks).decode()
    return [(m.group(1), json.loads(m.group(2))) for m in re.finditer(r"event: (\w+)\ndata: (.*)\n\n", text)]


def test_static_files_are_served_without_the_token():
    """The page and each built file answer 200 without the token, with their type and a CSP of 'self' only."""
    node = Node(token=TOKEN)
    assert {"index.html", "dashboard.js", "dashboard.css"} <= set(STATIC)
    page = node.request("GET", "/dashboard/")
    assert (page.code, page.content_type) == (200, "text/html; charset=utf-8")
    assert page.body == (STATIC_DIR / "index.html").read_bytes()
    csp = page.headers.getRawHeaders("content-security-policy")[0]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe" not in csp
    for name in STATIC:
        reply = node.request("GET", f"/dashboard/{name}")
        assert reply.code == 200 and reply.body == (STATIC_DIR / name).read_bytes(), name
    assert node.request("GET", "/dashboard/dashboard.js").content_type == "text/javascript; charset=utf-8"


def test_the_page_loads_nothing_from_another_origin():
    """index.html, the bundle and the stylesheet name no http(s) URL to load: the page works offline."""
    html = (STATIC_DIR / "index.html").read_text()
    assert re.findall(r'(?:src|href)="([^"]+)"', html) == ["favicon.svg", "dashboard.css", "dashboard.js"]
    css = (STATIC_DIR / "dashboard.css").read_text()
    assert "@import" not in css and "url(http" not in css
    js = (STATIC_DIR / "dashboard.js").read_text()
    assert not re.search(r"""import\s*\(?\s*["']https?:""", js) and "fetch(\"http" not in js


@pytest.mark.parametrize("path", ["/dashboard/api/routes", "/dashboard/api/live", "/dashboard/nope.js",
                                  "/dashboard/%61pi/routes", "/dashboard//api/routes", "/dashboard/index.html/x",
                                  "/dashboard/api/routes?x=/dashboard/"])
def test_data_routes_and_other_spellings_need_the_token(path):
    """Only the exact static paths are public: the data routes, the live stream and any other path are 401."""
    node = Node(token=TOKEN)
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        reply = node.request("GET", path, headers=headers)
        assert reply.code == 401, (path, headers)
    assert not node.api.dashboard.live.streams


def test_unknown_static_file_with_the_token_is_404():
    """A name the build did not write is 404 (nothing is read from disk at request time)."""
    node = Node(token=TOKEN)
    reply = node.request("GET", "/dashboard/api.py", token=TOKEN)
    assert (reply.code, reply.text) == (404, "no such dashboard file: api.py\n")
    reply = node.request("GET", "/dashboard/..%2Fapi.py", token=TOKEN)
    assert (reply.code, reply.text) == (404, "Not Found\n")


def test_routes_name_their_source():
    """api/routes is /routing's local table with source local or configured (static routes beat local ones)."""
    node = Node(token=TOKEN, routes=[{"targetPrefix": "test.far", "peerId": "bob"}])
    reply = node.request("GET", "/dashboard/api/routes", token=TOKEN)
    routing = node.request("GET", "/routing", token=TOKEN).json
    assert reply.code == 200
    body = reply.json
    assert body["currentEpoch"] == routing["currentEpoch"] and body["routingTableId"] == routing["routingTableId"]
    assert {p: {k: v for k, v in r.items() if k != "source"} for p, r in body["routes"].items()} == \
        routing["localRoutingTable"]
    assert {p: r["source"] for p, r in body["routes"].items()} == {
        "test.node": "local", "test.node.alice": "local", "test.node.bob": "local", "test.far": "configured"}


def test_routes_without_route_broadcasting():
    """With routeBroadcastEnabled false the static routes are still told apart from the local ones."""
    node = Node(routeBroadcastEnabled=False, routes=[{"targetPrefix": "test.far", "peerId": "bob"}])
    sources = {p: r["source"] for p, r in node.request("GET", "/dashboard/api/routes").json["routes"].items()}
    assert sources == {"test.node": "local", "test.node.alice": "local", "test.node.bob": "local",
                       "test.far": "configured"}


def test_live_stream_sends_history_then_a_sample_a_second():
    """The stream starts with the history, samples at once, then each second with the packet totals and balances."""
    node = Node(token=TOKEN)
    response, chunks = open_stream(node)
    assert response.code == 200
    assert response.headers.getRawHeaders("content-type") == ["text/event-stream; charset=utf-8"]
    assert response.headers.getRawHeaders("cache-control") == ["no-store"]
    first = events(chunks)
    assert [name for name, _ in first] == ["history", "sample"] and first[0][1] == []
    assert first[1][1]["accounts"] == {
        "alice": {"in": {}, "out": {}, "codes": {}, "balance": "0"},
        "bob": {"in": {}, "out": {}, "codes": {}, "balance": "0"}}
    assert first[1][1]["t"] == 1_700_000_000_000

    assert node.send(10).__class__.__name__ == "Fulfill"
    assert node.send(5, destination="test.nowhere").__class__.__name__ == "Reject"
    node.clock.advance(0.5)
    node.http.flush()
    assert len(events(chunks)) == 2  # not before the second is up
    node.clock.advance(0.5)
    node.http.flush()
    name, sample = events(chunks)[-1]
    assert name == "sample" and sample["t"] == 1_700_000_001_000
    assert sample["accounts"]["alice"] == {"in": {"fulfilled": 1, "failed": 1}, "out": {}, "codes": {"F02": 1},
                                           "balance": "10"}
    assert sample["accounts"]["bob"] == {"in": {}, "out": {"fulfilled": 1}, "codes": {}, "balance": "-10"}


def test_a_new_stream_gets_the_history_and_balances_match_post_balance():
    """A second stream's history holds the earlier samples; a POST /balance shows in the next sample."""
    node = Node(token=TOKEN)
    _, first = open_stream(node)
    node.clock.advance(1)
    assert node.request("POST", "/balance", {"accountId": "alice", "amountDiff": "-7"}, token=TOKEN).code == 200
    node.clock.advance(1)
    node.http.flush()
    _, second = open_stream(node)
    history = events(second)[0]
    assert history[0] == "history" and [s["t"] for s in history[1]] == [1_700_000_000_000 + i * 1000 for i in range(3)]
    assert [s["accounts"]["alice"]["balance"] for s in history[1]] == ["0", "0", "-7"]
    assert len(node.api.dashboard.live.streams) == 2


def test_account_without_balance_settings_has_no_balance_in_samples():
    """As in /balance, an account without balance settings shows balance null, not 0."""
    node = Node(accounts={"alice": {"relation": "child", "plugin": "mem", "assetCode": "USD", "assetScale": 9}})
    _, chunks = open_stream(node, token=None)
    assert events(chunks)[1][1]["accounts"] == {"alice": {"in": {}, "out": {}, "codes": {}, "balance": None}}


class Collecting:
    def __init__(self):
        self.samples = []

    def send(self, sample):
        self.samples.append(sample)


def test_sampling_runs_only_while_someone_watches():
    """The first subscriber starts the once-a-second sampling, the last one leaving stops it (no timer left)."""
    node = Node()
    live = LiveTraffic(node.api, node.clock)
    before = len(node.clock.getDelayedCalls())
    a, b = Collecting(), Collecting()
    live.subscribe(a)
    live.subscribe(b)
    node.clock.pump([1, 1, 1])
    assert (len(a.samples), len(b.samples)) == (4, 3)  # b came after the first sample
    live.unsubscribe(a)
    node.clock.advance(1)
    assert (len(a.samples), len(b.samples)) == (4, 4)
    live.unsubscribe(b)
    assert len(node.clock.getDelayedCalls()) == before
    node.clock.pump([1] * 10)
    assert len(live.history) == 5


def test_history_is_bounded():
    """Only the last `history` samples are kept."""
    node = Node()
    live = LiveTraffic(node.api, node.clock, history=3)
    live.subscribe(Collecting())
    node.clock.pump([1] * 10)
    assert [s["t"] for s in live.history] == [1_700_000_008_000, 1_700_000_009_000, 1_700_000_010_000]


def test_too_many_streams_is_503():
    """Past max_streams open streams a new one is 503 with a one-line reason, and nothing is subscribed."""
    node = Node(token=TOKEN)
    node.api.dashboard.live.max_streams = 2
    open_stream(node)
    open_stream(node)
    reply = node.request("GET", "/dashboard/api/live", token=TOKEN)
    assert (reply.code, reply.text) == (503, "too many live streams open (at most 2)\n")
    assert len(node.api.dashboard.live.streams) == 2


class PushRequest(DummyRequest):
    """A DummyRequest that keeps a push producer (DummyRequest's own loops on a pull producer)."""

    def registerProducer(self, producer, streaming):
        self.producer = (producer, streaming)


def test_a_stream_skips_samples_while_paused_and_leaves_when_finished():
    """A full connection (pauseProducing) skips samples instead of buffering them; a closed one unsubscribes."""
    node = Node()
    live = node.api.dashboard.live
    stream = _EventStream(live)
    request = PushRequest([b""])
    stream.render_GET(request)
    assert request.producer == (stream, True)
    assert request.written[0] == b"event: history\ndata: []\n\n" and len(request.written) == 2
    stream.pauseProducing()
    node.clock.pump([1, 1])
    assert len(request.written) == 2
    stream.resumeProducing()
    node.clock.advance(1)
    assert len(request.written) == 3 and request.written[2].startswith(b"event: sample\n")
    request.finish()
    assert not live.streams and not live._loop
