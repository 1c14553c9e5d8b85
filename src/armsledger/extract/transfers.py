"""Transfers in one parsed document: what passes from whom to whom, how much, how sure, and in return for what."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from spacy.tokens import Span, Token

from armsledger.extract.actors import DocumentActors
from armsledger.extract.context import DocumentContext
from armsledger.extract.parsed import ParsedDocument
from armsledger.extract.quantities import find_quantity
from armsledger.extract.records import Evidence, TransferRecord
from armsledger.extract.resources import Resources
from armsledger.extract.status import Reading, read_transfer_status, transfer_status
from armsledger.extract import syntax

TECHNOLOGY = {"weapons_technology", "space_technology", "nuclear_technology"}
EXCHANGE_NOUNS = {"return", "exchange", "payment", "reward"}
# Verbs whose "for" phrase names the counter-item: "traded fuel for rockets", "paid $5m for the shells".
EXCHANGE_VERBS = {"trade", "swap", "barter", "exchange", "pay", "sell", "buy", "purchase"}
# A part of a whole moved: "some of that ammunition", "half of the shells".
PARTITIVES = {"some", "part", "much", "most", "half", "share", "portion", "bulk", "fraction", "all", "many", "batch", "batches", "lot", "lots", "consignments", "quantities", "quantity"}
RECEIVING_NOUNS = {"purchase", "import", "acquisition", "procurement", "receipt"}
# "accused Pyongyang of supplying ...": the accused is the supplier of the act
ACCUSING_VERBS = {"accuse", "suspect", "charge", "blame", "criticise", "criticize", "condemn", "sanction"}
RAISING_VERBS = {"believe", "think", "say", "report", "allege", "know", "understand", "expect", "suspect", "rumour", "rumor", "claim", "estimate", "feared", "fear"}
MAKE_VERBS = {"make", "produce", "manufacture", "build", "assemble"}
BACK_REFERENCES = {"them", "these", "those"}
ASSISTING_VERBS = {"help", "assist", "aid"}


@dataclass(frozen=True)
class Item:
    head: Token
    category: str
    text: str
    phrase: Span


@dataclass
class _Mention:
    record: TransferRecord
    counter_of: int | None  # index of the mention this one is traded against
    order: int


class TransferFinder:
    """Finds transfers with the lexicon's items, verbs and nouns; one instance per resources."""

    def __init__(self, resources: Resources):
        lex = resources.lexicon
        self.resources = resources
        self.items: dict[tuple[str, ...], str] = {}
        for category, phrases in lex["transfer_items"].items():
            for phrase in phrases:
                self.items.setdefault(tuple(phrase.lower().split()), category)
        # a phrase is looked up by the word it ends on: only the lengths of phrases ending on that word can match
        lengths: dict[str, set[int]] = {}
        for phrase in self.items:
            lengths.setdefault(phrase[-1], set()).add(len(phrase))
        self.item_lengths_by_last_word = {w: frozenset(n) for w, n in lengths.items()}
        self.qualifiers = {c: [q.lower() for q in qs] for c, qs in lex["technology_qualifiers"].items()}
        verbs = lex["transfer_verbs"]
        self.agent_verbs = set(verbs["agent"])
        self.receiver_verbs = set(verbs["receiver"])
        self.request_verbs = set(verbs["request"])
        self.transfer_nouns = {w.lower() for w in lex["transfer_nouns"]}
        self.possession = set(lex["possession_lemmas"])
        self.stockpile = {w.lower() for w in lex["stockpile_nouns"]}
        self.goods_roles = set(lex["trade_roles"]["goods"])
        self.payment_roles = set(lex["trade_roles"]["payment"])
        self.usual = {c: tuple(v) for c, v in lex["usual_flows"].items()}
        self.programmes = {w.lower() for w in lex.get("assisted_programmes", ())}

    def find(self, parsed: ParsedDocument, actors: DocumentActors, context: DocumentContext) -> list[TransferRecord]:
        mentions: list[_Mention] = []
        previous: list[_Mention] = []
        for number, sent in enumerate(parsed.sents):
            if parsed.headings[number]:
                continue
            found = self._sentence(number, actors, context, len(mentions))
            if found and previous and _answers_previous(sent) and context.paragraph(sent.start_char) == context.paragraph(previous[0].record.evidence[0].char_start):
                # "X sold shells to Russia. In return, Moscow supplies fuel.": this sentence's transfer pays for the last one's
                main = next((m for m in found if m.counter_of is None), None)
                other = next((m for m in reversed(previous) if m.counter_of is None), None)
                if main is not None and other is not None:
                    main.counter_of = other.order
            mentions.extend(found)
            previous = found or previous
        self._fill_parties(mentions, actors, parsed)
        return _merge(mentions)

    # items -------------------------------------------------------------
    def _items(self, number: int, parsed: ParsedDocument) -> list[Item]:
        """The items named in sentence `number` of the document."""
        sent = parsed.sents[number]
        lower, lemma = parsed.lower, parsed.lemma
        found: list[Item] = []
        for ent in parsed.sent_ents[number]:
            # "$500 million", "2 billion roubles": an amount of money is itself the thing paid
            if ent.label_ == "MONEY" and any(t.text in {"$", "€", "£"} or t.lower_ in {"dollar", "dollars", "rouble", "roubles", "ruble", "rubles", "yuan", "euros", "won"} for t in ent):
                found.append(Item(ent.root, "money", ent.text, ent))
        no_lengths: frozenset[int] = frozenset()
        for i in range(sent.start, sent.end):
            item_lengths = self.item_lengths_by_last_word.get(lower[i], no_lengths)
            lemma_lengths = self.item_lengths_by_last_word.get(lemma[i], no_lengths)
            # a word that ends no item phrase and is neither a back reference nor a programme adds nothing
            if not item_lengths and not lemma_lengths and lower[i] not in BACK_REFERENCES and lemma[i] not in self.programmes:
                continue
            token = parsed.tokens[i]
            if token.ent_type_ == "MONEY":
                continue
            if lower[i] in BACK_REFERENCES and token.dep_ == "pobj" and token.head.lower_ == "of" and _is_amount(token.head.head):
                # "it has millions of shells and is sending some of them": the part moved is of the thing named before
                antecedent = next((earlier for earlier in reversed(found) if earlier.head.i < token.i and earlier.head.tag_ == "NNS"), None)
                if antecedent is not None:
                    found.append(Item(token, antecedent.category, antecedent.text, antecedent.phrase))
                continue
            if lemma[i] in self.programmes and token.dep_ == "pobj" and token.head.lower_ == "with" and token.head.head.lemma_.lower() in ASSISTING_VERBS:
                # "helping North Korea with its nuclear programme": know-how for that field
                phrase = _noun_phrase(token)
                found.append(Item(token, self._technology_field(token, "weapons_technology"), phrase.text, phrase))
                continue
            if token.pos_ not in {"NOUN", "PROPN"}:
                continue
            category = None
            longest = i - sent.start + 1  # an item's phrase stays inside the sentence
            for n in sorted(item_lengths | lemma_lengths, reverse=True):
                if n <= longest:
                    category = self.items.get(tuple(lower[i - n + 1 : i + 1])) or self.items.get(tuple(lemma[i - n + 1 : i + 1]))
                    if category:
                        break
            if not category:
                continue
            if token.dep_ == "compound" and token.head.lower_ not in self.stockpile and token.head.lemma_.lower() not in self.transfer_nouns:
                continue  # "food shortages", "arms fair": a modifier, not the thing moved
            phrase = _noun_phrase(token)
            if category in TECHNOLOGY or category == "weapons_technology":
                category = self._technology_field(token, category)
            found.append(Item(token, category, phrase.text, phrase))
        return found

    def _technology_field(self, head: Token, default: str) -> str:
        """"expertise in nuclear weapons", "satellite launch vehicle expertise": the field qualifies the know-how."""
        words = " ".join(t.lower_ for t in head.subtree)
        for category in ("nuclear_technology", "space_technology", "weapons_technology"):
            if any(q in words for q in self.qualifiers.get(category, ())):
                return category
        return default

    # triggers ----------------------------------------------------------
    def _sentence(self, number: int, actors: DocumentActors, context: DocumentContext, offset: int) -> list[_Mention]:
        out: list[_Mention] = []
        sent = context.parsed.sents[number]
        for item in self._items(number, context.parsed):
            found = self._governed(item, actors)
            if found is None:
                continue
            trigger, supplier, recipient, counter_head = found
            reading = read_transfer_status(trigger, self.resources)
            if any(c.dep_ == "det" and c.lower_ == "no" for c in item.head.children):
                reading = Reading("denied", reading.hedge)  # "no shells have been sent"
            record = self._record(item, trigger, supplier, recipient, reading, context, actors)
            mention = _Mention(record, None, offset + len(out))
            if counter_head is not None:
                mention.counter_of = -1  # linked below, once the clause's own transfer is known
            out.append(mention)
        for mention in out:
            if mention.counter_of == -1:
                main = next((m for m in out if m.counter_of is None), None)
                mention.counter_of = main.order if main is not None else None
        self._link_exchanges(sent, out)
        return out

    def _governed(self, item: Item, actors: DocumentActors):
        """(trigger, supplier, recipient, exchange head) for an item moved by a verb or noun; None for things merely had or used."""
        head = item.head
        governor = head.head if head.dep_ == "compound" else head
        if governor.lower_ in self.stockpile and governor is not head:
            governor_dep = governor
        else:
            governor_dep = head
        # "in return for munitions": the counter-item of the clause's transfer
        while governor_dep.dep_ == "pobj" and governor_dep.head.lower_ == "of" and _is_amount(governor_dep.head.head):
            # "millions of artillery shells", "hundreds of tonnes of flour": the amount's place in the sentence is the item's
            governor_dep = governor_dep.head.head
        if governor_dep.dep_ == "pobj" and governor_dep.head.lower_ == "for" and governor_dep.head.head.lemma_.lower() in EXCHANGE_NOUNS:
            exchange = governor_dep.head.head
            # the counter-item shares the status of the transfer it is traded against
            anchor = exchange.head.head if exchange.head.dep_ == "prep" else _clause_verb(exchange)
            return anchor, None, None, exchange
        if governor_dep.dep_ == "pobj" and governor_dep.head.lower_ == "for":
            owner = governor_dep.head.head
            verb = owner if owner.pos_ == "VERB" else (owner.head if owner.dep_ in {"dobj", "nsubjpass"} else None)
            if verb is not None and verb.lemma_.lower() in EXCHANGE_VERBS and (owner.pos_ == "VERB" or owner.dep_ == "dobj"):
                # "traded fuel to Pyongyang for rockets", "paid $5m for the shells": what the deal is for
                return verb, self._origin(governor_dep, actors), None, governor_dep.head
        if governor_dep.dep_ == "pobj" and _after_up_to(governor_dep) and governor_dep.head.head.dep_ == "prt":
            # "shipped up to 6,500 containers": the parser's "up" particle is the amount's bound
            return self._verb_transfer(governor_dep.head.head.head, governor_dep, actors)
        if governor_dep.dep_ == "nsubjpass" and governor_dep.head.lemma_.lower() in RAISING_VERBS:
            # "Missiles are believed to have been supplied to Russia": the reported clause moves them
            moved = next((c for c in governor_dep.head.children if c.dep_ == "xcomp" and c.pos_ == "VERB"), None)
            if moved is not None:
                found = self._verb_transfer(moved, governor_dep, actors)
                if found is not None:
                    return found
        if governor_dep.dep_ == "pobj" and governor_dep.head.lower_ == "for" and governor_dep.head.head.lemma_.lower() in self.request_verbs:
            # "ask Moscow for help": the one asked supplies, the asker receives
            verb = governor_dep.head.head
            asked = [a for o in syntax.direct_objects(verb) for a in syntax.actors_of(o, actors)]
            return verb, asked, syntax.subject(verb, actors), None
        if governor_dep.dep_ in {"dobj", "nsubjpass"} or (governor_dep.dep_ == "conj" and governor_dep.head.dep_ == "dobj"):
            verb = governor_dep.head if governor_dep.dep_ != "conj" else governor_dep.head.head
            return self._verb_transfer(verb, governor_dep, actors)
        if governor_dep.dep_ == "pobj" and governor_dep.head.lower_ == "of":
            noun = governor_dep.head.head
            if noun.lemma_.lower() in self.transfer_nouns or noun.lower_ in self.transfer_nouns:
                return self._noun_transfer(noun, governor_dep, actors)
            if noun.lemma_.lower() in {"lifeline"} and noun.dep_ in {"dobj"}:
                return self._verb_transfer(noun.head, noun, actors)
        if head.dep_ == "compound" and (head.head.lemma_.lower() in self.transfer_nouns or head.head.lower_ in self.transfer_nouns):
            return self._noun_transfer(head.head, head, actors)
        if governor_dep.dep_ == "attr" and governor_dep.head.lemma_ == "be":
            subject = next((c for c in governor_dep.head.children if c.dep_ == "nsubj"), None)
            if subject is not None and subject.lemma_.lower() in self.goods_roles | self.payment_roles:
                return governor_dep.head, None, None, None
        if governor_dep.dep_ == "pobj" and governor_dep.head.lower_ in {"to", "with"} and governor_dep.head.head.lemma_.lower() in self.agent_verbs:
            return self._verb_transfer(governor_dep.head.head, governor_dep, actors)
        return None

    def _verb_transfer(self, verb: Token, obj: Token, actors: DocumentActors):
        lemma = verb.lemma_.lower()
        if lemma in self.possession:
            return None
        phrasal = " ".join([lemma] + [c.lower_ for c in verb.children if c.dep_ == "prt"])
        if lemma in self.agent_verbs or phrasal in self.agent_verbs:
            passive_subject = next((c for c in verb.children if c.dep_ == "nsubjpass"), None)
            if obj.dep_ == "dobj" and passive_subject is not None:
                # "North Korea was given X by Russia": the passive subject receives, the agent supplies
                supplier = syntax.agent(verb, actors) or self._origin_of_agent(verb, actors)
                return verb, supplier, syntax.actors_of(passive_subject, actors), None
            if obj.dep_ != "nsubjpass":
                supplier = syntax.subject(verb, actors)
                if verb.dep_ == "pcomp" and verb.head.lower_ == "of" and verb.head.head.lemma_.lower() in ACCUSING_VERBS:
                    supplier = [a for o in syntax.direct_objects(verb.head.head) for a in syntax.actors_of(o, actors)] or supplier
            else:
                supplier = syntax.agent(verb, actors) or self._origin_of_agent(verb, actors)
                for o in syntax.prep_objects(verb, {"from"}):
                    supplier = supplier or syntax.actors_of(o, actors)
                supplier = supplier or self._origin(obj, actors)
            if verb.dep_ == "xcomp" and verb.head.lemma_.lower() in self.request_verbs:
                # "he may ask Moscow to hand over ...": the one asked supplies, the asker receives
                asked = [a for o in syntax.direct_objects(verb.head) for a in syntax.actors_of(o, actors)]
                return verb, asked or supplier, syntax.subject(verb.head, actors), None
            recipients = []
            for o in syntax.prep_objects(verb, {"to", "for"}) + syntax.prep_objects(obj, {"to"}):
                recipients += syntax.actors_of(o, actors)
            for d in verb.children:
                if d.dep_ == "dative" and d.pos_ == "ADP":
                    # "sold missiles to North Korea" parsed with "to" as the dative
                    recipients += [a for o in d.children if o.dep_ == "pobj" for a in syntax.actors_of(o, actors)]
                elif d.dep_ == "dative" or (d.dep_ == "dobj" and d.i != obj.i and actors.actor_of(d)):
                    recipients += syntax.actors_of(d, actors)
            return verb, supplier, recipients, None
        if lemma in self.receiver_verbs:
            suppliers = []
            for o in syntax.prep_objects(verb, {"from"}) + syntax.prep_objects(obj, {"from"}):
                suppliers += syntax.actors_of(o, actors)
            return verb, suppliers or self._origin(obj, actors), syntax.subject(verb, actors), None
        return None

    def _origin(self, item: Token, actors: DocumentActors) -> list[str]:
        """The state an item comes from, as its own phrase says: "Russian coal", "rockets made in North Korea"."""
        phrase = [item] + syntax.prep_objects(item, {"of"})
        if item.dep_ == "pobj" and item.head.lower_ == "of":
            phrase.append(item.head.head)
        for token in phrase:
            for child in token.children:
                if child.dep_ in {"amod", "compound"} and child.i < token.i:
                    known = _demonym(child, actors)
                    if known is not None:
                        return [actors.register(known)]
                if child.dep_ == "acl" and child.lemma_.lower() in MAKE_VERBS:
                    for o in syntax.prep_objects(child, {"in", "by"}):
                        found = syntax.actors_of(o, actors)
                        if found:
                            return found
        return []

    def _origin_of_agent(self, verb: Token, actors: DocumentActors) -> list[str]:
        """"delivered by Russian tankers": the state named by the agent's own modifiers."""
        for child in verb.children:
            if child.dep_ == "agent":
                for obj in child.children:
                    if obj.dep_ == "pobj":
                        for mod in obj.children:
                            if mod.dep_ in {"amod", "compound"}:
                                known = _demonym(mod, actors)
                                if known is not None:
                                    return [actors.register(known)]
        return []

    def _noun_transfer(self, noun: Token, item: Token, actors: DocumentActors):
        suppliers, recipients = [], []
        receiving = noun.lemma_.lower() in RECEIVING_NOUNS
        for child in noun.children:
            if child.dep_ == "poss":
                # "North Korea's shipments" supply; "Russia's purchase" receives
                (recipients if receiving else suppliers).extend(syntax.actors_of(child, actors))
            if child.dep_ == "amod":
                known = actors.resources.state_by_demonym.get(child.text)
                if known:
                    suppliers.append(actors.register(known))
        for o in syntax.prep_objects(noun, {"from", "by"}):
            suppliers += syntax.actors_of(o, actors)
        for o in syntax.prep_objects(noun, {"to", "for"}) + syntax.prep_objects(item, {"to"}):
            recipients += syntax.actors_of(o, actors)
        return noun, suppliers or self._origin(item, actors), recipients, None

    def _link_exchanges(self, sent: Span, mentions: list[_Mention]) -> None:
        """"the product was X and the payment was Y": two sides of one trade."""
        every_role = self.goods_roles | self.payment_roles
        goods = [m for m in mentions if _trade_role(m, every_role) in self.goods_roles]
        payments = [m for m in mentions if _trade_role(m, every_role) in self.payment_roles]
        if len(goods) == 1 and len(payments) == 1:
            payments[0].counter_of = goods[0].order

    def _record(self, item: Item, trigger: Token, supplier, recipient, reading, context, actors) -> TransferRecord:
        parsed = context.parsed
        sent = parsed.sent(item.head.i)
        quantity = None if self._is_stockpile(item) else find_quantity(_left_text(item, parsed))
        return TransferRecord(
            supplier=_first_state(supplier, actors),
            recipient=_first_state(recipient, actors),
            category=item.category,
            item=item.text,
            quantity_text=quantity.text if quantity else None,
            quantity_low=quantity.low if quantity else None,
            quantity_high=quantity.high if quantity else None,
            unit=(item.head.lemma_.lower() if quantity else None),
            status=transfer_status(reading),
            evidence=[Evidence(parsed.sent_text(item.head.i), sent.start_char, sent.end_char, reading.hedge, reading.cue is not None)],
            date=context.date_for(trigger),
        )

    def _is_stockpile(self, item: Item) -> bool:
        return item.head.head.lower_ in self.stockpile or item.head.head.lemma_.lower() in self.possession

    # parties -----------------------------------------------------------
    def _fill_parties(self, mentions: list[_Mention], actors: DocumentActors, parsed: ParsedDocument) -> None:
        """Counter-items take the reversed parties of their trade; other gaps the latest like transfer's, else the usual direction."""
        by_order = {m.order: m for m in mentions}
        for m in mentions:
            r = m.record
            if m.counter_of is not None and m.counter_of in by_order:
                main = by_order[m.counter_of].record
                r.supplier = r.supplier or main.recipient
                r.recipient = r.recipient or main.supplier
                main.supplier = main.supplier or r.recipient
                main.recipient = main.recipient or r.supplier
        for i, m in enumerate(mentions):
            r = m.record
            if r.supplier and r.recipient:
                continue
            earlier = next((p.record for p in reversed(mentions[:i]) if p.record.category == r.category and p.record.supplier and p.record.recipient), None)
            if earlier and (r.supplier in (None, earlier.supplier)) and (r.recipient in (None, earlier.recipient)):
                r.supplier, r.recipient = earlier.supplier, earlier.recipient
                continue
            self._usual_direction(r, actors, parsed)
        for m in mentions:
            if m.counter_of is not None and m.counter_of in by_order:
                main = by_order[m.counter_of].record
                if main.supplier is None or main.recipient is None:
                    main.supplier, main.recipient = m.record.recipient, m.record.supplier

    def _usual_direction(self, record: TransferRecord, actors: DocumentActors, parsed: ParsedDocument) -> None:
        flow = self.usual.get(record.category)
        if not flow:
            return
        # the states the text names, themselves or through their people and bodies ("a North Korean spokesman")
        states_in_text = {actors.info[m.actor].country for m in actors.mentions}
        states_in_text |= {actors.resources.state_by_demonym[e.text].country for e in parsed.ents if e.label_ == "NORP" and e.text in actors.resources.state_by_demonym}
        if not set(flow) <= states_in_text:
            return
        supplier = actors.register(actors.resources.state_for_country(flow[0]))
        recipient = actors.register(actors.resources.state_for_country(flow[1]))
        if record.supplier in (None, supplier) and record.recipient in (None, recipient):
            record.supplier, record.recipient = supplier, recipient
            record.prior_used = True


