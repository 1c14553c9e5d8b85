"""Date expressions resolved against the document's own date, at the precision their words allow.

dateparser handles full calendar dates; the partial and relative forms of news
prose that it returns None for or resolves at the wrong precision ("late last
month", "mid-2023", "in March last year", "in 2019") have rules here.
"""
from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from collections.abc import Callable

from dateparser.date import DateDataParser

from armsledger.extract.records import DateValue

MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})
MONTHS["sept"] = 9
WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}
MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))
WEEKDAY_RE = "|".join(WEEKDAYS)
PART_RE = r"(?:(?P<part>earlier|later|early|mid|late|the (?:end|beginning|start|middle) of|the first half of|the second half of)[- ]?)?"
LEADING = re.compile(r"^(?:in|on|by|since|during|from|until|of|at|as of|as early as|around|about)\s+", re.I)
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "a": 1, "an": 1}
NO_DATE = DateValue(None, None, None, None)
ARTICLE_BEFORE_MONTH = re.compile(r"^the\s+(?=(?:%s)\b)" % MONTH_RE)
SPACES = re.compile(r"\s+")
YEAR = re.compile(PART_RE + r"(?P<y>(?:19|20)\d{2})")
MONTH_YEAR = re.compile(PART_RE + r"(?P<m>%s)\.? (?:of )?(?P<y>(?:19|20)\d{2})" % MONTH_RE)
DAY_MONTH_YEAR = re.compile(r"(?P<d>\d{1,2})(?:st|nd|rd|th)? (?:of )?(?P<m>%s)\.?,? (?P<y>(?:19|20)\d{2})" % MONTH_RE)
MONTH_DAY_YEAR = re.compile(r"(?P<m>%s)\.? (?P<d>\d{1,2})(?:st|nd|rd|th)?,? (?P<y>(?:19|20)\d{2})" % MONTH_RE)
ISO_DATE = re.compile(r"(?P<y>(?:19|20)\d{2})-(?P<m>\d{2})(?:-(?P<d>\d{2}))?")
AGO = re.compile(r"(?P<n>\d+|%s) (?P<unit>day|week|month|year)s? ago" % "|".join(NUMBER_WORDS))
WEEKDAY = re.compile(r"(?:(?P<offset>last|this|next|past) )?(?P<d>%s)" % WEEKDAY_RE)
UNIT_OFFSET = re.compile(PART_RE + r"(?P<offset>last|this|next|the previous|the following|the past) (?P<unit>week|month|year)")
MONTH_IN_YEAR = re.compile(PART_RE + r"(?P<m>%s) (?P<offset>last|this|next) year" % MONTH_RE)
BARE_MONTH = re.compile(PART_RE + r"(?:last )?(?P<m>%s)" % MONTH_RE)
DAY_MONTH = re.compile(r"(?P<d>\d{1,2})(?:st|nd|rd|th)? (?:of )?(?P<m>%s)" % MONTH_RE)
MONTH_DAY = re.compile(r"(?P<m>%s)\.? (?P<d>\d{1,2})(?:st|nd|rd|th)?" % MONTH_RE)
CALENDAR_LIKE = re.compile(r"\d{1,2}[/.]\d{1,2}[/.]\d{2,4}|\b(?:%s)\b.*\d" % MONTH_RE)


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _year(y: int, text: str) -> DateValue:
    return DateValue(dt.date(y, 1, 1), dt.date(y, 12, 31), "year", text)


def _month(y: int, m: int, text: str) -> DateValue:
    return DateValue(dt.date(y, m, 1), _month_end(y, m), "month", text)


def _day(d: dt.date, text: str) -> DateValue:
    return DateValue(d, d, "day", text)


def _shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def resolve_date(text: str, published: dt.date | None, precision: str | None) -> DateValue | None:
    """A DateValue for words that name a point or period in time; None when they do not.

    Relative words with no document date give a DateValue with no dates and
    the words kept, so that the caller can keep the text.
    """
    original = text.strip()
    words = LEADING.sub("", original.lower().replace("’", "'")).strip(" ,.")
    words = ARTICLE_BEFORE_MONTH.sub("", words)
    words = SPACES.sub(" ", words)
    absolute = _absolute(words, original)
    if absolute is not None:
        return absolute
    relative = _relative(words, original, published, precision)
    if relative is not None:
        return relative
    return _calendar_date(words, original, published)


def cached_resolver(max_entries: int = 65_536) -> Callable[[str, dt.date | None, str | None], DateValue | None]:
    """resolve_date with its answers kept by (words, document date, precision), for one extractor.

    dateparser takes about a millisecond a call, and the same words with the
    same document date come back in every report of that day.
    """
    return functools.lru_cache(maxsize=max_entries)(resolve_date)


