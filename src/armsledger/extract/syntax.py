"""Who does what in a parsed sentence: subjects, objects and the actors they name."""
from __future__ import annotations

from typing import TYPE_CHECKING

from spacy.tokens import Span, Token

if TYPE_CHECKING:
    from armsledger.extract.actors import DocumentActors

SUBJECT_DEPS = {"nsubj", "nsubjpass", "csubj"}
OBJECT_DEPS = {"dobj", "dative", "attr", "oprd"}
CONTROL_DEPS = {"xcomp", "advcl", "pcomp", "conj", "ccomp", "acl", "prep", "pobj", "relcl", "dobj", "acomp"}


def conjuncts(token: Token) -> list[Token]:
    return [token, *token.conjuncts]


def actors_of(token: Token, actors: DocumentActors) -> list[str]:
    """Actors named by a phrase's head and its conjuncts ("Putin and Kim"), collectives included."""
    found: list[str] = []
    for head in conjuncts(token):
        key = actors.actor_of(head)
        if key is None:
            key = _actor_in_compound(head, actors)
        if key is not None:
            found.append(key)
        else:
            found.extend(actors.collective(head))
    return list(dict.fromkeys(found))


def _actor_in_compound(token: Token, actors: DocumentActors) -> str | None:
    """"Defense Minister Sergei Shoigu", "the Russian leader": the actor inside the phrase's own name."""
    for child in token.children:
        if child.dep_ in {"compound", "appos"}:
            key = actors.actor_of(child)
            if key is not None and child.i > token.i - 4:
                return key
    return None


def subject(token: Token, actors: DocumentActors) -> list[str]:
    """Actors that are the subject of a verb, inherited from the governing clause when it has none.

    "By hosting Kim, Putin sent ...": the subject of "hosting" is Putin; "who had
    visited": the person the relative clause hangs on.
    """
    current = token
    for _ in range(8):
        for child in current.children:
            if child.dep_ in SUBJECT_DEPS:
                if child.lower_ in {"who", "which", "that"} and current.dep_ == "relcl":
                    key = actors.actor_of(current.head) or _actor_in_compound(current.head, actors)
                    return [key] if key else []
                found = actors_of(child, actors)
                if found:
                    return found
                if child.pos_ in {"NOUN", "PROPN", "PRON"}:
                    return []
        if current.dep_ == "relcl" and not any(c.lower_ == "to" and c.dep_ == "aux" for c in current.children):
            # "Shoigu, who had visited": the person the clause hangs on, not their conjuncts
            key = actors.actor_of(current.head) or _actor_in_compound(current.head, actors)
            return [key] if key else []
        if current.dep_ not in CONTROL_DEPS or current.head.i == current.i:
            return []
        current = current.head
    return []


def agent(verb: Token, actors: DocumentActors) -> list[str]:
    """The by-phrase of a passive verb."""
    for child in verb.children:
        if child.dep_ == "agent":
            for obj in child.children:
                if obj.dep_ == "pobj":
                    return actors_of(obj, actors)
    return []


def prep_objects(token: Token, preps: set[str]) -> list[Token]:
    """Objects of the given prepositions attached to the token."""
    out = []
    for child in token.children:
        if child.dep_ == "prep" and child.lower_ in preps:
            out.extend(c for c in child.children if c.dep_ == "pobj")
    return out


def direct_objects(token: Token) -> list[Token]:
    return [c for c in token.children if c.dep_ in {"dobj", "dative"}]


def is_heading(sent: Span, sent_text: str) -> bool:
    """Section headings ("49.2 The Inversion of ...") are titles, not prose. sent_text is sent.text."""
    text = sent_text.strip()
    if not text or text[-1] in ".!?\"”’)]" or len(text.split()) > 12:
        return False
    doc = sent.doc
    return sent.end >= len(doc) or "\n" in sent_text[len(sent_text.rstrip(" ")) - 1 :] or "\n" in doc[sent.end - 1].whitespace_ + doc[min(sent.end, len(doc) - 1)].text