def _trade_role(mention: _Mention, roles: set[str]) -> str | None:
    """The role noun of the nearest "the ROLE was" before the item in its sentence, if any."""
    sentence = mention.record.evidence[0].sentence.lower()
    position = sentence.find(mention.record.item.lower())
    if position < 0:
        return None
    before = sentence[:position]
    found = max(((before.rfind(f"the {r} was"), r) for r in roles), default=(-1, None))
    return found[1] if found[0] >= 0 else None


def _has_counter(mention: _Mention, mentions: list[_Mention]) -> bool:
    return any(m.counter_of == mention.order for m in mentions)


def _demonym(token: Token, actors: DocumentActors):
    """The state a modifier names: a demonym ("Russian", "North Korean") or a state's name."""
    resources = actors.resources
    key = actors.actor_of(token)
    if key and actors.info[key].type == "state":
        return resources.actor_by_name.get(actors.info[key].name) or resources.state_for_country(actors.info[key].country)
    if token.ent_type_ == "NORP":
        ent = next((e for e in token.doc.ents if e.start <= token.i < e.end), None)
        if ent is not None and ent.text in resources.state_by_demonym:
            return resources.state_by_demonym[ent.text]
    return resources.state_by_demonym.get(token.text)


def _is_amount(token: Token) -> bool:
    return token.pos_ == "NUM" or token.lower_ in PARTITIVES or token.lower_ in {"tens", "hundreds", "thousands", "millions", "billions", "dozens", "lots", "batches", "tons", "tonnes", "crates", "containers", "barrels", "rounds"}


