"""Events in one parsed document: triggers, participants, date, place and status, merged within the text."""
from __future__ import annotations

from dataclasses import dataclass

from spacy.tokens import Token

from armsledger.extract.actors import DocumentActors
from armsledger.extract.context import NO_DATE, DocumentContext
from armsledger.extract.parsed import ParsedDocument
from armsledger.extract.records import Evidence, EventRecord
from armsledger.extract.resources import Resources
from armsledger.extract.status import event_status, read_status
from armsledger.extract import syntax

SCENE_TYPES = {"travel", "meeting", "tour", "negotiation"}
NEEDS_NAMED_PARTIES = {"armed_conflict", "agreement", "sanction", "veto", "statement", "launch"}
NEEDS_INITIATOR = {"sanction", "statement", "launch"}
STATE_PARTIES = {"agreement", "armed_conflict", "sanction", "veto"}
LIGHT_VERBS = {"make", "hold", "embark", "begin", "conduct", "carry", "issue", "undertake", "pay", "launch", "start", "stage", "have", "wage", "impose", "finalise", "finalize", "sign", "reach", "strike", "seal", "conclude"}
MEETING_VERBS_ON_PEOPLE = {"visit"}
PLACING_VERBS = {"place", "put", "loft"}


@dataclass
class _Candidate:
    record: EventRecord
    explicit: bool  # participants named in the sentence itself
    definite_noun: bool  # "the meeting", "his meeting with Kim": may refer back
    has_cue: bool


def find_events(parsed: ParsedDocument, actors: DocumentActors, context: DocumentContext, resources: Resources) -> list[EventRecord]:
    """Events reported in the document, one record per event after merging its mentions."""
    triggers = _trigger_table(resources)
    # _event_type finds nothing in a word whose lemma is none of these
    possible_lemmas = triggers["VERB"].keys() | triggers["NOUN"].keys() | PLACING_VERBS
    candidates: list[_Candidate] = []
    for number, sent in enumerate(parsed.sents):
        if parsed.headings[number]:
            continue
        for i in range(sent.start, sent.end):
            if parsed.lemma[i] not in possible_lemmas:
                continue
            token = parsed.tokens[i]
            event_type = _event_type(token, triggers, actors, resources)
            if event_type is None or _folded_into_other(token, triggers):
                continue
            candidate = _candidate(token, event_type, actors, context, resources, parsed)
            if candidate is not None:
                candidates.append(candidate)
    return _merge(_resolve_unnamed(candidates, actors))


def _trigger_table(resources: Resources) -> dict[str, dict[str, str]]:
    verbs: dict[str, str] = {}
    nouns: dict[str, str] = {}
    for event_type, spec in resources.lexicon["event_triggers"].items():
        for lemma in spec.get("verbs", ()):
            verbs.setdefault(lemma, event_type)
        for lemma in spec.get("nouns", ()):
            nouns.setdefault(lemma, event_type)
    return {"VERB": verbs, "NOUN": nouns}


def _event_type(token: Token, triggers, actors: DocumentActors, resources: Resources) -> str | None:
    lemma = token.lemma_.lower()
    if token.pos_ == "VERB":
        event_type = triggers["VERB"].get(lemma)
        if event_type is None:
            return _object_led_type(token, resources)
        required = resources.lexicon.get("event_objects", {}).get(event_type)
        if required and not _has_object(token, required):
            return None
        if lemma in MEETING_VERBS_ON_PEOPLE and any(
            actors.actor_of(o) and actors.info[actors.actor_of(o)].type == "person" for o in syntax.direct_objects(token)
        ):
            return "meeting"
        return event_type
    if token.pos_ in {"NOUN", "PROPN"} and token.tag_ in {"NN", "NNS"}:
        event_type = triggers["NOUN"].get(lemma)
        if event_type is None or token.dep_ == "attr" or token.ent_type_ in {"ORG", "WORK_OF_ART", "PERSON", "GPE"}:
            return None
        if token.dep_ == "compound" and event_type not in {"armed_conflict"}:
            return None
        if token.dep_ == "dobj" and token.head.pos_ == "VERB" and triggers["VERB"].get(token.head.lemma_.lower()) == event_type:
            return None  # "signed the treaty with Kim": one event, read from its verb
        return event_type
    return None