def _absolute(words: str, text: str) -> DateValue | None:
    m = YEAR.fullmatch(words)
    if m:
        return _year(int(m["y"]), text)
    m = MONTH_YEAR.fullmatch(words)
    if m:
        return _month(int(m["y"]), MONTHS[m["m"]], text)
    m = DAY_MONTH_YEAR.fullmatch(words)
    if m is None:
        m = MONTH_DAY_YEAR.fullmatch(words)
    if m:
        return _safe_day(int(m["y"]), MONTHS[m["m"]], int(m["d"]), text)
    m = ISO_DATE.fullmatch(words)
    if m:
        if m["d"]:
            return _safe_day(int(m["y"]), int(m["m"]), int(m["d"]), text)
        return _month(int(m["y"]), int(m["m"]), text) if 1 <= int(m["m"]) <= 12 else None
    return None


def _safe_day(y: int, m: int, d: int, text: str) -> DateValue | None:
    try:
        return _day(dt.date(y, m, d), text)
    except ValueError:
        return None


def _relative(words: str, text: str, published: dt.date | None, precision: str | None) -> DateValue | None:
    """Forms that need the document's date; without it, the words alone."""
    form = _relative_form(words)
    if form is None:
        return None
    if published is None:
        return DateValue(None, None, None, text)
    kind, value = form
    day_known = precision == "day"
    month_known = precision in {"day", "month"}
    if kind == "day_offset":
        if not day_known:
            return DateValue(None, None, None, text)
        return _day(published + dt.timedelta(days=value), text)
    if kind == "weekday":
        if not day_known:
            return DateValue(None, None, None, text)
        offset, weekday = value
        delta = (published.weekday() - weekday) % 7 + (7 if offset == "last" and published.weekday() == weekday else 0)
        if offset == "next":
            return _day(published + dt.timedelta(days=(weekday - published.weekday()) % 7 or 7), text)
        return _day(published - dt.timedelta(days=delta), text)
    if kind == "week_offset":
        if not day_known:
            return DateValue(None, None, None, text)
        start = published - dt.timedelta(days=published.weekday()) + dt.timedelta(weeks=value)
        return DateValue(start, start + dt.timedelta(days=6), "day", text)
    if kind == "month_offset":
        if not month_known:
            return DateValue(None, None, None, text)
        y, m = _shift_month(published.year, published.month, value)
        return _month(y, m, text)
    if kind == "year_offset":
        return _year(published.year + value, text)
    if kind == "month_in_year":
        month, year_offset = value
        return _month(published.year + year_offset, month, text)
    if kind == "bare_month":
        if not month_known:
            return DateValue(None, None, None, text) if value > published.month or precision == "year" else _month(published.year, value, text)
        year = published.year if value <= published.month else published.year - 1
        return _month(year, value, text)
    if kind == "bare_day":
        month, day = value
        year = published.year if (month, day) <= (published.month, published.day) or not day_known else published.year - 1
        return _safe_day(year, month, day, text)
    return None


def _relative_form(words: str):
    """Classifies a relative expression as (kind, value), or None."""
    if words in {"today", "this morning", "this afternoon", "this evening", "tonight", "now"}:
        return "day_offset", 0
    if words in {"yesterday", "last night"}:
        return "day_offset", -1
    if words == "tomorrow":
        return "day_offset", 1
    m = AGO.fullmatch(words)
    if m:
        n = int(m["n"]) if m["n"].isdigit() else NUMBER_WORDS[m["n"]]
        unit = m["unit"]
        if unit == "day":
            return "day_offset", -n
        if unit == "week":
            return "day_offset", -7 * n
        if unit == "month":
            return "month_offset", -n
        return "year_offset", -n
    m = WEEKDAY.fullmatch(words)
    if m:
        return "weekday", (m["offset"] or "this", WEEKDAYS[m["d"]])
    m = UNIT_OFFSET.fullmatch(words)
    if m:
        step = {"last": -1, "the previous": -1, "the past": -1, "this": 0, "next": 1, "the following": 1}[m["offset"]]
        return {"week": "week_offset", "month": "month_offset", "year": "year_offset"}[m["unit"]], step
    m = MONTH_IN_YEAR.fullmatch(words)
    if m:
        return "month_in_year", (MONTHS[m["m"]], {"last": -1, "this": 0, "next": 1}[m["offset"]])
    m = BARE_MONTH.fullmatch(words)
    if m and len(m["m"]) > 2:
        return "bare_month", MONTHS[m["m"]]
    m = DAY_MONTH.fullmatch(words) or MONTH_DAY.fullmatch(words)
    if m:
        return "bare_day", (MONTHS[m["m"]], int(m["d"]))
    return None


def _calendar_date(words: str, text: str, published: dt.date | None) -> DateValue | None:
    """Other calendar dates ("28/03/2024", "March 28th, 2024") through dateparser, keeping its period."""
    if not CALENDAR_LIKE.search(words):
        return None
    settings = {"PREFER_DATES_FROM": "past", "REQUIRE_PARTS": ["year"]}
    if published is not None:
        settings["RELATIVE_BASE"] = dt.datetime.combine(published, dt.time())
    data = DateDataParser(languages=["en"], settings=settings).get_date_data(words)
    if data is None or data.date_obj is None:
        return None
    day = data.date_obj.date()
    if data.period == "year":
        return _year(day.year, text)
    if data.period == "month":
        return _month(day.year, day.month, text)
    return _day(day, text)
