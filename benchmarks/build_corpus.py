"""Builds a benchmark corpus: N distinct news-style documents about the Russia–North Korea relationship.

Each document is a dateline, a lead and 10-18 further sentences drawn from a
bank of templates (straight news, attributions, hedged claims, quotes,
quantities, denials, analysis with reference markers), with their slots filled
from lists of actors, items, places, numbers and sources. A seeded random
generator makes the corpus reproducible; every document carries a serial
number in its lead, so no two texts are the same and no cache can serve one
document for another.

    python benchmarks/build_corpus.py --docs 1000 --out /tmp/bench/raw
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
from pathlib import Path

PEOPLE = [
    ("Kim Jong Un", "North Korean leader"), ("Vladimir Putin", "Russian President"),
    ("Sergei Shoigu", "Security Council Secretary"), ("Andrei Belousov", "Russian Defence Minister"),
    ("Choe Son Hui", "North Korean Foreign Minister"), ("Sergei Lavrov", "Russian Foreign Minister"),
    ("Denis Manturov", "Russian First Deputy Prime Minister"), ("Pak Jong Chon", "senior military official"),
    ("No Kwang Chol", "North Korean Defence Minister"), ("Alexander Kozlov", "Russian Natural Resources Minister"),
    ("Kim Yo Jong", "senior Workers' Party official"), ("Dmitry Peskov", "Kremlin spokesman"),
]
STATES = ["Russia", "North Korea", "South Korea", "Japan", "the United States", "China", "Ukraine"]
SOURCES = [
    "South Korea's defence ministry", "the National Intelligence Service", "Ukraine's military intelligence",
    "officials in Seoul", "a US State Department spokesperson", "the Japanese government",
    "researchers at an open-source monitoring group", "two people familiar with the matter",
    "satellite imagery reviewed by analysts", "the UN Panel of Experts", "a senior Pentagon official",
    "the Korean Central News Agency", "Russian state media",
]
HEDGES = ["reportedly", "allegedly", "is believed to have", "may have", "probably"]  # + a past participle
HEDGES_BASE = ["is expected to", "may", "could", "will reportedly", "is likely to", "agreed to"]  # + a verb
HEDGES_PASSIVE = ["were reportedly", "have allegedly been", "are believed to have been", "may have been", "were"]
MUNITIONS = [
    ("artillery shells", "containers of artillery shells"), ("152mm rounds", "152mm artillery rounds"),
    ("rockets", "122mm rockets for multiple launchers"), ("KN-23 missiles", "KN-23 short-range ballistic missiles"),
    ("KN-24 missiles", "KN-24 ballistic missiles"), ("anti-tank missiles", "Bulsae anti-tank guided missiles"),
    ("self-propelled howitzers", "Koksan 170mm self-propelled howitzers"),
    ("multiple rocket launchers", "240mm multiple rocket launchers"),
]
RETURNS = [
    "oil", "refined petroleum products", "food", "wheat and flour", "air-defence systems", "fighter jets",
    "satellite technology", "submarine technology", "hard currency", "technical help with its space programme",
    "spare parts for its air force", "electronic warfare equipment",
]
PLACES = [
    "the port of Rajin", "Vostochny Cosmodrome", "Pyongyang", "Moscow", "Vladivostok", "the Kursk region",
    "Khasan", "the Tumen River bridge", "Wonsan", "Nampo", "the Kerch Strait", "Kyiv", "Kharkiv",
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
CITIES = ["SEOUL", "MOSCOW", "TOKYO", "WASHINGTON", "KYIV", "VLADIVOSTOK", "BEIJING"]
PUBLISHERS = ["Example Wire", "The Example Times", "Example Analysis", "Example Daily", "Example Monitor"]

TEMPLATES = [
    "North Korea has shipped {n},000 {munitions_long} to Russia since {month}, {source} said on {weekday}.",
    "{source_cap} said the {munitions} were loaded onto Russian cargo ships at {place}.",
    "In return, Moscow {hedge_base} supply Pyongyang with {ret}, according to {source}.",
    "The Kremlin has denied that any weapons changed hands, and {person2_role} {person2} called the reports {adj}.",
    "{person1_role} {person1} met {person2_role} {person2} in {city_place} on {weekday}, {source} reported.",
    "The two leaders signed a treaty on comprehensive strategic partnership that includes a mutual defence clause.",
    "{person1} toured a factory producing {munitions_long} and urged workers to raise output, state media said.",
    "\"We will fulfil our obligations to our ally,\" {person2} told reporters in {city_place}.",
    "\"The cooperation between our countries threatens no one,\" {person1_role} {person1} said.",
    "Analysts said the deliveries, if confirmed, would breach United Nations sanctions that Russia voted for.[{k}]",
    "About {n2},000 North Korean troops {hedge_passive} deployed to {front}, {source} said.",
    "{source_cap} estimated that North Korea had sent at least {n3} {munitions} in the past {n4} months.",
    "Russian forces fired {munitions} made in North Korea at targets near {front_city}, according to {source}.",
    "The United States, Japan and South Korea condemned the transfers and announced new sanctions on {n5} entities.",
    "{person2_role} {person2} is expected to visit Pyongyang {when} to discuss military and economic cooperation.",
    "Satellite images showed {n6} railcars at {place}, a rise from {n7} a month earlier.",
    "A report by {source} said Russia {hedge} provided {ret} in exchange for the munitions.",
    "Officials in Seoul warned that Russian {ret} could help Pyongyang improve its missile programme.",
    "North Korea's foreign ministry rejected the accusations as a smear campaign by hostile forces.",
    "The shipments began after {person1} and {person2} met at {place} in {month} {year}.",
    "Ukraine's military intelligence said debris from a {munitions_one} was recovered in {front_city} on {weekday}.",
    "Trade between the two countries rose by {pct} percent last year, Russian customs data showed.",
    "{person1_role} {person1} thanked {person2} for what he called Moscow's support against sanctions.",
    "Russia vetoed a UN Security Council resolution that would have extended the sanctions monitoring panel.",
    "The UN Panel of Experts had documented arms transfers before its mandate ended in April {year}.[{k2}]",
    "Experts cautioned that the figures could not be independently verified.",
    "{source_cap} said some of the {munitions} had failed to explode or flown off course.",
    "A delegation led by {person3} arrived in {city_place} for talks on {topic}, the foreign ministry said.",
    "Moscow and Pyongyang agreed to expand cooperation in {topic}, according to a joint statement.",
    "The vessel, which had switched off its transponder, docked at {place} on {month} {day}.",
    "Officials said Russia paid for part of the deliveries in {ret}, though the amount was not disclosed.",
    "{person2} said on {weekday} that Russia would \"continue to develop relations with the DPRK in all areas\".",
    "South Korea summoned the Russian ambassador to protest against the military cooperation.",
    "The defence ministry in Seoul said it was considering supplying weapons to Ukraine in response.",
    "Some {n8} containers were moved by rail from {place} to ammunition depots in western Russia.",
    "According to {source}, North Korean engineers have visited Russian factories to study {topic}.",
]
TOPICS = ["space launch vehicles", "satellite reconnaissance", "nuclear-powered submarines", "energy supplies",
          "tourism", "labour exports", "fisheries", "railway links", "air defence", "drone production"]
FRONTS = [("the Kursk region", "Sudzha"), ("the Donetsk region", "Pokrovsk"), ("the Kharkiv region", "Kharkiv"),
          ("the Zaporizhzhia region", "Zaporizhzhia")]
ADJS = ["groundless", "baseless", "a provocation", "unfounded", "absurd"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
WHEN = ["next month", "later this year", "in the coming weeks", "before the end of the year", "in the spring"]


def document(i: int, rng: random.Random) -> tuple[str, dict[str, str]]:
    """The text of document i and its sidecar fields."""
    published = dt.date(2023, 6, 1) + dt.timedelta(days=rng.randrange(0, 900))
    p1, p2, p3 = rng.sample(PEOPLE, 3)
    front, front_city = rng.choice(FRONTS)

    def fill(template: str) -> str:
        munitions_short, munitions_long = rng.choice(MUNITIONS)
        source = rng.choice(SOURCES)
        values = {
            "n": rng.randint(1, 30), "n2": rng.randint(1, 15), "n3": rng.randint(100, 9000),
            "n4": rng.randint(2, 24), "n5": rng.randint(3, 60), "n6": rng.randint(20, 400), "n7": rng.randint(5, 200),
            "n8": rng.randint(100, 5000), "pct": rng.randint(5, 90), "k": rng.randint(1, 40), "k2": rng.randint(1, 40),
            "month": rng.choice(MONTHS), "day": rng.randint(1, 28), "year": rng.choice([2023, 2024, 2025]),
            "weekday": rng.choice(WEEKDAYS), "source": source, "source_cap": source[0].upper() + source[1:],
            "munitions": munitions_short, "munitions_long": munitions_long,
            "munitions_one": munitions_short.rstrip("s"), "ret": rng.choice(RETURNS), "hedge": rng.choice(HEDGES),
            "hedge_base": rng.choice(HEDGES_BASE), "hedge_passive": rng.choice(HEDGES_PASSIVE),
            "place": rng.choice(PLACES), "city_place": rng.choice(["Pyongyang", "Moscow", "Vladivostok"]),
            "person1": p1[0], "person1_role": p1[1], "person2": p2[0], "person2_role": p2[1], "person3": p3[0],
            "adj": rng.choice(ADJS), "front": front, "front_city": front_city, "when": rng.choice(WHEN),
            "topic": rng.choice(TOPICS),
        }
        sentence = template.format(**values)
        return sentence[0].upper() + sentence[1:]

    city = rng.choice(CITIES)
    lead = (f"{city} — North Korea and Russia expanded their military cooperation in shipment round {i + 1}, "
            f"{rng.choice(SOURCES)} said, citing {rng.randint(2, 90)} newly documented deliveries.")
    body = [fill(t) for t in rng.sample(TEMPLATES, rng.randint(10, 18))]
    paragraphs, current = [], [lead]
    for sentence in body:
        current.append(sentence)
        if len(current) >= rng.randint(2, 3):
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    title = f"{p1[0]} and {p2[0]}: deliveries of {rng.choice(MUNITIONS)[0]} in round {i + 1}"
    meta = {"title": title, "publisher": rng.choice(PUBLISHERS), "published": published.isoformat(), "language": "en"}
    return "\n\n".join(paragraphs) + "\n", meta


def build(out: Path, n_docs: int, seed: int = 20241125, start: int = 0) -> list[Path]:
    """Writes documents start..start+n_docs-1 under out/ (100 per folder) with sidecars; returns the text paths."""
    import yaml

    paths = []
    for i in range(start, start + n_docs):
        rng = random.Random(seed * 1_000_003 + i)
        text, meta = document(i, rng)
        folder = out / f"batch-{i // 100:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"doc-{i:06d}.txt"
        path.write_text(text, encoding="utf-8")
        sidecar_of(path).write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
        paths.append(path)
    return paths


def sidecar_of(text_path: Path) -> Path:
    """The metadata file written beside a generated text."""
    return text_path.with_name(text_path.stem + ".meta.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=20241125)
    parser.add_argument("--start", type=int, default=0, help="Index of the first document (to add more later).")
    args = parser.parse_args()
    paths = build(args.out, args.docs, args.seed, args.start)
    words = sum(len(p.read_text(encoding="utf-8").split()) for p in paths)
    print(f"{len(paths)} documents, {words:,} words in {args.out}")


if __name__ == "__main__":
    main()