def _clause_verb(token: Token) -> Token:
    while token.pos_ != "VERB" and token.head.i != token.i:
        token = token.head
    return token


def _noun_phrase(head: Token) -> Span:
    """The item's words: its modifiers and "of"/"in"/"for" complements, without determiners or relative clauses."""
    doc = head.doc
    start = head.i
    for t in reversed([t for t in head.subtree if t.i < head.i]):
        if t.dep_ in {"det", "poss", "case", "punct"}:
            break
        start = t.i
    end = head.i + 1
    for child in head.rights:
        if (child.dep_ == "prep" and child.lower_ in {"of", "in", "for"}) or child.dep_ in {"conj", "amod"}:
            end = max(end, child.right_edge.i + 1)
    return doc[start:end]


def _answers_previous(sent: Span) -> bool:
    """A sentence with a bare "in return" / "in exchange" (no "for" object): the counterpart of the one before."""
    for token in sent:
        if token.lower_ in {"return", "exchange"} and token.dep_ == "pobj" and token.head.lower_ == "in":
            return not any(c.dep_ == "prep" and c.lower_ == "for" for c in token.children)
    return False


def _after_up_to(token: Token) -> bool:
    return token.head.lower_ == "to" and token.head.i > 0 and token.doc[token.head.i - 1].lower_ == "up"


