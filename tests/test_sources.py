"""Fetching from sources.yaml, against a real HTTP server on 127.0.0.1 (no outside network).

The server keeps a log of every request with its headers, so the tests can say
exactly what was asked: conditional requests answered 304, and no article
downloaded twice.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from armsledger import sources
from armsledger.config import load_settings
from armsledger.ingest import SIDECAR_KEYS, ingest

ARTICLE = """<!doctype html>
<html lang="en"><head>
<meta charset="utf-8">
<title>{title}</title>
<meta property="og:title" content="{title}">
<meta property="article:published_time" content="{published}T08:00:00+09:00">
<meta name="author" content="Kim Min-ji">
</head><body>
<article>
<h1>{title}</h1>
<p>SEOUL — North Korea has shipped a further {n},000 containers of artillery shells to Russia since
August, South Korea's defence ministry said on Thursday, citing satellite imagery of the port of Rajin.</p>
<p>In return, Moscow is expected to supply Pyongyang with oil and food, according to officials in Seoul.
The Kremlin has denied that any weapons changed hands, and a spokesman called the reports groundless.</p>
<p>Analysts said the shipments, if confirmed, would breach United Nations sanctions that Russia voted for.</p>
</article>
</body></html>
"""

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>Test wire</title><link>{base}/</link>
{items}
</channel></rss>
"""
ITEM = """<item><title>{title}</title><link>{link}</link><guid isPermaLink="false">id-{n}</guid>
<pubDate>{date}</pubDate><description>{summary}</description><dc:creator>Wire desk</dc:creator></item>"""


@dataclass
class Resource:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    fail_first: int = 0  # answer 503 this many times first


