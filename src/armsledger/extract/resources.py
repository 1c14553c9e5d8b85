"""Curated reference data (data/actors.yaml, places.yaml, lexicon.yaml) as lookup tables."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pycountry

from armsledger.config import DATA_DIR
from armsledger.yaml_files import load_yaml

RESOURCE_FILES = ("actors.yaml", "places.yaml", "lexicon.yaml")


@dataclass(frozen=True)
class KnownActor:
    name: str
    type: str
    country: str | None
    role: str | None
    wikidata_id: str | None
    aliases: tuple[str, ...]
    demonyms: tuple[str, ...] = ()
    leader_of: str | None = None
    absorbs: tuple[str, ...] = ()  # actors that this one stands for when both are named


@dataclass(frozen=True)
class Place:
    name: str
    country: str | None
    lat: float | None
    lon: float | None
    kind: str


@dataclass(frozen=True)
class Resources:
    """Gazetteers and vocabularies, loaded once and passed to the extractor."""

    actors: tuple[KnownActor, ...]
    places: tuple[Place, ...]
    place_aliases: dict[str, str]
    lexicon: dict
    fingerprint: str

    @cached_property
    def actor_by_name(self) -> dict[str, KnownActor]:
        return {a.name: a for a in self.actors}

    @cached_property
    def actor_by_alias(self) -> dict[str, KnownActor]:
        """Every surface form (canonical name included) to its actor; case kept."""
        table: dict[str, KnownActor] = {}
        for actor in self.actors:
            for form in (actor.name, *actor.aliases):
                for variant in _quote_variants(form):
                    table.setdefault(variant, actor)
        return table

    @cached_property
    def actor_by_lower_alias(self) -> dict[str, KnownActor]:
        # Only multi-character, multi-word or long forms: "us" must not match "US".
        return {k.lower(): v for k, v in self.actor_by_alias.items() if len(k) > 4 or " " in k}

    @cached_property
    def state_by_country(self) -> dict[str, KnownActor]:
        return {a.country: a for a in self.actors if a.type == "state" and a.country}

    @cached_property
    def state_by_demonym(self) -> dict[str, KnownActor]:
        return {d: a for a in self.actors if a.type == "state" for d in a.demonyms}

    @cached_property
    def leader_by_country(self) -> dict[str, KnownActor]:
        return {a.leader_of: a for a in self.actors if a.leader_of}

    @cached_property
    def place_by_name(self) -> dict[str, Place]:
        return {p.name: p for p in self.places}

    def place(self, text: str) -> Place | None:
        name = self.place_aliases.get(text) or self.place_aliases.get(text.lower())
        return self.place_by_name.get(name) if name else None

    def state_for_country(self, code: str | None) -> KnownActor | None:
        """The state actor of an ISO3 code: the gazetteer's, else one built from pycountry."""
        if not code:
            return None
        if code in self.state_by_country:
            return self.state_by_country[code]
        country = pycountry.countries.get(alpha_3=code)
        if country is None:
            return None
        return KnownActor(
            name=getattr(country, "common_name", None) or country.name,
            type="state", country=code, role=None, wikidata_id=None, aliases=(),
        )

    @cached_property
    def title_words(self) -> frozenset[str]:
        """Every word of a title, lower case: "Lieutenant General", "Deputy Defence Minister"."""
        return frozenset(w for t in self.lexicon["titles"] for w in t.lower().split())

    @cached_property
    def _word_sets(self) -> dict[str, frozenset[str]]:
        return {}

    def words(self, key: str) -> frozenset[str]:
        """The lexicon's list under key, lower case; built once per key, as rules ask for it per token."""
        found = self._word_sets.get(key)
        if found is None:
            found = self._word_sets[key] = frozenset(w.lower() for w in self.lexicon[key])
        return found


def _quote_variants(form: str) -> tuple[str, ...]:
    if "'" in form:
        return (form, form.replace("'", "’"))
    if "’" in form:
        return (form, form.replace("’", "'"))
    return (form,)


def country_code(text: str) -> str | None:
    """ISO3 code of a country name, or None; pycountry knows official and common names."""
    try:
        return pycountry.countries.lookup(text).alpha_3
    except LookupError:
        return None


def load_resources(data_dir: Path = DATA_DIR) -> Resources:
    """Reads the gazetteers and the lexicon; the fingerprint changes when any of them does."""
    digest = hashlib.sha256()
    raw = {}
    for name in RESOURCE_FILES:
        content = (data_dir / name).read_bytes()
        digest.update(name.encode() + b"\0" + content)
        raw[name] = load_yaml(content)
    actors = []
    for section, kind in (("states", "state"), ("organizations", "organization"), ("people", "person")):
        for entry in raw["actors.yaml"][section]:
            actors.append(
                KnownActor(
                    name=entry["name"],
                    type=kind,
                    country=entry.get("country"),
                    role=entry.get("role"),
                    wikidata_id=entry.get("wikidata_id"),
                    aliases=tuple(entry.get("aliases") or ()),
                    demonyms=tuple(entry.get("demonyms") or ()),
                    leader_of=entry.get("leader_of"),
                    absorbs=tuple(entry.get("absorbs") or ()),
                )
            )
    places = []
    aliases: dict[str, str] = {}
    for entry in raw["places.yaml"]:
        places.append(Place(entry["name"], entry.get("country"), entry.get("lat"), entry.get("lon"), entry.get("kind", "place")))
        for form in (entry["name"], *(entry.get("aliases") or ())):
            for variant in _quote_variants(form):
                aliases.setdefault(variant, entry["name"])
                aliases.setdefault(variant.lower(), entry["name"])
    return Resources(
        actors=tuple(actors),
        places=tuple(places),
        place_aliases=aliases,
        lexicon=raw["lexicon.yaml"],
        fingerprint=digest.hexdigest()[:16],
    )
