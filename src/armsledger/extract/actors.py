"""Actors in one parsed document: names resolved to canonical actors, their mentions and references."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from spacy.tokens import Doc, Span, Token

from armsledger.extract.nlp import ACTOR_ID_PREFIX, PLACE_ID_PREFIX
from armsledger.extract.parsed import ParsedDocument
from armsledger.extract.records import ActorInfo, Mention, actor_key
from armsledger.extract.resources import KnownActor, Resources, country_code

SUBJECT_PRONOUNS = {"he", "she"}
PERSON_PRONOUNS = {"he", "him", "his", "she", "her", "himself", "herself"}
THING_PRONOUNS = {"it", "its"}
QUANTIFIERS = {"the", "a", "an", "some", "many", "several", "most", "few", "other", "these", "those", "two", "three", "both", "all", "various", "numerous"}
PERSON_COLLECTIVES = {"leader", "man", "men", "tyrant", "dictator", "president", "head", "strongman", "autocrat", "ally"}
STATE_COLLECTIVES = {"country", "nation", "state", "side", "government", "capital", "power", "regime", "neighbour", "neighbor", "partner"}
SUBJECT_DEPS = {"nsubj", "nsubjpass"}
NAME_LINKS = {"of", "for", "on", "and", "the", "de"}  # small words inside a body's name: "Institute for Strategic Analysis"


@dataclass
class DocumentActors:
    """The actors of one document and the token-level links to them."""

    resources: Resources
    info: dict[str, ActorInfo] = field(default_factory=dict)
    mentions: list[Mention] = field(default_factory=list)
    token_actor: dict[int, str] = field(default_factory=dict)
    pronoun_actor: dict[int, str] = field(default_factory=dict)

    def add(self, span: Span, info: ActorInfo, role: str | None = None) -> str:
        key = info.key
        known = self.info.setdefault(key, info)
        if role and not known.role:
            known.role = role
        if span.text != known.name and not (len(span) == 1 and span.text.islower()):
            known.aliases.add(span.text)
        self.mentions.append(Mention(span.start_char, span.end_char, span.text, key))
        for i in range(span.start, span.end):
            self.token_actor[i] = key
        return key

    def actor_of(self, token: Token) -> str | None:
        """The actor a token names or refers to (pronouns resolved), or None."""
        return self.token_actor.get(token.i) or self.pronoun_actor.get(token.i)

    def salient(self, type_: str, n: int) -> list[str]:
        counts = Counter(m.actor for m in self.mentions if self.info[m.actor].type == type_)
        return [k for k, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]

    def state_of(self, key: str | None) -> str | None:
        """The state an actor belongs to (itself for a state), registered if new."""
        if key is None:
            return None
        actor = self.info[key]
        if actor.type == "state":
            return key
        state = self.resources.state_for_country(actor.country)
        if state is None:
            return None
        return self.register(state)

    def register(self, known: KnownActor) -> str:
        """An actor referred to without a name of its own in the text (no mention row)."""
        info = self.info.setdefault(actor_key(known.name, known.type), _info(known))
        return info.key

    def group(self, phrase: Span) -> str:
        """An unnamed collective ("defence analysts", "US officials") as a group actor."""
        words = [t for t in phrase if not (t.lower_ in QUANTIFIERS and t.i == phrase.start)]
        while words and words[0].lower_ in QUANTIFIERS:
            words = words[1:]
        name = " ".join(t.text if (t.text.isupper() or t.pos_ == "PROPN" or (t.text[:1].isupper() and t.ent_type_ in {"NORP", "GPE"})) else t.lower_ for t in words)
        span = phrase.doc[words[0].i : words[-1].i + 1]
        country = _country_named_in(span, self.resources)
        return self.add(span, ActorInfo(name=name, type="group", country=country))

    def collective(self, token: Token) -> list[str]:
        """"the two leaders", "both countries": the document's two most salient actors of that kind."""
        if token.lower_ in {"two", "both"}:
            # "two of the most hostile nations"
            token = next((o for p in token.children if p.dep_ == "prep" and p.lower_ == "of" for o in p.children if o.dep_ == "pobj"), token)
            numbers = {"two"}
        else:
            numbers = {c.lower_ for c in token.children if c.dep_ in {"nummod", "det", "predet"}}
        if not numbers & {"two", "both"}:
            return []
        if token.lemma_ in PERSON_COLLECTIVES:
            return self.salient("person", 2)
        if token.lemma_ in STATE_COLLECTIVES:
            return self.salient("state", 2)
        return []


