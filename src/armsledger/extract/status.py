"""Status and hedge of a reported event or transfer, read from the words that govern it."""
from __future__ import annotations

from dataclasses import dataclass

from spacy.tokens import Token

from armsledger.extract.resources import Resources

SPECULATIVE_ADVERBS = {"possibly", "perhaps", "probably", "maybe", "conceivably", "potentially"}
CUE_DEPS = {"aux", "auxpass", "neg", "advmod", "mark", "prt"}
FINITE_TAGS = {"VBD", "VBZ", "VBP", "MD"}
PRESENT_TAGS = {"VBZ", "VBP"}
NOT_NEGATING = {"just", "only", "merely", "simply"}
EVENT_STATUS = {
    "denied": "denied", "requested": "planned", "planned": "planned", "negotiated": "occurred",
    "expected": "expected", "speculated": "speculated", "reported": "occurred",
}
TRANSFER_STATUS = {
    "denied": "denied", "requested": "requested", "planned": "expected", "negotiated": "negotiated",
    "expected": "expected", "speculated": "speculated", "reported": "reported",
}


@dataclass(frozen=True)
class Reading:
    cue: str | None  # the status group found, None when the words state a plain fact
    hedge: str | None


def read_status(trigger: Token, resources: Resources) -> Reading:
    """The first status group (in the lexicon's order) whose cues govern the trigger."""
    found = _cue_words(trigger)
    window = _window(trigger)
    hedges = resources.lexicon["hedges"]
    for group, cues in resources.lexicon["status_cues"].items():
        for cue in cues:
            cue = cue.lower()
            hit = cue in found or (" " in cue and f" {cue} " in window)
            if hit and group == "expected" and found & SPECULATIVE_ADVERBS:
                group = "speculated"  # "will possibly hand over": the adverb weakens the future
            if hit:
                hedge = next((h for h in hedges if f" {h} " in window), None) or (cue if cue in hedges else None)
                return Reading(group, hedge)
    return Reading(None, next((h for h in hedges if f" {h} " in window), None))


def read_transfer_status(trigger: Token, resources: Resources) -> Reading:
    """As read_status; a plain present-tense statement about a future purpose is expected, not reported."""
    reading = read_status(trigger, resources)
    if reading.cue is None and trigger.tag_ in PRESENT_TAGS and _future_purpose(trigger, resources):
        return Reading("expected", reading.hedge)
    return reading


def _future_purpose(trigger: Token, resources: Resources) -> bool:
    markers = resources.words("future_markers")
    return any(t.dep_ == "amod" and t.lower_ in markers for t in trigger.subtree)


def event_status(reading: Reading) -> str:
    return EVENT_STATUS.get(reading.cue, "occurred")


def transfer_status(reading: Reading) -> str:
    return TRANSFER_STATUS.get(reading.cue, "reported")


def _cue_words(trigger: Token) -> set[str]:
    """Lemmas and words of the trigger, the heads above it, and their auxiliaries and negations."""
    words: set[str] = set()
    token = trigger
    seen_finite = False
    if trigger.pos_ in {"NOUN", "PROPN"} and trigger.dep_ in {"nsubj", "nsubjpass"}:
        # "His destination was not X": the copula's words describe the event, they do not deny it
        words.add(trigger.lemma_.lower())
        for child in trigger.children:
            if child.dep_ in CUE_DEPS:
                words.add(child.lower_)
        token = trigger.head
        seen_finite = True
    while True:
        words.add(token.lemma_.lower())
        words.add(token.lower_)
        if not seen_finite:
            for child in token.children:
                if child.dep_ in CUE_DEPS and not (child.dep_ == "neg" and _is_not_just(child)):
                    words.add(child.lower_)
                    words.add(child.lemma_.lower())
                    if child.dep_ == "neg":
                        words.add("never" if child.lower_ == "never" else "did not")
            if token.tag_ in FINITE_TAGS or any(c.tag_ in FINITE_TAGS for c in token.children if c.dep_ in {"aux", "auxpass"}):
                seen_finite = True
        if token.head.i == token.i:
            break
        token = token.head
    return words


def _is_not_just(neg: Token) -> bool:
    nxt = neg.nbor(1) if neg.i + 1 < len(neg.doc) else None
    return nxt is not None and nxt.lower_ in NOT_NEGATING


def _window(trigger: Token) -> str:
    """The sentence up to the trigger, lower case, padded for whole-phrase matching."""
    sent = trigger.sent
    text = trigger.doc[sent.start : trigger.i + 1].text.lower().replace("’", "'")
    return f" {' '.join(text.split())} "
