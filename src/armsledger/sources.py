"""Fetching: the feeds and pages of sources.yaml -> immutable snapshots under raw/.

What one fetch does, per source:

1. Each feed (RSS 2.0, RSS 1.0/RDF or Atom) is requested with the ETag and
   Last-Modified of its previous answer (`If-None-Match`, `If-Modified-Since`);
   a 304 means nothing new and costs no parsing.
2. Every feed entry whose link has never been fetched (and that matches the
   source's `match` keywords, if it has any) is downloaded once, as is every
   listed page that has never been fetched.
3. Each download is stored as `raw/SOURCE/YYYY-MM-DD/NAME.html` (the UTC date
   of retrieval) with a `NAME.meta.yaml` sidecar. Snapshots are written once
   (to a hidden temporary name, then renamed), made read-only, and never
   overwritten: a second snapshot of the same name gets a `-2` suffix.

"Never fetched twice": an article's canonical URL (no fragment, no utm_*
tracking parameters) is remembered in the state file and also read back from
the `url` of every sidecar already under raw/SOURCE/, so losing the state file
costs only the feeds' validators, never a second download.

The sidecar holds only the keys that ingest reads (title, publisher, author,
published, url, license, language); the retrieval time and the SHA-256 of the
stored bytes are written as `# retrieved:` and `# sha256:` comment lines, which
ingest ignores and `read_provenance` reads back. Title, author and published
date come from the page itself (trafilatura's metadata), else from the feed
entry; the publisher is the source's `publisher`, else the page's site name.

Being polite: one client per fetch, a User-Agent that says who asks, a minimum
interval between two requests to the same host, robots.txt honoured, timeouts
on every request, retries with exponential back-off (and Retry-After) on
network errors, 429 and 5xx, and a size limit on every body.

State (feed validators, fetched articles, pages that are gone) lives in
`processed/fetch/state.json`, never in raw/.

Feeds are parsed with lxml (already a dependency, through trafilatura) with
entity resolution, DTD loading and network access switched off and the
huge-tree limits left on: a hostile feed cannot expand entities or reach out.
"""
from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import json
import os
import re
import threading
import time
import urllib.parse
import urllib.robotparser
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

SIDECAR_SUFFIX = ".meta.yaml"
STATE_VERSION = 1
DEFAULT_USER_AGENT = "armsledger/0.1 (open dataset research fetcher; polite, conditional requests)"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
# An article that answers these is not asked for again (a robots.txt refusal or a non-page type neither).
_PERMANENT_STATUSES = {403, 404, 410, 413, 415, 451, 999}
_TRACKING_PARAMS = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid|ocid|cmpid)$", re.IGNORECASE)
_NAME_SAFE = re.compile(r"[^a-z0-9]+")
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class SourcesError(ValueError):
    """sources.yaml is missing, unreadable, or says something that cannot be."""


# --- configuration -------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One outlet: where its feeds and pages are, and what its snapshots are called."""

    name: str  # the folder under raw/
    publisher: str | None = None
    feeds: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()
    # Entries are fetched only if their title or summary holds one of these (case-insensitive); empty: all.
    match: tuple[str, ...] = ()
    language: str | None = None
    license: str | None = None
    max_items: int = 50


@dataclass(frozen=True)
class FetchConfig:
    """How politely to fetch; every field can be set at the top of sources.yaml."""

    user_agent: str = DEFAULT_USER_AGENT
    timeout_seconds: float = 20.0
    retries: int = 3
    backoff_seconds: float = 2.0  # the first retry waits this long, then twice as long each time
    max_backoff_seconds: float = 60.0
    min_interval_seconds: float = 2.0  # between two requests to the same host
    max_bytes: int = 10 * 1024 * 1024
    respect_robots: bool = True


@dataclass(frozen=True)
class SourcesFile:
    config: FetchConfig
    sources: tuple[Source, ...]