def _object_led_type(verb: Token, resources: Resources) -> str | None:
    """"place a satellite in orbit": a launch named by its object."""
    if verb.lemma_.lower() in PLACING_VERBS:
        objects = {o.lemma_.lower() for o in syntax.direct_objects(verb)}
        if objects & set(resources.lexicon["launch_objects"]):
            return "launch"
    return None


def _has_object(verb: Token, required: list[str]) -> bool:
    objects = syntax.direct_objects(verb) + [c for c in verb.children if c.dep_ == "nsubjpass"]
    return any(o.lemma_.lower() in required or any(c.lemma_.lower() in required for c in o.children if c.dep_ == "compound") for o in objects)


def _folded_into_other(token: Token, triggers) -> bool:
    """"visited Pyongyang to inspect its arms fair": a purpose clause belongs to the event it serves."""
    if token.dep_ not in {"xcomp", "advcl"}:
        return False
    head = token.head
    return head.lemma_.lower() in triggers["VERB"] and head.lemma_.lower() not in {"host", "greet", "receive"} and token.pos_ == "VERB" and head.lemma_.lower() != token.lemma_.lower() and head.dep_ != "xcomp"


def _candidate(token: Token, event_type: str, actors: DocumentActors, context: DocumentContext, resources: Resources, parsed: ParsedDocument) -> _Candidate | None:
    participants = _participants(token, event_type, actors)
    explicit = bool(participants)
    if event_type in NEEDS_INITIATOR and token.pos_ == "VERB" and not (syntax.subject(token, actors) or syntax.agent(token, actors)):
        return None
    if event_type in STATE_PARTIES:
        participants = list(dict.fromkeys(filter(None, (actors.state_of(p) for p in participants))))
        participants += [p for p in _places_as_parties(token, actors, context) if p not in participants] if event_type == "armed_conflict" else []
        explicit = bool(participants)
    if not explicit and event_type in NEEDS_NAMED_PARTIES:
        return None
    reading = read_status(token, resources)
    date = context.date_for(token)
    place = context.place_for(token)
    sent = parsed.sent(token.i)
    spec = resources.lexicon["event_triggers"][event_type]
    record = EventRecord(
        event_type=event_type,
        plover_type=spec.get("plover"),
        actors=participants,
        date=date,
        place=place.name if place else None,
        place_country=place.country if place else None,
        latitude=place.lat if place else None,
        longitude=place.lon if place else None,
        status=event_status(reading),
        evidence=[Evidence(parsed.sent_text(token.i), sent.start_char, sent.end_char, reading.hedge, reading.cue is not None)],
        trigger_start=token.idx,
    )
    definite = token.pos_ == "NOUN" and any(c.dep_ in {"det", "poss"} and c.lower_ not in {"a", "an"} for c in token.children)
    return _Candidate(record, explicit, definite, reading.cue is not None)


def _participants(trigger: Token, event_type: str, actors: DocumentActors) -> list[str]:
    """Initiator first: the subject (or possessor), then the others the phrase names."""
    found: list[str] = []
    if trigger.pos_ == "VERB":
        found += syntax.subject(trigger, actors) if trigger.dep_ != "nsubjpass" else []
        found += syntax.agent(trigger, actors)
        if event_type != "travel":
            for obj in syntax.direct_objects(trigger):
                found += syntax.actors_of(obj, actors)
                # "signed a treaty with Kim", "held talks with Lavrov": the object's own partners
                for partner in syntax.prep_objects(obj, {"with", "between"}):
                    found += syntax.actors_of(partner, actors)
        for obj in syntax.prep_objects(trigger, {"with", "between", "against"}):
            found += syntax.actors_of(obj, actors)
    else:
        for child in trigger.children:
            if child.dep_ in {"poss", "compound", "nmod"} or (child.dep_ == "amod" and child.ent_type_ in {"NORP", "GPE"}):
                found += syntax.actors_of(child, actors) or _demonym_state(child, actors)
        for obj in syntax.prep_objects(trigger, {"between", "with", "of", "by", "against"}):
            found += syntax.actors_of(obj, actors)
        if not found and trigger.dep_ in {"dobj", "pobj"}:
            verb = trigger.head if trigger.dep_ == "dobj" else trigger.head.head
            if verb.lemma_.lower() in LIGHT_VERBS or verb.pos_ == "VERB" and trigger.dep_ == "dobj":
                found += syntax.subject(verb, actors)
    return list(dict.fromkeys(found))


