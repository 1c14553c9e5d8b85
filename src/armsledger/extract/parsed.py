"""A parsed document with the lookups the rules make over and over, read from spaCy once."""
from __future__ import annotations

from spacy.tokens import Doc, Span, Token

from armsledger.extract.syntax import is_heading


class ParsedDocument:
    """One spaCy Doc with its tokens, sentences and entities read out once, for one extraction.

    spaCy builds a new Python object on every access: `doc.ents` and `span.ents`
    walk the whole document, `span.text` joins its tokens, `doc[i]` and `token.sent`
    make new objects. The rules ask for the same ones thousands of times per
    document, so they ask here instead. It holds the Doc: let it go with the
    extraction.
    """

    def __init__(self, doc: Doc):
        self.doc = doc
        self.tokens: list[Token] = list(doc)
        self.text = "".join(t.text_with_ws for t in self.tokens)  # doc.text, without making every Token again
        self.lower: list[str] = [t.lower_ for t in self.tokens]
        self.lemma: list[str] = [t.lemma_.lower() for t in self.tokens]  # lower-cased, as every rule compares it
        self.ents: tuple[Span, ...] = doc.ents
        self.sents: list[Span] = list(doc.sents)
        self.sentence_of_token: list[int] = []
        for number, sent in enumerate(self.sents):
            self.sentence_of_token.extend([number] * (sent.end - sent.start))
        self.sent_texts: list[str] = [self.text[s.start_char : s.end_char] for s in self.sents]
        self.headings: list[bool] = [is_heading(s, t) for s, t in zip(self.sents, self.sent_texts)]
        self.sent_ents: list[list[Span]] = [[] for _ in self.sents]
        self.ent_of_token: dict[int, Span] = {}
        for ent in self.ents:
            number = self.sentence_of_token[ent.start]
            # as Span.ents: only the entities that lie wholly inside the sentence
            if ent.end <= self.sents[number].end:
                self.sent_ents[number].append(ent)
            for i in range(ent.start, ent.end):
                self.ent_of_token[i] = ent

    def sent(self, token_index: int) -> Span:
        """The sentence of a token (as token.sent, and span.sent for a span starting there)."""
        return self.sents[self.sentence_of_token[token_index]]

    def sent_text(self, token_index: int) -> str:
        return self.sent_texts[self.sentence_of_token[token_index]]

    def ents_in_sentence_of(self, token_index: int) -> list[Span]:
        """token.sent.ents."""
        return self.sent_ents[self.sentence_of_token[token_index]]

    def ent_in_sentence_at(self, token_index: int) -> Span | None:
        """The entity a token is part of, if it lies wholly in the token's sentence (from token.sent.ents)."""
        ent = self.ent_of_token.get(token_index)
        if ent is None:
            return None
        sent = self.sent(token_index)
        return ent if sent.start <= ent.start and ent.end <= sent.end else None

    def is_heading_at(self, token_index: int) -> bool:
        return self.headings[self.sentence_of_token[token_index]]

    def span_text(self, start: int, end: int) -> str:
        """doc[start:end].text."""
        if start >= end:
            return ""
        last = self.tokens[end - 1]
        return self.text[self.tokens[start].idx : last.idx + len(last)]
