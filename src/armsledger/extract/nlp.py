"""The spaCy pipeline: the English model with the gazetteer's names ruled in before NER."""
from __future__ import annotations

import spacy
from spacy.language import Language

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
    return nlp


def _variants(forms) -> set[str]:
    out = set()
    for form in forms:
        if "'" in form:
            out.add(form.replace("'", "’"))
    return out