def _demonym_state(token: Token, actors: DocumentActors) -> list[str]:
    known = actors.resources.state_by_demonym.get(token.text)
    return [actors.register(known)] if known else []


def _places_as_parties(trigger: Token, actors: DocumentActors, context: DocumentContext) -> list[str]:
    """"the war in Ukraine": the state where a war is fought is a party to it."""
    out = []
    for obj in syntax.prep_objects(trigger, {"in", "on", "against"}) + syntax.prep_objects(trigger.head, {"in", "on", "against"}):
        key = actors.actor_of(obj)
        if key and actors.info[key].type == "state":
            out.append(key)
    return out


def _resolve_unnamed(candidates: list[_Candidate], actors: DocumentActors) -> list[_Candidate]:
    """Scene events with no named participant take the cast of the latest scene; else they are dropped."""
    resolved: list[_Candidate] = []
    for candidate in candidates:
        record = candidate.record
        if not record.actors:
            antecedent = next((c for c in reversed(resolved) if c.record.event_type == record.event_type and c.record.actors), None)
            cast = antecedent.record.actors if antecedent else None
            if cast is None:
                cast = next((c.record.actors for c in reversed(resolved) if c.record.event_type in SCENE_TYPES and c.record.actors), None)
            if cast is None:
                later = next((c for c in candidates if c.record.event_type == record.event_type and c.record.actors and c.record.trigger_start > record.trigger_start), None)
                cast = later.record.actors if later else None
            if not cast:
                continue
            record.actors = list(cast)
            record.anaphoric = True
        elif candidate.definite_noun and not candidate.has_cue:
            record.anaphoric = True
        resolved.append(candidate)
    return resolved


def _merge(candidates: list[_Candidate]) -> list[EventRecord]:
    """One record per event: anaphoric mentions join their antecedent, compatible mentions join each other."""
    merged: list[EventRecord] = []
    for candidate in candidates:
        record = candidate.record
        target = None
        if record.anaphoric:
            target = next(
                (m for m in reversed(merged) if m.event_type == record.event_type and set(m.actors) & set(record.actors)),
                None,
            )
        if target is None:
            target = next((m for m in merged if _compatible(m, record)), None)
        if target is None:
            merged.append(record)
            continue
        _absorb(target, record, keep_status=record.anaphoric)
    _anchor_visit_dates(merged)
    return merged


def _compatible(a: EventRecord, b: EventRecord) -> bool:
    if a.event_type != b.event_type or a.status != b.status or not set(a.actors) & set(b.actors):
        return False
    if a.date.start is None or b.date.start is None:
        return True
    return a.date.start == b.date.start or _within(a, b) or _within(b, a)


def _within(a: EventRecord, b: EventRecord) -> bool:
    return a.date.start <= b.date.start and b.date.end is not None and a.date.end is not None and b.date.end <= a.date.end


def _absorb(target: EventRecord, other: EventRecord, keep_status: bool) -> None:
    target.actors = list(dict.fromkeys(target.actors + other.actors))
    if (target.date.start is None and other.date.start is not None) or (target.date.text is None and other.date.text is not None and other.date.start is None and target.date.start is None):
        target.date = other.date
    elif target.date.start is not None and other.date.start is not None and other.date.precision == "day" and target.date.precision != "day":
        target.date = other.date
    if target.place is None and other.place is not None:
        target.place, target.place_country = other.place, other.place_country
        target.latitude, target.longitude = other.latitude, other.longitude
    target.evidence.extend(other.evidence)


def _anchor_visit_dates(events: list[EventRecord]) -> None:
    """Undated parts of a visit (journey, tour, talks) take the date of the one dated summit they belong to."""
    summits = [e for e in events if e.event_type == "meeting" and e.status == "occurred" and e.date.start is not None]
    for event in events:
        if event.event_type not in {"travel", "tour", "negotiation"} or event.status != "occurred" or event.date != NO_DATE:
            continue
        related = [s for s in summits if set(s.actors) & set(event.actors)]
        if len(related) == 1:
            event.date = related[0].date