def _info(known: KnownActor) -> ActorInfo:
    return ActorInfo(known.name, known.type, known.country, known.role, known.wikidata_id, set())


def find_actors(parsed: ParsedDocument, resources: Resources) -> DocumentActors:
    """Named actors, leaders described by their country, and pronouns resolved to people."""
    actors = DocumentActors(resources)
    titles = resources.title_words
    full_names = _full_person_names(parsed, titles)
    for ent in parsed.ents:
        if ent.ent_id_.startswith(PLACE_ID_PREFIX):
            continue
        if parsed.is_heading_at(ent.start):
            continue
        if ent.ent_id_.startswith(ACTOR_ID_PREFIX):
            _add_known(actors, ent, resources, titles, full_names, parsed)
        elif ent.label_ == "PERSON":
            _add_person(actors, ent, resources, titles, full_names, parsed)
        elif ent.label_ == "GPE":
            _add_state(actors, ent, resources)
        elif ent.label_ == "ORG":
            _add_organization(actors, ent, resources, full_names, parsed)
    _add_described_leaders(actors, parsed, resources)
    _add_administrations(actors, parsed)
    _add_named_bodies(actors, parsed, resources)
    _add_states_inside_names(actors, parsed.doc, resources)
    _absorb(actors, resources)
    actors.mentions.sort(key=lambda m: (m.char_start, m.char_end))
    _resolve_pronouns(actors, parsed)
    return actors


def _name_tokens(ent: Span, titles: frozenset[str], parsed: ParsedDocument) -> tuple[Span, str | None]:
    """The name without titles or possessive, widened over adjacent capitalised name tokens."""
    doc, tokens, lower, sentence_of_token = parsed.doc, parsed.tokens, parsed.lower, parsed.sentence_of_token
    sentence = sentence_of_token[ent.start]
    start, end = ent.start, ent.end
    while start > 0 and _is_name_token(tokens[start - 1]) and lower[start - 1] not in titles and sentence_of_token[start - 1] == sentence:
        start -= 1
    while end < len(tokens) and _is_name_token(tokens[end]) and lower[end] not in titles and sentence_of_token[end] == sentence:
        end += 1
    role_tokens = []
    while start < end and (lower[start] in titles or lower[start] in {"the", "a"}):
        role_tokens.append(start)
        start += 1
    # titles directly before the widened name also give the role
    if not role_tokens:
        i = start - 1
        while i >= 0 and lower[i] in titles and sentence_of_token[i] == sentence:
            role_tokens.insert(0, i)
            i -= 1
    while end > start and tokens[end - 1].text in {"'s", "’s", "'", "’"}:
        end -= 1
    words = [i for i in role_tokens if lower[i] not in {"the", "a"}]
    role = parsed.span_text(words[0], words[-1] + 1) if words else None
    return doc[start:end], role


def _is_name_token(token: Token) -> bool:
    return token.pos_ == "PROPN" and token.text[:1].isupper() and token.ent_type_ in {"", "PERSON"} and token.is_alpha


def _full_person_names(parsed: ParsedDocument, titles: frozenset[str]) -> dict[str, str]:
    """Single name parts ("Panda", "Shoigu") to the full names of people in the document."""
    parts: dict[str, str] = {}
    for ent in parsed.ents:
        if ent.label_ != "PERSON":
            continue
        name, _ = _name_tokens(ent, titles, parsed)
        if len(name) >= 2:
            full = name.text
            for token in name:
                parts.setdefault(token.text, full)
    return parts


def _add_known(actors, ent, resources, titles, full_names, parsed) -> None:
    known = resources.actor_by_name[ent.ent_id_[len(ACTOR_ID_PREFIX):]]
    if known.type == "person":
        name, role = _name_tokens(ent, titles, parsed)
        if name.text not in resources.actor_by_alias and len(name) > len(ent):
            # "Kim" of the gazetteer followed by more of a name is someone else
            _add_person(actors, ent, resources, titles, full_names, parsed)
            return
        actors.add(name if len(name) else ent, _info(known), role)
        return
    actors.add(ent, _info(known))


