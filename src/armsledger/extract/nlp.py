"""The spaCy pipeline: the English model with the gazetteer's names ruled in before NER."""
from __future__ import annotations

import spacy
from spacy.language import Language
from spacy.tokenizer import Tokenizer
from spacy.tokens import Doc

from armsledger.extract.resources import Resources

ACTOR_LABELS = {"person": "PERSON", "state": "GPE", "organization": "ORG", "group": "NORP"}
ACTOR_ID_PREFIX = "actor|"
PLACE_ID_PREFIX = "place|"


def load_pipeline(model: str, resources: Resources) -> Language:
    """Loads the model once and adds an entity ruler holding every gazetteer name.

    The ruler runs before the statistical NER so that known names keep their
    label and identity ("Vladivostok" is a place, "Panda" is a person).
    """
    nlp = spacy.load(model)
    nlp.tokenizer = _project_tokenizer(nlp)
    ruler = nlp.add_pipe("entity_ruler", before="ner", config={"overwrite_ents": True})
    patterns = []
    for actor in resources.actors:
        for form in {actor.name, *actor.aliases, *_variants(actor.aliases)}:
            patterns.append({"label": ACTOR_LABELS[actor.type], "pattern": form, "id": ACTOR_ID_PREFIX + actor.name})
    for place in resources.places:
        forms = {place.name} | {k for k, v in resources.place_aliases.items() if v == place.name}
        for form in forms:
            if form in resources.actor_by_alias:
                continue  # a capital is first an actor; its place reading is looked up by text
            label = "FAC" if place.kind == "facility" else "LOC"
            patterns.append({"label": label, "pattern": form, "id": PLACE_ID_PREFIX + place.name})
    ruler.add_patterns(sorted(patterns, key=lambda p: (p["id"], p["pattern"])))
    nlp.add_pipe("armsledger_name_continuations", after="entity_ruler", config={"continuations": _continuations(resources)})
    return nlp


def _continuations(resources: Resources) -> dict[str, list[str]]:
    """Word -> the words that continue it into a longer name ("North" -> "Korea", "Korean")."""
    table: dict[str, set[str]] = {}
    for actor in resources.actors:
        for form in (actor.name, *actor.aliases, *actor.demonyms):
            words = form.split()
            for a, b in zip(words, words[1:]):
                table.setdefault(a, set()).add(b)
    return {k: sorted(v) for k, v in sorted(table.items())}


@Language.factory("armsledger_name_continuations", default_config={"continuations": {}})
def _make_continuation_filter(nlp: Language, name: str, continuations: dict[str, list[str]]):
    """Drops a gazetteer match that is only the start of a longer name: "the North" in "the North Korean leader"."""
    following = {k: set(v) for k, v in continuations.items()}

    def drop_cut_names(doc: Doc) -> Doc:
        kept = []
        for ent in doc.ents:
            nxt = doc[ent.end] if ent.end < len(doc) else None
            if ent.ent_id_.startswith(ACTOR_ID_PREFIX) and nxt is not None and not ent[-1].whitespace_ == "" and nxt.text in following.get(ent[-1].text, ()):
                continue
            kept.append(ent)
        if len(kept) != len(doc.ents):
            doc.ents = kept
        return doc

    return drop_cut_names


def _project_tokenizer(nlp: Language) -> Tokenizer:
    """The model's tokenizer with two changes, made in one go: a tokenizer reloads its special cases each time
    one of its settings is set (0.1 s each).

    - "2024.[4][5]": a reference marker glued to the word or full stop before it is its own tokens.
    - "Im" is a Korean surname ("Im Chon Il"), not a misspelt "I'm".
    """
    from spacy.util import compile_infix_regex

    model = nlp.tokenizer
    infixes = list(nlp.Defaults.infixes) + [r"\.(?=\[)", r"[\[\]]"]
    return Tokenizer(
        nlp.vocab,
        rules={k: v for k, v in model.rules.items() if k != "Im"},
        prefix_search=model.prefix_search,
        suffix_search=model.suffix_search,
        infix_finditer=compile_infix_regex(infixes).finditer,
        token_match=model.token_match,
        url_match=model.url_match,
        faster_heuristics=model.faster_heuristics,
    )


def _variants(forms) -> set[str]:
    """Curly apostrophes, and a sentence-initial capital for names that begin with "the"."""
    out = set()
    for form in forms:
        if "'" in form:
            out.add(form.replace("'", "’"))
        if form.startswith("the "):
            out.add("The " + form[4:])
    return out