def _left_text(item: Item, parsed: ParsedDocument) -> str:
    """The words before the item's head and its "of" complement, where amounts are stated.

    "either 1.5 million shells or 200,000 rockets": alternatives run to the last one.
    """
    head = item.head
    while head.dep_ == "pobj" and head.head.lower_ == "of" and _is_amount(head.head.head):
        head = head.head.head
    start, end = head.left_edge.i, item.head.i + 1
    if start >= 2 and parsed.span_text(start - 2, start).lower() == "up to":
        start -= 2
    either = next((c for c in item.head.children if c.dep_ == "preconj" and c.lower_ == "either"), None)
    if either is not None and item.head.conjuncts:
        start, end = min(start, either.i), max(c.i for c in item.head.conjuncts) + 1
    return parsed.span_text(start, end)


def _first_state(keys, actors: DocumentActors) -> str | None:
    for key in keys or ():
        state = actors.state_of(key)
        if state is not None:
            return state
    return None


def _merge(mentions: list[_Mention]) -> list[TransferRecord]:
    """One record per (supplier, recipient, category) in a document; know-how of any field is one bundle."""
    complete = [m for m in mentions if m.record.supplier and m.record.recipient and m.record.supplier != m.record.recipient]
    groups: dict[tuple, list[_Mention]] = {}
    for m in complete:
        r = m.record
        family = "technology" if r.category in TECHNOLOGY else r.category
        groups.setdefault((r.supplier, r.recipient, family), []).append(m)
    records: list[TransferRecord] = []
    index_of_order: dict[int, int] = {}
    for members in groups.values():
        first = members[0].record
        categories = Counter(m.record.category for m in members)
        first.category = sorted(categories, key=lambda c: (-categories[c], [m.record.category for m in members].index(c)))[0]
        cued = [m for m in members if m.record.evidence[0].cue]
        if cued:
            # the most frequent status; on a tie, the one stated about the trade itself (an exchange)
            counts = Counter(m.record.status for m in cued)
            first.status = sorted(cued, key=lambda m: (-counts[m.record.status], m.counter_of is None and not _has_counter(m, mentions), m.order))[0].record.status
        items = list(dict.fromkeys(m.record.item for m in members))
        first.item = "; ".join(items)
        for m in members[1:]:
            r = m.record
            if first.quantity_text is None and r.quantity_text is not None:
                first.quantity_text, first.quantity_low, first.quantity_high, first.unit = r.quantity_text, r.quantity_low, r.quantity_high, r.unit
            if first.date.start is None and r.date.start is not None:
                first.date = r.date
            first.prior_used = first.prior_used and r.prior_used
            first.evidence.extend(r.evidence)
        for m in members:
            index_of_order[m.order] = len(records)
        records.append(first)
    for m in complete:
        if m.counter_of is not None and m.counter_of in index_of_order:
            mine, theirs = index_of_order[m.order], index_of_order[m.counter_of]
            if mine != theirs:
                records[mine].exchange_for = theirs
                records[theirs].exchange_for = records[theirs].exchange_for if records[theirs].exchange_for is not None else mine
    return records
