"""Citations in one parsed document: reference markers, attributions to sources, and direct quotes."""
from __future__ import annotations

import re

from spacy.tokens import Span, Token

from armsledger.extract.actors import DocumentActors
from armsledger.extract.parsed import ParsedDocument
from armsledger.extract.records import CitationRecord
from armsledger.extract.resources import Resources

MARKER = re.compile(r"\[(?:(?:citation|cite|ref|note|source|fn)\.?\s*)?\d{1,4}[a-z]?(?:\s*[,–-]\s*\d{1,4})*\]", re.I)
QUOTE = re.compile(r"[\"“]([^\"“”]{2,2000}?)[\"”]")
ACCORDING = re.compile(r"\baccording to\b|\bas (?:noted|reported|stated|said|described|argued|observed|explained|put it|told)\b(?: by)?|\bin the words of\b|\bcited by\b", re.I)
MIN_QUOTE_WORDS = 4


class CitationFinder:
    """Markers by pattern, attributions by reporting verbs and phrases, quotes with their speakers."""

    def __init__(self, resources: Resources):
        lex = resources.lexicon
        self.resources = resources
        self.speech = set(lex["speech_verbs"])
        self.stance = set(lex["stance_adjectives"])
        self.communication = set(lex["communication_nouns"])
        self.groups = {w.lower() for w in lex["group_nouns"]}
        self.hedges = lex["hedges"]
        # a token whose lemma is in none of these cannot report a claim (see _attributions)
        self.claim_lemmas = self.speech | self.stance | self.communication

    def find(self, parsed: ParsedDocument, actors: DocumentActors) -> list[CitationRecord]:
        out: list[CitationRecord] = []
        for number, sent in enumerate(parsed.sents):
            text = parsed.sent_texts[number]
            out.extend(self._markers(sent, text))
            if parsed.headings[number]:
                continue
            quoted = self._quotes(sent, text, actors)
            out.extend(quoted)
            if not quoted:
                out.extend(self._attributions(sent, text, actors, parsed))
        return out

    def _markers(self, sent: Span, text: str) -> list[CitationRecord]:
        if "[" not in text:
            return []
        return [
            self._record("marker", sent, text, marker=m.group(0))
            for m in MARKER.finditer(text)
        ]

    def _attributions(self, sent: Span, text: str, actors: DocumentActors, parsed: ParsedDocument) -> list[CitationRecord]:
        found: dict[str, CitationRecord] = {}
        for m in ACCORDING.finditer(text):
            source = self._source_after(sent, sent.start_char + m.end(), actors)
            if source:
                key, words = source
                found.setdefault(key, self._record("attribution", sent, text, source=key, source_text=words))
        for i in range(sent.start, sent.end):
            lemma = parsed.lemma[i]
            if lemma not in self.claim_lemmas:
                continue
            token = parsed.tokens[i]
            subject_token = None
            # a source states a claim: the verb or stance takes a clause ("said that ...", "sceptical that ...")
            if token.pos_ in {"VERB", "AUX"} and lemma in self.speech and lemma != "be" and _takes_clause(token):
                subject_token = _subject_token(token)
            elif token.pos_ == "ADJ" and lemma in self.stance and token.dep_ == "acomp" and _takes_clause(token):
                subject_token = _subject_token(token.head)
            elif token.pos_ == "NOUN" and lemma in self.communication and token.dep_ == "dobj" and token.head.lemma_.lower() in {"issue", "publish", "release", "give", "make"}:
                subject_token = _subject_token(token.head) or _inherited_subject(token.head)
            if subject_token is None:
                continue
            source = self._source_at(subject_token, actors)
            if source:
                key, words = source
                found.setdefault(key, self._record("attribution", sent, text, source=key, source_text=words))
        return list(found.values())

    def _quotes(self, sent: Span, text: str, actors: DocumentActors) -> list[CitationRecord]:
        """One quote per speaker and sentence: a quotation broken by "he said" is one quotation."""
        out: list[CitationRecord] = []
        for m in QUOTE.finditer(text):
            quote = m.group(1).strip()
            if len(quote.split()) < MIN_QUOTE_WORDS:
                continue  # scare quotes around a word or two are not speech
            start, end = sent.start_char + m.start(), sent.start_char + m.end()
            speaker = self._speaker(sent, start, end, actors)
            if speaker is None:
                continue
            key, words = speaker
            same = next((c for c in out if c.source == key), None)
            if same is not None:
                same.quote = f"{same.quote} … {quote}"
                continue
            out.append(self._record("quote", sent, text, source=key, source_text=words, quote=quote))
        return out

    def _speaker(self, sent: Span, start: int, end: int, actors: DocumentActors):
        """The subject of a reporting verb outside the quotation marks, in the same sentence."""
        for token in sent:
            if start <= token.idx < end or token.pos_ not in {"VERB", "AUX"}:
                continue
            if token.lemma_.lower() not in self.speech:
                continue
            subject_token = _subject_token(token)
            if subject_token is not None and not (start <= subject_token.idx < end):
                source = self._source_at(subject_token, actors)
                if source:
                    return source
        return None

    def _source_at(self, token: Token, actors: DocumentActors):
        key = actors.actor_of(token) or next((actors.actor_of(c) for c in token.children if c.dep_ in {"compound", "appos"} and actors.actor_of(c)), None)
        if key:
            return key, token.doc[token.left_edge.i : token.i + 1].text if token.pos_ != "PRON" else token.text
        if token.lower_ in self.groups or token.lemma_.lower() in self.groups:
            phrase = token.doc[token.left_edge.i : token.i + 1]
            return actors.group(phrase), phrase.text
        return None

    def _source_after(self, sent: Span, char: int, actors: DocumentActors):
        """"according to X", "as noted by the analyst X": the first actor or group named after the phrase."""
        for token in sent:
            if token.idx < char:
                continue
            if token.lower_ in self.groups and token.i + 1 < len(token.doc):
                # "the researcher Hannah Lindqvist": the named person, not the group noun before the name
                named = actors.actor_of(token.doc[token.i + 1])
                if named and actors.info[named].type in {"person", "organization"}:
                    continue
            if actors.actor_of(token) and actors.info[actors.actor_of(token)].type != "state" or token.lower_ in self.groups:
                return self._source_at(token if not token.dep_ == "compound" else token.head, actors)
            if actors.actor_of(token):
                return self._source_at(token, actors)
            if token.is_punct and token.text in {",", ";"} and token.idx > char + 2:
                break
        return None

    def _record(self, kind: str, sent: Span, text: str, **fields) -> CitationRecord:
        """A citation of the sentence sent, whose text is text."""
        window = f" {text.lower()} "
        hedge = next((h for h in self.hedges if f" {h} " in window), None)
        return CitationRecord(kind=kind, sentence=text, char_start=sent.start_char, char_end=sent.end_char, hedge=hedge, **fields)


def _takes_clause(token: Token) -> bool:
    """"said that ...", and "accused Pyongyang of supplying ...": a claim the verb reports."""
    if any(c.dep_ in {"ccomp", "parataxis"} for c in token.children):
        return True
    return any(c.dep_ == "prep" and c.lower_ == "of" and any(g.dep_ == "pcomp" for g in c.children) for c in token.children)


def _subject_token(verb: Token) -> Token | None:
    for child in verb.children:
        if child.dep_ in {"nsubj", "nsubjpass"}:
            return child
    return None


def _inherited_subject(verb: Token) -> Token | None:
    current = verb
    for _ in range(4):
        if current.dep_ not in {"xcomp", "conj", "advcl"}:
            return None
        current = current.head
        found = _subject_token(current)
        if found is not None:
            return found
    return None