def load_sources(path: Path) -> SourcesFile:
    """sources.yaml as SourcesFile; SourcesError names what is wrong."""
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise SourcesError(f"no sources file at {path}") from exc
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SourcesError(f"{path}: cannot be read: {exc}") from exc
    if not isinstance(loaded, dict):
        raise SourcesError(f"{path}: expected a mapping with a 'sources' list")
    known = set(FetchConfig.__dataclass_fields__)
    settings = loaded.get("fetch") or {}
    unknown = set(settings) - known
    if unknown:
        raise SourcesError(f"{path}: unknown fetch settings: {', '.join(sorted(unknown))}")
    config = FetchConfig(**settings)
    sources, seen = [], set()
    for i, entry in enumerate(loaded.get("sources") or []):
        if not isinstance(entry, dict) or "name" not in entry:
            raise SourcesError(f"{path}: source #{i + 1} needs a name")
        name = str(entry["name"])
        if not _SOURCE_NAME.match(name):
            raise SourcesError(f"{path}: source name {name!r} must be lower-case letters, digits, - or _")
        if name in seen:
            raise SourcesError(f"{path}: source {name!r} is listed twice")
        seen.add(name)
        fields = set(Source.__dataclass_fields__)
        unknown = set(entry) - fields
        if unknown:
            raise SourcesError(f"{path}: source {name!r}: unknown keys {', '.join(sorted(unknown))}")
        values = dict(entry)
        for key in ("feeds", "pages", "match"):
            items = values.get(key) or []
            if isinstance(items, str):
                items = [items]
            values[key] = tuple(str(item) for item in items)
        for url in values["feeds"] + values["pages"]:
            if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
                raise SourcesError(f"{path}: source {name!r}: not an http(s) URL: {url!r}")
        sources.append(Source(**values))
    return SourcesFile(config=config, sources=tuple(sources))


# --- URLs and names ------------------------------------------------------------------


def canonical_url(url: str) -> str:
    """The URL that says "same article": no fragment, no tracking parameters, lower-case host."""
    parts = urllib.parse.urlsplit(url.strip())
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
             if not _TRACKING_PARAMS.match(k)]
    netloc = parts.netloc.lower()
    if (parts.scheme == "http" and netloc.endswith(":80")) or (parts.scheme == "https" and netloc.endswith(":443")):
        netloc = netloc.rsplit(":", 1)[0]
    return urllib.parse.urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", urllib.parse.urlencode(query), ""))


def snapshot_name(url: str) -> str:
    """A readable, stable file stem: the URL's last path segment (slugged) and 8 hex of its hash."""
    parts = urllib.parse.urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    last = segments[-1] if segments else parts.netloc
    last = re.sub(r"\.(html?|php|aspx?)$", "", urllib.parse.unquote(last), flags=re.IGNORECASE)
    slug = _NAME_SAFE.sub("-", last.lower()).strip("-")[:60].strip("-") or "page"
    return f"{slug}-{hashlib.sha256(url.encode('utf-8')).hexdigest()[:8]}"


# --- feeds ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedEntry:
    link: str
    title: str | None = None
    summary: str | None = None
    published: str | None = None  # ISO date (YYYY-MM-DD), as the feed gives it
    author: str | None = None
    guid: str | None = None


