"""Amounts as the text states them ("millions", "up to 4,000 crates", "$2 billion") and as bounds."""
from __future__ import annotations

import re
from dataclasses import dataclass

UNITS_WORDS = {
    "hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000,
    "trillion": 1_000_000_000_000, "k": 1_000, "m": 1_000_000, "bn": 1_000_000_000, "mn": 1_000_000,
}
SMALL = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
    "several": 3, "a few": 2, "dozens": 24, "dozen": 12,
}
LOWER_CUES = ("more than", "over", "at least", "upwards of", "in excess of", "no fewer than", "above")
UPPER_CUES = ("up to", "as many as", "fewer than", "less than", "under", "at most", "no more than", "nearly", "almost")
APPROX_CUES = ("about", "around", "some", "roughly", "approximately", "an estimated", "estimated", "close to")
NUMBER = r"(?:\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
SCALE = r"(?:hundred|thousand|million|billion|trillion|bn|mn)"
WORD_NUMBER = r"(?:%s)" % "|".join(sorted((k for k in SMALL if " " not in k), key=len, reverse=True))
AMOUNT = re.compile(
    r"(?P<cue>(?:%s)\s+)?(?P<currency>[$€£]|US\$)?\s*(?:"
    r"(?P<vague>(?:tens|hundreds|thousands|millions|billions)(?: of (?:thousands|millions|billions))?)"
    r"|(?P<num>%s|%s)(?:\s*(?P<scale>%s))?(?:\s*(?:-|–|to|and)\s*(?P<num2>%s)(?:\s*(?P<scale2>%s))?)?"
    r")\b"
    % ("|".join(map(re.escape, LOWER_CUES + UPPER_CUES + APPROX_CUES + ("between",))), NUMBER, WORD_NUMBER, SCALE, NUMBER, SCALE),
    re.I,
)


@dataclass(frozen=True)
class Quantity:
    text: str
    low: int | None
    high: int | None
    start: int  # offset of text within the searched string
    end: int


def _value(number: str, scale: str | None) -> int:
    n = SMALL.get(number.lower())
    value = float(n if n is not None else number.replace(",", ""))
    if scale:
        value *= UNITS_WORDS[scale.lower()]
    return int(round(value))


def _vague(words: str) -> tuple[int, int | None]:
    """"millions" is at least a million, "tens of millions" at least ten million."""
    parts = words.lower().split(" of ")
    base = {"tens": 10, "hundreds": 100, "thousands": 1_000, "millions": 1_000_000, "billions": 1_000_000_000}
    low = 1
    for part in parts:
        low *= base[part]
    return low, None


def find_quantity(text: str) -> Quantity | None:
    """The first amount in a phrase, with its bounds; None when the phrase states none.

    Alternatives ("either two million rounds or 300,000 rockets") give the whole
    phrase, from the smallest to the largest amount named.
    """
    either = re.match(r"\s*(?:either)\b", text, re.I)
    if either:
        amounts = _amounts(text)
        if len(amounts) >= 2:
            lows = [q.low if q.low is not None else q.high for q in amounts]
            highs = [q.high if q.high is not None else q.low for q in amounts]
            return Quantity(text.strip(), min(lows), max(highs), either.end() - len(either.group(0).lstrip()), len(text))
    amounts = _amounts(text)
    return amounts[0] if amounts else None


def _amounts(text: str) -> list[Quantity]:
    found = []
    for m in AMOUNT.finditer(text):
        if m["vague"]:
            low, high = _vague(m["vague"])
        elif m["num"]:
            if m["num"].lower() in {"a", "an"} and not m["scale"]:
                continue
            if re.fullmatch(r"(?:19|20)\d{2}", m["num"]) and not m["scale"] and not m["currency"]:
                continue  # a year, not an amount
            low = _value(m["num"], m["scale"] or m["scale2"])
            high = low
            if m["num2"]:
                high = _value(m["num2"], m["scale2"] or m["scale"])
        else:
            continue
        cue = (m["cue"] or "").strip().lower()
        if cue in UPPER_CUES:
            low, high = None, high if high is not None else low
        elif cue in LOWER_CUES:
            high = None
        start = m.start()
        found.append(Quantity(text[start : m.end()].strip(), low, high, start, m.end()))
    return found
