"""The release pages, checked as files and in a real browser (headless Chromium over the DevTools Protocol).

The browser tests serve a copy of the releases folder over HTTP, open a page,
and fail on any console error or uncaught exception and on any request outside
the page's own folder. They click from a transfer to its evidence, search a
table, and save screenshots (PNG) in the test's tmp folder; set
ARMSLEDGER_SCREENSHOTS=DIR to keep a copy.

Chromium is Debian's `chromium` (`make test` installs it). Without it the
browser tests are skipped, except in CI (CI set), where they fail.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from armsledger import site

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
    "--remote-debugging-port=0", "--remote-allow-origins=*",
]
XSS = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'


def rows(release: Path, table: str) -> list[dict]:
    return pq.read_table(release / f"{table}.parquet").to_pylist()


# --- a small DevTools Protocol client ---------------------------------------------------------


class Browser:
    """Headless Chromium driven over the DevTools Protocol (one page, flat session)."""

    def __init__(self, user_data_dir: Path) -> None:
        from websockets.sync.client import connect

        self.proc = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        port_file = user_data_dir / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self.ws = connect(f"ws://127.0.0.1:{port}{path}", max_size=None, open_timeout=20)
        self.next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False})

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout
        while True:
            reply = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.call(method, params, session=self.session)

    def wait_for(self, method: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        seen = len(self.events)
        while True:
            for event in self.events[seen:]:
                if event["method"] == method:
                    return event
            seen = len(self.events)
            try:
                message = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            except TimeoutError:
                raise TimeoutError(f"no {method} within {timeout} s") from None
            if "method" in message:
                self.events.append(message)

    def open(self, url: str) -> None:
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")
        self.js("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click (pressed and released) at the middle of the element."""
        box = self.js(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e) return null; e.scrollIntoView({{block: "center"}}); const r = e.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
        assert box, f"nothing matches {selector}"
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent",
                      {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1})
        self.js("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def type_into(self, selector: str, text: str) -> None:
        self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", {"text": text})

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            height = self.js("document.documentElement.scrollHeight")
            params |= {"captureBeyondViewport": True, "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}}
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", params)["data"]))
        keep = os.environ.get("ARMSLEDGER_SCREENSHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep) / path.name)
        return path

    def console_errors(self) -> list[str]:
        errors = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert", "warning"):
                errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params.get("args", [])))
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                errors.append(f"{params['entry'].get('source')}: {params['entry']['text']} {params['entry'].get('url', '')}")
        return errors

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed, and CI is set: `make test` installs Debian's chromium")
        pytest.skip("chromium is not installed (apt-get install chromium, or run `make test`)")
    instance = Browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield instance
    finally:
        instance.close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        self.server.requested.append(self.path)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def site_root(seed_release, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the seed releases folder, plus a second folder with a release whose texts attack the page."""
    root = tmp_path_factory.mktemp("site")
    shutil.copytree(seed_release.releases, root / "releases")
    hostile_release(seed_release.release, root / "hostile")
    return root


@pytest.fixture(scope="module")
def server(site_root: Path) -> Iterator[tuple[str, list[str]]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site_root)))
    httpd.requested = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", httpd.requested  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()


def hostile_release(seed: Path, releases_dir: Path) -> Path:
    """The seed release's tables with markup and script in the texts, published as the next release
    in a copy of the seed's releases folder."""
    import datetime

    from armsledger.publish import publish_release
    from armsledger.releases import load

    shutil.copytree(seed.parent, releases_dir)

    tables = {name: load(name, version=seed.name, source=seed.parent) for name in
              ("documents", "actors", "mentions", "events", "transfers", "citations")}
    docs = tables["documents"]
    docs.loc[0, "title"] = XSS
    docs.loc[0, "publisher"] = '"><svg onload="window.__pwned=3">'
    docs.loc[0, "url"] = "javascript:window.__pwned=4"
    first = tables["transfers"].iloc[0]
    actors = tables["actors"]
    actors.loc[actors["actor_id"] == first["supplier_id"], "name"] = "</script><script>window.__pwned=5</script>"
    transfers = tables["transfers"]
    transfers.loc[0, "item"] = "<b>shells</b> & </textarea><script>window.__pwned=6</script>"
    validation = json.loads((seed / "validation.json").read_text())
    validation["results"][0]["description"] = "<script>window.__pwned=7</script>"
    result = publish_release(tables, releases_dir, validation=validation, rejected=[{"path": "<b>x</b>.txt", "reason": XSS}],
                             today=datetime.date(2030, 1, 1), check_package=False)
    assert result.published
    return result.path


# --- the files ------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_release_page_is_in_the_release_and_its_checksums(seed_release) -> None:
    release = seed_release.release
    page = release / "index.html"
    assert page.is_file()
    sums = (release / "SHA256SUMS").read_text()
    assert f"{hashlib.sha256(page.read_bytes()).hexdigest()}  index.html\n" in sums
    done = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=release, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    # The page is a function of the release's files: rebuilding it gives the same bytes.
    assert site.release_page_bytes(seed_release.version, release) == page.read_bytes()
    index = (seed_release.releases / "index.html").read_text()
    assert f'href="{seed_release.version}/index.html"' in index


@pytest.mark.slow
def test_the_release_page_shows_everything_and_fetches_nothing(seed_release) -> None:
    text = (seed_release.release / "index.html").read_text()
    for section in ("overview", "downloads", "timeline", "transfers", "tables", "evidence", "validation", "codebook"):
        assert f'<section id="{section}">' in text
    # No request can leave the page: nothing is loaded by URL, and the policy forbids it anyway.
    assert "default-src &#x27;none&#x27;" in text
    for marker in ("src=", "@import", "url(", "<link rel=\"stylesheet\"", "fetch(", "XMLHttpRequest"):
        assert marker not in text, marker
    # Downloads: every table file with its size and SHA-256.
    for name in ("transfers.parquet", "transfers.csv", "datapackage.json"):
        data = (seed_release.release / name).read_bytes()
        assert f'href="{name}"' in text and hashlib.sha256(data).hexdigest() in text
    # Each sentence shown as evidence names the document it comes from.
    names = {f"<strong>{html.escape(row['title'])}</strong>" if row["title"]
             else f"<strong>Untitled</strong> <code>{html.escape(row['path'])}</code>"
             for row in rows(seed_release.release, "documents")}
    evidence = text[text.index('<section id="evidence">'):text.index('<section id="validation">')]
    cited = evidence.split('<div class="doc">')[1:]
    assert cited and "not in this release" not in evidence
    assert all(any(block.startswith(name) for name in names) for block in cited)
    # Codebook and validation come from the release's own files.
    package = json.loads((seed_release.release / "datapackage.json").read_text())
    for field in package["resources"][4]["schema"]["fields"]:
        assert f"<code>{field['name']}</code>" in text
    validation = json.loads((seed_release.release / "validation.json").read_text())
    assert text.count('<td><span class="badge pass">passed</span></td>') == sum(r["success"] is True for r in validation["results"])
    # Two plots.
    assert text.count("<svg") >= 2 and 'class="edge"' in text and 'class="mark"' in text


@pytest.mark.slow
def test_a_later_release_shows_what_changed(seed_release, tmp_path: Path) -> None:
    path = hostile_release(seed_release.release, tmp_path / "releases")
    text = (path / "index.html").read_text()
    assert f'Changes since release <a href="../{seed_release.version}/index.html">{seed_release.version}</a>' in text
    # One document, one actor and one transfer were changed; nothing was added or removed.
    for table, changed in (("documents", 1), ("actors", 1), ("transfers", 1), ("events", 0)):
        n = len(rows(path, table))
        assert (f'<tr><td>{table}</td><td class="num">{n:,}</td><td class="num">0</td><td class="num">0</td>'
                f'<td class="num">{changed}</td></tr>') in text
    index = (tmp_path / "releases" / "index.html").read_text()
    assert index.index(f'href="{path.name}/index.html"') < index.index(f'href="{seed_release.version}/index.html"')


@pytest.mark.slow
def test_texts_are_escaped_everywhere(seed_release, tmp_path: Path) -> None:
    path = hostile_release(seed_release.release, tmp_path / "releases")
    text = (path / "index.html").read_text()
    assert "<script>window.__pwned" not in text and "<img src=x" not in text and "<svg onload" not in text
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in text
    assert 'href="javascript:' not in text
    # Inside the JSON for the previews, no < survives either.
    data = text.split('<script type="application/json" id="preview-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and "window.__pwned=5" in data


def test_highlight_marks_the_cited_words_and_escapes_the_rest() -> None:
    sentence = 'Russia is expected to send <b>shells</b> to North Korea, "reportedly".'
    start = sentence.index("<b>shells</b>")
    html_text = site.highlight_sentence(sentence, [(start, start + 13, "hl-item"), (0, 6, "hl-actor"),
                                                   (start + 3, start + 9, "hl-hedge")])
    assert html_text.startswith('<mark class="hl-actor">Russia</mark> is expected')
    assert '<mark class="hl-item">&lt;b&gt;shells&lt;/b&gt;</mark>' in html_text
    assert "hl-hedge" not in html_text  # overlaps the item, which takes precedence


@pytest.mark.parametrize("sentence", [
    "Kim Jong Un met Putin; KIM JONG UN left, kim jong un returned.",
    "Kimchi is not Kim, nor is Kim_Jong or 2Kim, but (Kim) and Kim's are.",
    "aaaa aa aaa", "KN-23 and kn-23s and the KN-23.",
    "Shoigu visited Pyongyang \u2014 \u201cKim\u201d said caf\u00e9s, not cafe\u0301s \u00e0 la Kim\u00e9.",
    "\u041a\u0438\u043c met Kim in \u0420\u043e\u0441\u0441\u0438\u044f; Kim\u0436 is one word.",
    "\u0130stanbul is Istanbul to a case-blind match.",
    "\u0131stanbul is Istanbul to a case-blind match; \u017fhells are shells.",
    "Kelvin \u212a: kelvin, KELVIN.", "\u1e9e and SS and \u00df: ss.",
])
@pytest.mark.parametrize("phrase", ["Kim", "kim jong un", "aa", "KN-23", "cafe", "(Kim)", "Istanbul", "shells",
                                    "k:", "ss", "Kim's", "\u041a\u0438\u043c", "caf\u00e9"])
def test_phrase_highlights_match_the_case_blind_whole_word_pattern(sentence: str, phrase: str) -> None:
    expected = [(m.start(), m.end(), "hl") for m in site._phrase_pattern(phrase).finditer(sentence)]
    assert site._phrase_spans(sentence, f" {phrase} ", "hl") == expected


def test_only_web_urls_become_links() -> None:
    assert site.safe_url("https://example.org/a?b=1") == "https://example.org/a?b=1"
    for bad in ("javascript:alert(1)", "data:text/html,x", "//evil.example", "http://x\" onmouseover=\"y", None, 3):
        assert site.safe_url(bad) is None


# --- in the browser ---------------------------------------------------------------------------


def assert_clean(browser: Browser, allowed_prefix: str) -> None:
    assert browser.console_errors() == []
    outside = [u for u in browser.requests() if not (u.startswith(allowed_prefix) or u.startswith("data:"))]
    assert outside == [], f"requests outside {allowed_prefix}: {outside}"


@pytest.mark.slow
def test_release_page_in_chromium(browser: Browser, server, seed_release, tmp_path: Path) -> None:
    base, _ = server
    version = seed_release.version
    folder = f"{base}/releases/{version}/"
    browser.open(folder + "index.html")
    assert browser.js("document.title") == f"armsledger release {version}"
    # Both plots are drawn: one timeline mark per dated event, one edge per transfer.
    events = rows(seed_release.release, "events")
    transfers = rows(seed_release.release, "transfers")
    assert browser.js("document.querySelectorAll('#timeline svg rect.mark').length") == sum(
        1 for e in events if e["date_start"] is not None)
    assert browser.js("document.querySelectorAll('#transfers svg path.edge').length") == len(transfers)
    assert browser.js("document.querySelector('#transfers svg').getBoundingClientRect().height") > 100
    browser.screenshot(tmp_path / "release-top.png")

    # The transfers preview lists every transfer; click through to the evidence of the first.
    assert browser.js("document.querySelectorAll('#panel-transfers tbody tr').length") == len(transfers)
    first = browser.js("document.querySelector('#panel-transfers tbody tr').id").removeprefix("row-transfers-")
    assert browser.js(f"document.getElementById('ev-{first}').checkVisibility()") is False
    browser.click("#panel-transfers tbody tr a.ev-link")
    assert browser.js("location.hash") == f"#evidence/{first}"
    assert browser.js(f"document.getElementById('ev-{first}').checkVisibility()") is True
    shown = browser.js(f"document.getElementById('ev-{first}').innerText")
    cites = [c for c in rows(seed_release.release, "citations") if c["target_id"] == first]
    assert cites and all(" ".join(c["sentence"].split()) in " ".join(shown.split()) for c in cites)
    marked = browser.js(f"[...document.querySelectorAll('#ev-{first} mark')].map(m => m.textContent)")
    assert marked, "the cited words are highlighted"
    docs = {d["doc_id"]: d for d in rows(seed_release.release, "documents")}
    for c in cites:
        doc = docs[c["doc_id"]]
        assert (doc["title"] or doc["path"]) in shown
        if doc["publisher"]:
            assert doc["publisher"] in shown
    # Only the chosen evidence is shown.
    assert browser.js("[...document.querySelectorAll('.evidence')].filter(e => e.checkVisibility()).length") == 1
    browser.screenshot(tmp_path / "release-evidence.png")

    # From the graph to the row: a click on an edge shows and marks the transfer's row.
    browser.click("#transfers svg a")
    flashed = browser.js("document.querySelector('tr.flash') && document.querySelector('tr.flash').id")
    assert flashed and flashed.startswith("row-transfers-")

    # Search: every word must match; an impossible word leaves no row.
    browser.click('.tabs button[data-table="events"]')
    assert browser.js("document.getElementById('panel-events').checkVisibility()") is True
    total = len(events)
    assert browser.js("document.querySelectorAll('#panel-events tbody tr').length") == total
    some_type = events[0]["event_type"]
    browser.type_into("#panel-events input[type=search]", some_type)
    expected = sum(1 for e in events if some_type in json.dumps(e, default=str).lower())
    assert browser.js("document.querySelectorAll('#panel-events tbody tr').length") == expected
    browser.type_into("#panel-events input[type=search]", " zzqqxx")
    assert browser.js("document.querySelectorAll('#panel-events tbody tr').length") == 0
    assert "0 of" in browser.js("document.querySelector('#panel-events .status').textContent")

    browser.screenshot(tmp_path / "release-full.png", full_page=True)
    assert_clean(browser, folder)
    for name in ("release-top.png", "release-evidence.png", "release-full.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_releases_index_in_chromium(browser: Browser, server, seed_release, tmp_path: Path) -> None:
    base, _ = server
    browser.open(f"{base}/releases/index.html")
    links = browser.js("[...document.querySelectorAll('main a')].map(a => a.getAttribute('href'))")
    assert f"{seed_release.version}/index.html" in links
    browser.screenshot(tmp_path / "releases-index.png")
    assert_clean(browser, f"{base}/releases/")


@pytest.mark.slow
def test_hostile_texts_stay_inert_in_chromium(browser: Browser, server, tmp_path: Path) -> None:
    base, _ = server
    folder = f"{base}/hostile/2030.01.01/"
    browser.open(folder + "index.html")
    browser.click("#panel-transfers tbody tr a.ev-link")
    browser.click('.tabs button[data-table="documents"]')
    assert browser.js("typeof window.__pwned") == "undefined"
    assert XSS in browser.js("document.body.innerText")
    assert_clean(browser, folder)
    browser.screenshot(tmp_path / "hostile.png")