def parse_feed(data: bytes, base_url: str = "") -> list[FeedEntry]:
    """The entries of an RSS 2.0, RSS 1.0 (RDF) or Atom document, in feed order.

    Raises ValueError when the bytes are not a feed.
    """
    from lxml import etree

    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False, recover=True
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ValueError(f"not XML: {exc}") from exc
    if root is None:
        raise ValueError("not XML")
    if _local(root.tag) not in ("rss", "feed", "RDF"):
        raise ValueError(f"not a feed (root element <{_local(root.tag)}>)")
    entries = []
    for item in root.iter():
        if not isinstance(item.tag, str) or _local(item.tag) not in ("item", "entry"):
            continue
        children: dict[str, list[Any]] = {}
        for child in item:
            if isinstance(child.tag, str):
                children.setdefault(_local(child.tag), []).append(child)
        link = _entry_link(item, children)
        if not link:
            continue
        link = urllib.parse.urljoin(base_url, link)
        date = None
        for key in ("pubDate", "published", "date", "issued", "updated", "modified"):
            for element in children.get(key, []):
                date = _feed_date(_text(element))
                if date:
                    break
            if date:
                break
        author = _text(children["creator"][0]) if "creator" in children else None
        if not author and "author" in children:
            element = children["author"][0]
            names = [c for c in element if isinstance(c.tag, str) and _local(c.tag) == "name"]
            author = _text(names[0]) if names else _text(element)
        entries.append(
            FeedEntry(
                link=link,
                title=_text(children["title"][0]) if "title" in children else None,
                summary=_text((children.get("description") or children.get("summary") or [None])[0]),
                published=date,
                author=author or None,
                guid=_text((children.get("guid") or children.get("id") or [None])[0]),
            )
        )
    return entries


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _text(element: Any) -> str | None:
    if element is None:
        return None
    text = " ".join("".join(element.itertext()).split())
    return text or None


def _entry_link(item: Any, children: dict[str, list[Any]]) -> str | None:
    for element in children.get("link", []):
        href = element.get("href")
        if href and element.get("rel", "alternate") == "alternate":
            return href.strip()
        if not href and _text(element):
            return _text(element)
    for element in children.get("guid", []):  # RSS: a permalink guid is the article's URL
        if element.get("isPermaLink", "true") == "true" and (_text(element) or "").startswith("http"):
            return _text(element)
    about = item.get("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about")
    return about.strip() if about else None


def _feed_date(text: str | None) -> str | None:
    """RFC 822 (RSS) or ISO 8601 (Atom, Dublin Core) -> YYYY-MM-DD in the feed's own time zone."""
    if not text:
        return None
    try:
        return email.utils.parsedate_to_datetime(text).date().isoformat()
    except (TypeError, ValueError, IndexError):
        pass
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        match = re.match(r"^(\d{4}-\d{2}-\d{2})", text)
        return match.group(1) if match else None


def entry_matches(entry: FeedEntry, keywords: Iterable[str]) -> bool:
    keywords = [k.lower() for k in keywords]
    if not keywords:
        return True
    haystack = f"{entry.title or ''} {entry.summary or ''}".lower()
    return any(k in haystack for k in keywords)


# --- state ---------------------------------------------------------------------------