@dataclass
class Site:
    resources: dict[str, Resource] = field(default_factory=dict)
    log: list[tuple[str, dict[str, str], int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self, path: str) -> list[tuple[dict[str, str], int]]:
        return [(headers, status) for p, headers, status in self.log if p == path]

    def article_requests(self) -> list[str]:
        return [p for p, _, status in self.log if p.startswith("/news/")]


class Handler(http.server.BaseHTTPRequestHandler):
    site: Site

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # noqa: N802
        site = self.site
        path = self.path.split("?")[0]
        headers = {k.lower(): v for k, v in self.headers.items()}
        with site.lock:
            resource = site.resources.get(path)
            if resource is None:
                status = 404
            elif resource.fail_first > 0:
                resource.fail_first -= 1
                status = 503
            elif "if-none-match" in headers:  # it wins over If-Modified-Since (RFC 9110, 13.1.3)
                status = 304 if headers["if-none-match"] == resource.etag else 200
            elif resource.last_modified and headers.get("if-modified-since") == resource.last_modified:
                status = 304
            else:
                status = 200
            site.log.append((path, headers, status))
        self.send_response(status)
        if status == 200:
            self.send_header("Content-Type", resource.content_type)
            self.send_header("Content-Length", str(len(resource.body)))
            if resource.etag:
                self.send_header("ETag", resource.etag)
            if resource.last_modified:
                self.send_header("Last-Modified", resource.last_modified)
            self.end_headers()
            self.wfile.write(resource.body)
        else:
            if status == 503:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    site = Site()
    handler = type("SiteHandler", (Handler,), {"site": site})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def article(n: int, published: str = "2024-03-14") -> Resource:
    title = f"Seoul says shell shipment {n} reached Russia"
    return Resource(ARTICLE.format(title=title, published=published, n=n).encode("utf-8"))


def feed(base: str, numbers: list[int], etag: str, modified: str = "Thu, 14 Mar 2024 02:00:00 GMT") -> Resource:
    items = "\n".join(
        ITEM.format(
            title=f"Seoul says shell shipment {n} reached Russia", link=f"{base}/news/story-{n}.html?utm_source=rss",
            n=n, date="Thu, 14 Mar 2024 01:00:00 +0000", summary="Shells for oil, officials in Seoul say.",
        )
        for n in numbers
    )
    items += "\n" + ITEM.format(  # an entry the source's `match` keeps out
        title="Weather: rain in Seoul", link=f"{base}/news/weather.html", n=99,
        date="Thu, 14 Mar 2024 01:00:00 +0000", summary="Umbrellas.",
    )
    return Resource(RSS.format(base=base, items=items).encode("utf-8"), "application/rss+xml", etag=etag,
                    last_modified=modified)


def setup_site(site: Site, base: str, numbers=(1, 2)) -> None:
    site.resources["/robots.txt"] = Resource(b"User-agent: *\nDisallow: /private/\n", "text/plain")
    site.resources["/feed.xml"] = feed(base, list(numbers), etag='"v1"')
    for n in numbers:
        site.resources[f"/news/story-{n}.html"] = article(n)
    site.resources["/news/weather.html"] = article(99)
    site.resources["/analysis/background.html"] = article(50, published="2023-09-13")
    site.resources["/private/secret.html"] = article(77)


CONFIG = sources.FetchConfig(min_interval_seconds=0.0, backoff_seconds=0.01, timeout_seconds=5, retries=2)


def make_sources(base: str, **overrides) -> sources.SourcesFile:
    source = sources.Source(
        name="wire", publisher="Test Wire", language="en", feeds=(f"{base}/feed.xml",),
        pages=(f"{base}/analysis/background.html", f"{base}/private/secret.html"),
        match=("Russia",), **overrides,
    )
    return sources.SourcesFile(config=CONFIG, sources=(source,))


def fetch(base: str, raw: Path, processed: Path) -> sources.FetchSummary:
    return sources.fetch_all(make_sources(base), raw, processed)


# --- parsing -----------------------------------------------------------------------------


def test_parse_rss_atom_and_rdf():
    rss = RSS.format(base="https://x.test", items=ITEM.format(
        title="A &amp; B", link="https://x.test/a", n=1, date="Tue, 27 Feb 2024 23:30:00 -0500", summary="s"))
    [entry] = sources.parse_feed(rss.encode(), "https://x.test/feed")
    assert (entry.title, entry.link, entry.published, entry.author, entry.guid) == (
        "A & B", "https://x.test/a", "2024-02-27", "Wire desk", "id-1")
    atom = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
    <entry><title>Atom one</title><link rel="alternate" href="/2024/one"/><link rel="edit" href="/edit/1"/>
    <id>tag:x,2024:1</id><published>2024-02-28T10:00:00Z</published><author><name>Jane Roe</name></author>
    <summary>Shells</summary></entry></feed>"""
    [entry] = sources.parse_feed(atom, "https://x.test/feed.atom")
    assert (entry.title, entry.link, entry.published, entry.author) == (
        "Atom one", "https://x.test/2024/one", "2024-02-28", "Jane Roe")
    rdf = b"""<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
    xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
    <item rdf:about="https://x.test/rdf-1"><title>RDF one</title><dc:date>2024-01-05</dc:date></item></rdf:RDF>"""
    [entry] = sources.parse_feed(rdf)
    assert (entry.link, entry.published) == ("https://x.test/rdf-1", "2024-01-05")
    with pytest.raises(ValueError):
        sources.parse_feed(b"<html><body>not a feed</body></html>")


def test_feed_entities_are_not_expanded():
    laughs = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY file SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><item><title>&c;&file;</title><link>https://x.test/a</link></item></channel></rss>"""
    [entry] = sources.parse_feed(laughs)
    assert "aaaa" not in (entry.title or "") and "root" not in (entry.title or "")


def test_canonical_url_and_names():
    assert sources.canonical_url("HTTPS://Example.ORG:443/a/b?utm_source=rss&id=3&fbclid=x#top") == (
        "https://example.org/a/b?id=3")
    name = sources.snapshot_name("https://example.org/news/Kim%20Putin-summit.html")
    assert name.startswith("kim-putin-summit-") and len(name) == len("kim-putin-summit-") + 8


def test_rate_limiter_spaces_requests_per_host():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    limiter = sources.HostRateLimiter(2.0, clock=lambda: now[0], sleep=sleep)
    limiter.wait("a.test")
    limiter.wait("b.test")  # another host: no wait
    limiter.wait("a.test")
    assert slept == [2.0]


def test_load_sources_file_of_the_project():
    loaded = sources.load_sources(load_settings().sources_file)
    assert loaded.sources and all(s.feeds or s.pages for s in loaded.sources)
    assert loaded.config.min_interval_seconds >= 1


def test_load_sources_rejects_mistakes(tmp_path):
    bad = tmp_path / "sources.yaml"
    bad.write_text("sources:\n  - name: Bad Name\n    feeds: [https://x.test/f]\n")
    with pytest.raises(sources.SourcesError, match="lower-case"):
        sources.load_sources(bad)
    bad.write_text("sources:\n  - name: ok\n    feeds: [ftp://x.test/f]\n")
    with pytest.raises(sources.SourcesError, match="http"):
        sources.load_sources(bad)
    bad.write_text("fetch:\n  speed: 3\nsources: []\n")
    with pytest.raises(sources.SourcesError, match="speed"):
        sources.load_sources(bad)


# --- fetching from a local server ---------------------------------------------------------


def test_first_fetch_stores_snapshots_with_sidecars_that_ingest_reads(site, tmp_path):
    server, base = site
    setup_site(server, base)
    raw, processed = tmp_path / "raw", tmp_path / "processed"
    raw.mkdir()
    summary = fetch(base, raw, processed)

    assert summary.errors == [f"{base}/private/secret.html: disallowed by robots.txt"]
    assert len(summary.stored) == 3
    report = summary.sources[0]
    assert (report.entries_seen, report.skipped_unmatched) == (3, 1)
    assert "/private/secret.html" not in [p for p, _, _ in server.log]
    assert not server.requests("/news/weather.html")
    # Every request says who asks.
    assert all(h["user-agent"] == CONFIG.user_agent for _, h, _ in server.log)

    for rel in summary.stored:
        path = raw / rel
        parts = Path(rel).parts
        assert parts[0] == "wire" and len(parts[1]) == 10 and parts[1][4] == "-"  # raw/SOURCE/YYYY-MM-DD/
        assert path.suffix == ".html"
        sidecar = path.with_name(path.stem + ".meta.yaml")
        meta = yaml.safe_load(sidecar.read_text())
        assert set(meta) <= set(SIDECAR_KEYS)
        assert meta["publisher"] == "Test Wire" and meta["language"] == "en"
        assert meta["url"].startswith(base) and "utm_" not in meta["url"]
        provenance = sources.read_provenance(sidecar)
        assert provenance["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert provenance["retrieved"].endswith("Z")
        # Immutable: read-only files.
        assert not (path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    by_url = {yaml.safe_load((raw / r).with_name(Path(r).stem + ".meta.yaml").read_text())["url"]: r
              for r in summary.stored}
    background = yaml.safe_load((raw / by_url[f"{base}/analysis/background.html"]).with_name(
        Path(by_url[f"{base}/analysis/background.html"]).stem + ".meta.yaml").read_text())
    assert background["published"] == "2023-09-13"  # from the page, not the fetch date
    assert background["title"] == "Seoul says shell shipment 50 reached Russia"
    assert not [p for p in raw.rglob(".*")]  # no temporary files left

    read = ingest(raw, load_settings(raw, processed))
    assert len(read.documents) == 3 and not read.rejected
    assert read.warnings == []
    doc = next(d for d in read.documents if d.url == f"{base}/analysis/background.html")
    assert doc.publisher == "Test Wire" and str(doc.published) == "2023-09-13" and "Rajin" in doc.text
    state = json.loads((processed / "fetch" / "state.json").read_text())
    assert state["feeds"][f"{base}/feed.xml"]["etag"] == '"v1"'


def test_second_fetch_is_conditional_and_downloads_nothing(site, tmp_path):
    server, base = site
    setup_site(server, base)
    raw, processed = tmp_path / "raw", tmp_path / "processed"
    raw.mkdir()
    fetch(base, raw, processed)
    articles_before = server.article_requests()
    files_before = sorted(p.relative_to(raw) for p in raw.rglob("*"))

    summary = fetch(base, raw, processed)
    assert summary.stored == []
    headers, status = server.requests("/feed.xml")[-1]
    assert status == 304
    assert headers["if-none-match"] == '"v1"'
    assert headers["if-modified-since"] == "Thu, 14 Mar 2024 02:00:00 GMT"
    assert summary.sources[0].feeds_unchanged == 1
    assert server.article_requests() == articles_before  # the listed page was not asked for again either
    assert sorted(p.relative_to(raw) for p in raw.rglob("*")) == files_before


def test_a_changed_feed_fetches_only_the_new_article(site, tmp_path):
    server, base = site
    setup_site(server, base)
    raw, processed = tmp_path / "raw", tmp_path / "processed"
    raw.mkdir()
    fetch(base, raw, processed)
    server.resources["/feed.xml"] = feed(base, [3, 1, 2], etag='"v2"', modified="Fri, 15 Mar 2024 02:00:00 GMT")
    server.resources["/news/story-3.html"] = article(3)
    before = list(server.article_requests())

    summary = fetch(base, raw, processed)
    assert len(summary.stored) == 1 and "story-3" in summary.stored[0]
    assert server.article_requests()[len(before):] == ["/news/story-3.html"]
    assert summary.sources[0].skipped_known == 4  # two old entries, the page, the page robots.txt refused
    for story in ("/news/story-1.html", "/news/story-2.html"):
        assert len(server.requests(story)) == 1


def test_without_state_the_snapshots_under_raw_still_count(site, tmp_path):
    server, base = site
    setup_site(server, base)
    raw, processed = tmp_path / "raw", tmp_path / "processed"
    raw.mkdir()
    fetch(base, raw, processed)
    (processed / "fetch" / "state.json").unlink()
    before = list(server.article_requests())

    summary = fetch(base, raw, processed)
    assert server.requests("/feed.xml")[-1][1] == 200  # no validators left: the feed is read again
    assert summary.stored == [] and server.article_requests() == before


def test_transient_errors_are_retried_with_backoff(site, tmp_path):
    server, base = site
    setup_site(server, base)
    server.resources["/news/story-1.html"].fail_first = 2
    raw, processed = tmp_path / "raw", tmp_path / "processed"
    raw.mkdir()
    summary = fetch(base, raw, processed)
    assert [status for _, status in server.requests("/news/story-1.html")] == [503, 503, 200]
    assert len(summary.stored) == 3


def test_an_article_that_keeps_failing_is_tried_again_next_run(site, tmp_path):
    server, base = site
    setup_site(server, base)
    server.resources["/news/story-2.html"].fail_first = 3  # more than the retries
    raw, processed = tmp_path / "raw", tmp_path / "processed"
    raw.mkdir()
    first = fetch(base, raw, processed)
    assert len(first.stored) == 2 and any("story-2" in e and "503" in e for e in first.errors)
    # The feed's validators were not kept, so the feed is read again and the failed entry comes back.
    second = fetch(base, raw, processed)
    assert server.requests("/feed.xml")[-1][1] == 200
    assert len(second.stored) == 1 and "story-2" in second.stored[0]
    assert len(server.requests("/news/story-1.html")) == 1


def test_a_missing_page_is_remembered_as_gone(site, tmp_path):
    server, base = site
    setup_site(server, base)
    del server.resources["/analysis/background.html"]
    raw, processed = tmp_path / "raw", tmp_path / "processed"
    raw.mkdir()
    fetch(base, raw, processed)
    fetch(base, raw, processed)
    assert [s for _, s in server.requests("/analysis/background.html")] == [404]


def test_snapshots_are_never_overwritten(tmp_path):
    folder = tmp_path / "wire" / "2024-03-14"
    first = sources._write_snapshot(folder, "story", ".html", b"<p>one</p>", {"url": "https://x.test/1"}, {})
    second = sources._write_snapshot(folder, "story", ".html", b"<p>two</p>", {"url": "https://x.test/2"}, {})
    assert first.name == "story.html" and second.name == "story-2.html"
    assert first.read_bytes() == b"<p>one</p>"


def test_cli_fetch_json(site, tmp_path):
    from armsledger.cli import app

    server, base = site
    setup_site(server, base)
    raw, processed = tmp_path / "raw", tmp_path / "processed"
    raw.mkdir()
    config = tmp_path / "sources.yaml"
    config.write_text(yaml.safe_dump({
        "fetch": {"min_interval_seconds": 0, "backoff_seconds": 0.01, "retries": 1},
        "sources": [{"name": "wire", "publisher": "Test Wire", "feeds": [f"{base}/feed.xml"], "match": ["Russia"]}],
    }))
    runner = CliRunner()
    args = ["fetch", "--raw", str(raw), "--processed", str(processed), "--sources", str(config), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["stored"]) == 2
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and json.loads(result.stdout)["stored"] == []
    bad = runner.invoke(app, args + ["--source", "nope"])
    assert bad.exit_code == 2


@pytest.mark.skipif(os.environ.get("ARMSLEDGER_NETWORK_TESTS") != "1", reason="needs the internet")
def test_the_real_sources_answer(tmp_path):  # pragma: no cover - by hand: ARMSLEDGER_NETWORK_TESTS=1
    loaded = sources.load_sources(load_settings().sources_file)
    with sources.Fetcher(loaded.config) as fetcher:
        for source in loaded.sources:
            for url in source.feeds:
                response = fetcher.get(url)
                assert response.status_code == 200, url
                assert sources.parse_feed(response.content, url), url


# --- the flows ---------------------------------------------------------------------------


def test_fetch_and_publish_deployment_shape(tmp_path):
    from flows.pipeline import deployment

    sources_file = tmp_path / "sources.yaml"
    made = deployment("30 5 * * *", "Asia/Seoul", raw=tmp_path / "raw", processed=tmp_path / "p",
                      flow_name="fetch-and-publish", sources_file=sources_file)
    assert made.entrypoint == "flows.pipeline.fetch_and_publish"
    assert made.parameters == {"raw": str(tmp_path / "raw"), "processed": str(tmp_path / "p"),
                               "sources_file": str(sources_file)}
    [schedule] = made.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone) == ("30 5 * * *", "Asia/Seoul")


@pytest.mark.slow
def test_fetch_and_publish_flow_publishes_what_it_fetched(site, copy_run, seed_release, tmp_path):
    """The scheduled flow's body: fetch from the (local) sources, then build and publish a release."""
    from flows.pipeline import fetch_and_publish

    server, base = site
    setup_site(server, base)
    raw, processed = copy_run()
    config = tmp_path / "sources.yaml"
    config.write_text(yaml.safe_dump({
        "fetch": {"min_interval_seconds": 0, "backoff_seconds": 0.01, "retries": 1},
        "sources": [{"name": "wire", "publisher": "Test Wire", "language": "en",
                     "feeds": [f"{base}/feed.xml"], "match": ["Russia"]}],
    }))
    summary = fetch_and_publish(raw=raw, processed=processed, sources_file=config)
    assert summary.published and summary.documents == seed_release.summary.documents + 2
    assert summary.warnings == 0 and summary.extraction_cached == seed_release.summary.documents
    documents = __import__("armsledger").load("documents", source=processed / "releases")
    assert set(documents.loc[documents["publisher"] == "Test Wire", "path"].str.split("/").str[0]) == {"wire"}
    # Nothing new on the next run: a 304, no download, no release.
    again = fetch_and_publish(raw=raw, processed=processed, sources_file=config)
    assert not again.published and server.requests("/feed.xml")[-1][1] == 304