def _add_person(actors, ent, resources, titles, full_names, parsed) -> None:
    name, role = _name_tokens(ent, titles, parsed)
    if not len(name):
        return
    if name.root.dep_ == "compound" and name.root.head.pos_ == "NOUN":
        return  # "a Mao suit": a name used as a modifier
    if resources.place(name.text):
        return
    known = resources.actor_by_alias.get(name.text)
    if known is not None:
        actors.add(name, _info(known), role)
        return
    if len(name) == 1 and name.text in full_names and full_names[name.text] != name.text:
        full = full_names[name.text]
        known = resources.actor_by_alias.get(full)
        info = _info(known) if known else ActorInfo(full, "person")
        actors.add(name, info, role)
        return
    appos = _apposition(name)
    country = _country_near(name, resources, parsed) or (_country_named_in(appos, resources) if appos is not None else None)
    info = ActorInfo(name.text, "person", country=country)
    actors.add(name, info, role or _apposition_role(name))


def _add_state(actors, ent, resources) -> None:
    text = ent.text
    for suffix in ("'s", "’s"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    if resources.place(text):
        return
    known = resources.actor_by_alias.get(text)
    if known is None:
        code = country_code(text)
        known = resources.state_for_country(code) if code else None
    if known is None:
        return
    span = ent.doc.char_span(ent.start_char, ent.start_char + len(text)) or ent
    actors.add(span, _info(known))


def _add_organization(actors, ent, resources, full_names, parsed) -> None:
    span = ent
    if span[0].lower_ == "the":
        span = span[1:]
    while len(span) and span[-1].text in {"'s", "’s"}:
        span = span[:-1]
    if not len(span):
        return
    known = resources.actor_by_alias.get(span.text)
    if known is not None:
        actors.add(span, _info(known))
        return
    if len(span) == 1 and span.text in full_names:
        # the NER's "Panda" for the analyst Ankit Panda
        full = full_names[span.text]
        known = resources.actor_by_alias.get(full)
        actors.add(span, _info(known) if known else ActorInfo(full, "person"))
        return
    heads = resources.words("organization_heads")
    named_body = all(t.text[:1].isupper() or t.lower_ in NAME_LINKS for t in span) and span[0].text[:1].isupper()
    if len(span) >= 2 and (span[-1].lower_ in heads or (named_body and any(t.lower_ in heads for t in span))) and all(t.is_alpha or t.text in {"'", "’", "-", "&", "."} for t in span):
        actors.add(span, ActorInfo(span.text, "organization", country=_country_near(span, resources, parsed)))


def _add_described_leaders(actors, parsed: ParsedDocument, resources) -> None:
    """"the North Korean leader", "Russia's president": the leader the gazetteer knows."""
    doc = parsed.doc
    leader_nouns = resources.words("leader_nouns")
    for i, lemma in enumerate(parsed.lemma):
        if lemma not in leader_nouns or i in actors.token_actor:
            continue
        token = parsed.tokens[i]
        if token.tag_ != "NN":
            continue
        country = None
        start = token.i
        for child in token.children:
            if child.dep_ in {"amod", "compound", "poss"}:
                state = _state_named_by(child, parsed, resources, actors)
                if state is not None:
                    country = state.country
                    start = min(start, _span_start(child, parsed))
        leader = resources.leader_by_country.get(country) if country else None
        if leader is None:
            continue
        span = doc[start : token.i + 1]
        if any(j in actors.token_actor for j in range(start, token.i + 1)):
            # "Russia's leader": keep Russia's own mention, add the leader word only
            span = doc[token.i : token.i + 1]
        actors.add(span, _info(leader))


def _state_named_by(token: Token, parsed: ParsedDocument, resources: Resources, actors: DocumentActors) -> KnownActor | None:
    key = actors.token_actor.get(token.i)
    if key and actors.info[key].type == "state":
        return resources.actor_by_name.get(actors.info[key].name) or resources.state_for_country(actors.info[key].country)
    if token.ent_type_ == "NORP":
        ent = parsed.ent_of_token.get(token.i)
        if ent is not None:
            return resources.state_by_demonym.get(ent.text)
    return resources.state_by_demonym.get(token.text)


def _span_start(token: Token, parsed: ParsedDocument) -> int:
    ent = parsed.ent_of_token.get(token.i)
    return ent.start if ent is not None else token.i


def _add_administrations(actors, parsed: ParsedDocument) -> None:
    """"the Trump administration": a government named after the person who leads it."""
    doc = parsed.doc
    for i, lower in enumerate(parsed.lower):
        if lower != "administration" or i == 0:
            continue
        token = parsed.tokens[i]
        prev = parsed.tokens[i - 1]
        key = actors.token_actor.get(prev.i)
        if key and actors.info[key].type == "person":
            person = actors.info[key]
            span = doc[prev.i : token.i + 1]
            # the person's own mention gives way to the administration's
            actors.mentions = [m for m in actors.mentions if not (m.char_start >= span.start_char and m.char_end <= span.end_char)]
            for j in range(span.start, span.end):
                actors.token_actor.pop(j, None)
            actors.add(span, ActorInfo(f"{person.name.split()[-1]} administration", "organization", country=person.country))


def _add_named_bodies(actors: DocumentActors, parsed: ParsedDocument, resources: Resources) -> None:
    """"the Conflict Armament Research group": capitalised names before a body's lower-case head noun."""
    doc, tokens = parsed.doc, parsed.tokens
    heads = resources.words("organization_heads")
    for i, lower in enumerate(parsed.lower):
        if lower not in heads:
            continue
        token = tokens[i]
        if not token.is_lower or i in actors.token_actor or token.pos_ != "NOUN":
            continue
        start = i
        sent_start = parsed.sent(i).start
        while start > sent_start and tokens[start - 1].pos_ == "PROPN" and tokens[start - 1].text[:1].isupper() and tokens[start - 1].is_alpha and start - 1 not in actors.token_actor and tokens[start - 1].ent_type_ not in {"GPE", "PERSON", "NORP", "DATE"}:
            start -= 1
        if i - start < 2:
            continue
        span = doc[start : i + 1]
        actors.add(span, ActorInfo(span.text, "organization", country=_country_near(span, resources, parsed)))


def _country_named_in(span: Span, resources: Resources) -> str | None:
    """The state a phrase names by demonym or name, one or two words long ("South Korean officials")."""
    country = None
    tokens = list(span)
    for i, token in enumerate(tokens):
        for text in ([f"{token.text} {tokens[i + 1].text}"] if i + 1 < len(tokens) else []) + [token.text]:
            state = resources.state_by_demonym.get(text) or resources.actor_by_alias.get(text)
            if state is not None and state.type == "state":
                country = state.country
                break
    return country


def _country_near(span: Span, resources: Resources, parsed: ParsedDocument) -> str | None:
    """The country a new name belongs to, where its own phrase says (a demonym or a state)."""
    sent_start = parsed.sent(span.start).start
    for token in parsed.tokens[max(span.start - 4, sent_start) : span.end]:
        state = resources.state_by_demonym.get(token.text) or resources.actor_by_alias.get(token.text)
        if state is not None and state.type == "state":
            return state.country
    for ent in parsed.ents:
        if ent.label_ == "NORP" and sent_start <= ent.start and ent.end <= span.start and span.start - ent.end <= 4:
            state = resources.state_by_demonym.get(ent.text)
            if state is not None:
                return state.country
    return None


def _apposition(name: Span) -> Span | None:
    """The noun phrase set off by commas after a name ("Ko, North Korea's minister of X,"), if any."""
    for child in name.root.children:
        if child.dep_ == "appos" and child.pos_ == "NOUN" and child.i > name.end - 1:
            words = [t for t in child.subtree if not t.is_punct]
            if not words or len(words) > 12:
                return None
            after = name.doc[words[-1].i + 1] if words[-1].i + 1 < len(name.doc) else None
            if after is not None and not (after.is_punct or after.is_sent_end):
                return None  # "X, rail traffic has tripled": a clause, not an apposition
            start = words[0].i + (1 if words[0].lower_ in {"the", "a", "an"} else 0)
            return name.doc[start : words[-1].i + 1]
    return None


def _apposition_role(name: Span) -> str | None:
    """"Jo Chun Ryong, the director of ...": the role an apposition gives."""
    root = name.root
    for child in root.children:
        if child.dep_ == "appos" and child.pos_ == "NOUN":
            appos = _apposition(name)
            return appos.text if appos is not None and len(appos) else None
    if root.dep_ == "appos" and root.head.pos_ == "NOUN":
        words = [t for t in root.head.subtree if t.i < name.start and not t.is_punct]
        if words and len(words) <= 12:
            return " ".join(t.text for t in words if t.lower_ not in {"the", "a", "an"})
    return None


def _resolve_pronouns(actors: DocumentActors, parsed: ParsedDocument) -> None:
    """he/his/she/her to the person last named (subject pronouns prefer the last subject); its to a state or body named earlier in the sentence."""
    last_person = last_subject = None
    last_thing_in_sentence: dict[int, str] = {}
    thing_subject_of_sentence: dict[int, str] = {}  # a state or body named as a sentence's subject
    previous_sentence: dict[int, int] = {}
    sentences = parsed.sents
    for before, after in zip(sentences, sentences[1:]):
        previous_sentence[after.start] = before.start
    # every other token changes nothing below
    pronouns = {i for i, lower in enumerate(parsed.lower) if lower in PERSON_PRONOUNS or lower in THING_PRONOUNS}
    for i in sorted(pronouns.union(actors.token_actor)):
        token = parsed.tokens[i]
        key = actors.token_actor.get(i)
        if key is not None:
            kind = actors.info[key].type
            if kind == "person":
                last_person = key
                if token.dep_ in SUBJECT_DEPS or (token.head.dep_ in SUBJECT_DEPS and token.dep_ in {"compound", "appos"}):
                    last_subject = key
            elif kind in {"state", "organization"}:
                sent_start = parsed.sent(i).start
                last_thing_in_sentence[sent_start] = key
                if token.dep_ in SUBJECT_DEPS or (token.head.dep_ in SUBJECT_DEPS and token.dep_ == "compound"):
                    thing_subject_of_sentence.setdefault(sent_start, key)
            continue
        lower = parsed.lower[i]
        if lower in PERSON_PRONOUNS:
            if lower in SUBJECT_PRONOUNS and token.dep_ in SUBJECT_DEPS:
                referent = last_subject or last_person
            else:
                referent = last_person
            if referent:
                actors.pronoun_actor[token.i] = referent
                if token.dep_ in SUBJECT_DEPS:
                    last_subject = referent
        elif lower in THING_PRONOUNS and parsed.sent(i).start in last_thing_in_sentence:
            actors.pronoun_actor[token.i] = last_thing_in_sentence[parsed.sent(i).start]
        elif lower == "it" and token.dep_ in SUBJECT_DEPS and i == parsed.sent(i).start:
            # "Russia has ... . It has sold ...": a sentence opening on "it" continues the last one's named subject
            referent = thing_subject_of_sentence.get(previous_sentence.get(parsed.sent(i).start, -1))
            if referent:
                actors.pronoun_actor[token.i] = referent


def _add_states_inside_names(actors: DocumentActors, doc: Doc, resources: Resources) -> None:
    """"US intelligence", "U.S. State Department": the state named inside a body's name."""
    for mention in list(actors.mentions):
        if actors.info[mention.actor].type not in {"organization", "group"}:
            continue
        span = doc.char_span(mention.char_start, mention.char_end)
        for token in span or ():
            known = resources.actor_by_alias.get(token.text)
            if known is not None and known.type == "state":
                actors.mentions.append(Mention(token.idx, token.idx + len(token.text), token.text, actors.register(known)))


def _absorb(actors: DocumentActors, resources: Resources) -> None:
    """A body named in full stands for its parent's bare name in the same text (UN -> UN Security Council)."""
    present = {actors.info[m.actor].name for m in actors.mentions}
    for name in sorted(present):
        known = resources.actor_by_name.get(name)
        if known is None or not known.absorbs:
            continue
        target = actor_key(known.name, known.type)
        absorbed = {actor_key(n, resources.actor_by_name[n].type) for n in known.absorbs if n in resources.actor_by_name}
        for i, mention in enumerate(actors.mentions):
            if mention.actor in absorbed:
                actors.mentions[i] = Mention(mention.char_start, mention.char_end, mention.text, target)
                actors.info[target].aliases.add(mention.text)
        for index, key in list(actors.token_actor.items()):
            if key in absorbed:
                actors.token_actor[index] = target