@dataclass
class FetchState:
    """What earlier fetches learnt: feed validators, articles stored, pages that are gone."""

    feeds: dict[str, dict[str, str]] = field(default_factory=dict)
    articles: dict[str, dict[str, str]] = field(default_factory=dict)
    gone: dict[str, dict[str, Any]] = field(default_factory=dict)
    fresh: bool = False  # True when there was no usable state file

    @classmethod
    def load(cls, path: Path) -> "FetchState":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls(fresh=True)  # a lost state costs conditional requests, never a second download (see raw/)
        if not isinstance(data, dict):
            return cls(fresh=True)
        return cls(feeds=data.get("feeds", {}), articles=data.get("articles", {}), gone=data.get("gone", {}))

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"version": STATE_VERSION, "feeds": self.feeds, "articles": self.articles, "gone": self.gone}
        temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        temp.write_text(json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(temp, path)


def stored_urls(source_dir: Path) -> set[str]:
    """Canonical URLs of every snapshot already under raw/SOURCE/ (from the sidecars' url key)."""
    urls: set[str] = set()
    if not source_dir.is_dir():
        return urls
    for sidecar in source_dir.rglob(f"*{SIDECAR_SUFFIX}"):
        try:
            loaded = yaml.safe_load(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if isinstance(loaded, dict) and loaded.get("url"):
            urls.add(canonical_url(str(loaded["url"])))
        for key in ("source-url", "requested"):  # the URL asked for, when a redirect changed it
            value = read_provenance(sidecar).get(key)
            if value:
                urls.add(canonical_url(value))
    return urls


def read_provenance(sidecar: Path) -> dict[str, str]:
    """The `# key: value` comment lines of a fetched sidecar (retrieved, sha256, requested)."""
    found = {}
    for line in Path(sidecar).read_text(encoding="utf-8").splitlines():
        match = re.match(r"^#\s*([a-z0-9-]+):\s*(.+?)\s*$", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


# --- HTTP ----------------------------------------------------------------------------


class HostRateLimiter:
    """At least `interval` seconds between the starts of two requests to the same host (thread-safe)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.interval = interval
        self._clock, self._sleep = clock, sleep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, host: str) -> None:
        with self._lock:
            now = self._clock()
            start = max(now, self._next.get(host, now))
            self._next[host] = start + self.interval
        if start > now:
            self._sleep(start - now)


class FetchError(Exception):
    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason, self.status = url, reason, status


class Fetcher:
    """An httpx client with the politeness rules of the module docstring."""

    def __init__(self, config: FetchConfig, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._sleep = sleep
        self.limiter = HostRateLimiter(config.min_interval_seconds, sleep=sleep)
        self.client = httpx.Client(
            headers={"User-Agent": config.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(config.timeout_seconds),
            follow_redirects=True,
            transport=transport,
        )
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self.requests = 0

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def allowed(self, url: str) -> bool:
        if not self.config.respect_robots:
            return True
        parts = urllib.parse.urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._robots:
            robots = None
            try:
                response = self._request(f"{origin}/robots.txt", {})
                if response.status_code == 200:
                    robots = urllib.robotparser.RobotFileParser()
                    robots.parse(response.text.splitlines())
            except FetchError:
                robots = None  # no robots.txt to be had: nothing is disallowed
            self._robots[origin] = robots
        robots = self._robots[origin]
        return robots is None or robots.can_fetch(self.config.user_agent, url)

    def get(self, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """GET with retries and back-off; a final 4xx/5xx is returned, not raised. FetchError when no answer came."""
        return self._request(url, headers or {})

    def _request(self, url: str, headers: dict[str, str]) -> httpx.Response:
        host = urllib.parse.urlsplit(url).netloc.lower()
        attempts = 1 + max(0, self.config.retries)
        for attempt in range(attempts):
            self.limiter.wait(host)
            self.requests += 1
            retry_after = None
            try:
                response = self._get_limited(url, headers)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                if attempt == attempts - 1:
                    raise FetchError(url, problem) from exc
            else:
                if response.status_code not in _RETRY_STATUSES or attempt == attempts - 1:
                    return response
                retry_after = _retry_after(response.headers.get("Retry-After"))
            delay = self.config.backoff_seconds * (2**attempt)
            if retry_after is not None:
                delay = max(delay, retry_after)
            self._sleep(min(delay, self.config.max_backoff_seconds))
        raise AssertionError("unreachable")

    def _get_limited(self, url: str, headers: dict[str, str]) -> httpx.Response:
        with self.client.stream("GET", url, headers=headers) as response:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self.config.max_bytes:
                    raise FetchError(url, f"larger than {self.config.max_bytes:,} bytes", 413)
            response._content = bytes(body)  # noqa: SLF001 - httpx's documented way to keep a streamed body
            return response


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())
        except (TypeError, ValueError):
            return None


# --- one fetch -----------------------------------------------------------------------


@dataclass
class SourceReport:
    """What one source's fetch did (JSON-ready through to_dict)."""

    source: str
    feeds_checked: int = 0
    feeds_unchanged: int = 0  # answered 304
    entries_seen: int = 0
    stored: list[str] = field(default_factory=list)  # paths relative to raw/
    skipped_known: int = 0
    skipped_unmatched: int = 0
    errors: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def fetch_source(
    source: Source,
    raw_dir: Path,
    state_path: Path,
    fetcher: Fetcher,
    now: Callable[[], dt.datetime] = utc_now,
) -> SourceReport:
    """Fetches what is new for one source into raw_dir/SOURCE/ (see the module docstring)."""
    report = SourceReport(source=source.name)
    state = FetchState.load(state_path)
    source_dir = Path(raw_dir) / source.name
    known = set(state.articles) | set(state.gone)
    if state.fresh or not any(a.get("source") == source.name for a in state.articles.values()):
        # No record of this source (a lost state file, a new checkout): what is under raw/ counts as fetched.
        known |= stored_urls(source_dir)

    queued: set[str] = set()

    def take(url: str, entry: FeedEntry | None) -> bool:
        """Fetches one article unless it is known; False when it failed in a way another run may mend."""
        key = canonical_url(url)
        if key in known or key in queued:
            report.skipped_known += 1
            return True
        queued.add(key)
        try:
            stored = _fetch_article(url, key, entry, source, source_dir, raw_dir, fetcher, state, now)
        except FetchError as exc:
            report.errors.append(str(exc))
            if exc.status is None or exc.status not in _PERMANENT_STATUSES:
                return False
            state.gone[key] = {"status": exc.status, "checked": now().isoformat()}
        else:
            report.stored.append(stored)
        state.save(state_path)
        return True

    for feed_url in source.feeds:
        report.feeds_checked += 1
        checked = _check_feed(feed_url, state, fetcher, report)
        if checked is None:
            continue
        entries, validators = checked
        complete = True
        for entry in entries[: source.max_items]:
            report.entries_seen += 1
            if not entry_matches(entry, source.match):
                report.skipped_unmatched += 1
                continue
            complete = take(entry.link, entry) and complete
        # The feed's validators are kept only once every entry is handled: after a transient failure the
        # next run reads the feed again (a 304 would hide the entry that failed).
        record = {**validators, "checked": now().isoformat()} if complete else {"checked": now().isoformat()}
        state.feeds[feed_url] = record
        state.save(state_path)
    for url in source.pages:
        take(url, None)
    return report


def _check_feed(feed_url, state, fetcher, report) -> tuple[list[FeedEntry], dict[str, str]] | None:
    """The feed's entries and its new validators; ([], old validators) on 304; None on an error."""
    previous = state.feeds.get(feed_url, {})
    headers = {}
    if previous.get("etag"):
        headers["If-None-Match"] = previous["etag"]
    if previous.get("last_modified"):
        headers["If-Modified-Since"] = previous["last_modified"]
    try:
        response = fetcher.get(feed_url, headers)
    except FetchError as exc:
        report.errors.append(str(exc))
        return None
    if response.status_code == 304:
        report.feeds_unchanged += 1
        return [], {k: v for k, v in previous.items() if k in ("etag", "last_modified")}
    if response.status_code != 200:
        report.errors.append(f"{feed_url}: HTTP {response.status_code}")
        return None
    try:
        entries = parse_feed(response.content, str(response.url))
    except ValueError as exc:
        report.errors.append(f"{feed_url}: {exc}")
        return None
    validators = {k: v for k, v in (("etag", response.headers.get("ETag")),
                                    ("last_modified", response.headers.get("Last-Modified"))) if v}
    return entries, validators


def _fetch_article(url, key, entry, source, source_dir, raw_dir, fetcher, state, now) -> str | None:
    if not fetcher.allowed(url):
        raise FetchError(url, "disallowed by robots.txt", 999)
    response = fetcher.get(url)
    if response.status_code != 200:
        raise FetchError(url, f"HTTP {response.status_code}", response.status_code)
    content_type = response.headers.get("Content-Type", "text/html").split(";")[0].strip().lower()
    if content_type in _HTML_TYPES:
        suffix = ".html"
    elif content_type in ("text/plain", "text/markdown"):
        suffix = ".txt" if content_type == "text/plain" else ".md"
    else:
        raise FetchError(url, f"not a web page ({content_type})", 415)
    data = response.content
    final_url = str(response.url)
    retrieved = now()
    sha = hashlib.sha256(data).hexdigest()
    metadata = _page_metadata(data, suffix, entry, source, canonical_url(final_url))
    folder = source_dir / retrieved.date().isoformat()
    path = _write_snapshot(folder, snapshot_name(key), suffix, data, metadata, {
        "retrieved": retrieved.isoformat().replace("+00:00", "Z"),
        "sha256": sha,
        "requested": url if canonical_url(url) != canonical_url(final_url) else None,
        "fetched-by": "armsledger fetch",
    })
    rel = path.relative_to(raw_dir).as_posix()
    record = {"source": source.name, "path": rel, "sha256": sha, "retrieved": retrieved.isoformat()}
    state.articles[key] = record
    if canonical_url(final_url) != key:
        state.articles[canonical_url(final_url)] = record
    return rel


def _page_metadata(data: bytes, suffix: str, entry: FeedEntry | None, source: Source, url: str) -> dict[str, Any]:
    """The sidecar's keys, in ingest's order; keys with nothing known are left out (a null would hide the page's)."""
    page: dict[str, Any] = {}
    if suffix == ".html":
        try:
            import trafilatura

            meta = trafilatura.extract_metadata(data.decode("utf-8", errors="replace"))
        except Exception:  # noqa: BLE001 - metadata is optional
            meta = None
        if meta is not None:
            page = {"title": meta.title, "author": meta.author, "publisher": meta.sitename, "published": meta.date}
    published = page.get("published") or (entry.published if entry else None)
    if published and not re.match(r"^\d{4}(-\d{2}(-\d{2})?)?$", str(published)):
        published = _feed_date(str(published))
    values = {
        "title": page.get("title") or (entry.title if entry else None),
        "publisher": source.publisher or page.get("publisher"),
        "author": page.get("author") or (entry.author if entry else None),
        "published": published,
        "url": url,
        "license": source.license,
        "language": source.language,
    }
    return {k: str(v) for k, v in values.items() if v}


def _write_snapshot(folder: Path, stem: str, suffix: str, data: bytes, metadata: dict[str, Any],
                    provenance: dict[str, str | None]) -> Path:
    """NAME.suffix and NAME.meta.yaml, each written to a hidden name then renamed, then read-only. Never overwrites."""
    folder.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        name = stem if n == 1 else f"{stem}-{n}"
        path, sidecar = folder / f"{name}{suffix}", folder / f"{name}{SIDECAR_SUFFIX}"
        if not any(os.path.lexists(folder / f"{name}{ext}") for ext in (".html", ".txt", ".md", SIDECAR_SUFFIX)):
            break
        n += 1
    comments = "".join(f"# {k}: {v}\n" for k, v in provenance.items() if v)
    sidecar_text = "# Written by `armsledger fetch`; the snapshot beside it is immutable.\n" + comments
    sidecar_text += yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True, width=1000)
    # The sidecar first: a document without its sidecar would be read with null metadata.
    for target, payload in ((sidecar, sidecar_text.encode("utf-8")), (path, data)):
        temp = folder / f".{target.name}.tmp"
        temp.write_bytes(payload)
        temp.chmod(0o444)
        os.link(temp, target)  # fails rather than replaces if the name was taken meanwhile
        temp.unlink()
    return path


@dataclass
class FetchSummary:
    sources: list[SourceReport]

    @property
    def stored(self) -> list[str]:
        return [p for r in self.sources for p in r.stored]

    @property
    def errors(self) -> list[str]:
        return [e for r in self.sources for e in r.errors]

    def to_dict(self) -> dict[str, Any]:
        return {"stored": self.stored, "errors": self.errors, "sources": [r.to_dict() for r in self.sources]}


def state_path_for(processed_dir: Path) -> Path:
    return Path(processed_dir) / "fetch" / "state.json"


def fetch_all(
    sources_file: SourcesFile,
    raw_dir: Path,
    processed_dir: Path,
    only: Iterable[str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> FetchSummary:
    """Every source (or those named in `only`), one after another, with one polite client."""
    names = set(only) if only else None
    reports = []
    with Fetcher(sources_file.config, transport=transport) as fetcher:
        for source in sources_file.sources:
            if names is None or source.name in names:
                reports.append(fetch_source(source, raw_dir, state_path_for(processed_dir), fetcher))
    return FetchSummary(reports)
