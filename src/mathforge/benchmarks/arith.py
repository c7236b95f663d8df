"""`arith`: a built-in, seeded generator of multi-step grade-school word problems in GSM8K style.

It needs no data, so it is the default benchmark of `mathforge eval`, and its rows double as seed data for
synthetic data and as a tiny training corpus. Each row carries a GSM8K-style reference solution: one line per
arithmetic step with a calculator annotation (`3 * 4 = $<<3*4=12>>12`) and a final `#### 12` line.

Every template is a short story built from *links*: one base step plus optional links (a second item, a
coupon, change from a bill, ...). A template's plan is a set of optional links; the plans are grouped by how
many arithmetic steps they take, so one template can tell 1- to 5-step problems.
"""

from __future__ import annotations

import itertools
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass

MAX_STEPS = 5
SPLITS = ("test", "train")
# Re-drawing is how we enforce exact divisions, unique questions and the train/test partition;
# in practice a row needs a handful of tries, so hitting this limit means a template is broken.
_MAX_TRIES = 1000


class _Retry(Exception):
    """The drawn numbers do not make a clean problem (inexact division, a result <= 0): draw again."""


# --- people and words ---------------------------------------------------------------------------------

_FEMALE = (
    "Maya", "Sofia", "Priya", "Emma", "Lena", "Aisha", "Grace", "Chloe", "Nina", "Rosa", "Hannah", "Julia",
    "Mei", "Zara", "Olivia", "Fatima", "Clara", "Ivy", "Leah", "Noor", "Elena", "Amara", "Keiko", "Lucy",
)  # fmt: skip
_MALE = (
    "Liam", "Omar", "Diego", "Ethan", "Raj", "Noah", "Lucas", "Kenji", "Samuel", "Marco", "Ben", "Tariq",
    "Felix", "Owen", "Mateo", "Jamal", "Arjun", "Leo", "Hugo", "Daniel", "Kofi", "Ivan", "Jack", "Yusuf",
)  # fmt: skip


@dataclass(frozen=True)
class _Person:
    name: str
    she: str  # subject pronoun
    her: str  # possessive
    him: str  # object pronoun
    herself: str
    sibling: str  # what this person is to a brother or sister

    # Capitalized forms start a sentence: f"{p.She} buys ...".
    @property
    def She(self) -> str:
        return self.she.capitalize()

    @property
    def Her(self) -> str:
        return self.her.capitalize()


def _person(name: str) -> _Person:
    if name in _FEMALE:
        return _Person(name, "she", "her", "her", "herself", "sister")
    return _Person(name, "he", "his", "him", "himself", "brother")


def _people(rng: random.Random, count: int) -> list[_Person]:
    """`count` different people, so a story never has two characters with one name."""
    return [_person(name) for name in rng.sample(_FEMALE + _MALE, count)]


def _join(parts: list[str]) -> str:
    """'a', 'a and b', 'a, b, and c'."""
    if len(parts) <= 2:
        return " and ".join(parts)
    return ", ".join(parts[:-1]) + ", and " + parts[-1]


def _a(noun: str) -> str:
    """'a bike', 'an art set'."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


def _question(facts: list[str], ask: str) -> str:
    return " ".join([*facts, ask])


def _divisor(rng: random.Random, number: int, low: int, high: int) -> int:
    """A random divisor of `number` in [low, high], so that a division in the story comes out exact."""
    choices = [d for d in range(low, high + 1) if number % d == 0]
    if not choices:
        raise _Retry
    return rng.choice(choices)


# --- the reference solution ---------------------------------------------------------------------------


class _Work:
    """The GSM8K-style solution of one problem: one line per arithmetic step."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.value = 0

    def step(self, before: str, op: str, *numbers: int, after: str = "", money: bool = False) -> int:
        """Compute `numbers` joined by `op`, write `{before} a op b = <<a op b=c>>c {after}.`, return c.

        Results must be positive integers: a word problem never leaves 0 or -3 apples, and GSM8K's
        calculator annotations are exact. A count of 1 is redrawn too, as "1 cups" would need a singular.
        """
        value = numbers[0]
        for number in numbers[1:]:
            if op == "+":
                value += number
            elif op == "-":
                value -= number
            elif op == "*":
                value *= number
            else:
                if value % number:
                    raise _Retry
                value //= number
        if value <= 0 or (value == 1 and after):
            raise _Retry
        shown = f" {op} ".join(map(str, numbers))
        compact = op.join(map(str, numbers))
        dollar = "$" if money else ""
        line = f"{before} {shown} = {dollar}<<{compact}={value}>>{value}"
        self.lines.append(f"{line} {after}.".replace(" .", "."))
        self.value = value
        return value


# --- plans ----------------------------------------------------------------------------------------------

Plan = frozenset[str]


def _plans(
    costs: dict[str, int],
    requires: dict[str, str] | None = None,
    excludes: tuple[tuple[str, str], ...] = (),
) -> dict[int, tuple[Plan, ...]]:
    """Every valid set of optional links, grouped by its step count (the base step counts 1).

    `requires[a] = b`: link a only makes sense after b. `excludes`: pairs that tell two different stories.
    """
    requires = requires or {}
    by_steps: dict[int, list[Plan]] = {steps: [] for steps in range(1, MAX_STEPS + 1)}
    for size in range(len(costs) + 1):
        for combo in itertools.combinations(costs, size):
            plan = frozenset(combo)
            if any(requires[link] not in plan for link in plan if link in requires):
                continue
            if any(a in plan and b in plan for a, b in excludes):
                continue
            steps = 1 + sum(costs[link] for link in plan)
            if steps <= MAX_STEPS:
                by_steps[steps].append(plan)
    return {steps: tuple(plans) for steps, plans in by_steps.items()}


# --- shopping -------------------------------------------------------------------------------------------

# (plural, lowest price, highest price)
_GOODS = (
    ("notebooks", 2, 6), ("pens", 1, 4), ("mugs", 4, 12), ("T-shirts", 8, 20), ("books", 6, 15),
    ("toy cars", 3, 9), ("bags of chips", 2, 5), ("packs of stickers", 1, 4), ("pairs of socks", 3, 8),
    ("potted plants", 5, 14), ("candles", 3, 10), ("puzzles", 7, 18), ("jars of honey", 4, 9),
    ("bottles of juice", 2, 4), ("paintbrushes", 2, 7), ("tennis balls", 1, 3),
)  # fmt: skip
_STORES = (
    # General stores only, so that any item on the list is plausible there.
    "the market", "the mall", "a department store", "the corner store", "a general store",
    "the supermarket", "a shopping center", "the school fair", "a flea market",
)  # fmt: skip
_SHOPPING_PLANS = _plans({"second": 2, "third": 1, "coupon": 1, "change": 1}, requires={"third": "second"})


def _bill(rng: random.Random, amount: int) -> int:
    """The bill someone would hand over: usually the smallest one that covers the amount."""
    bills = [bill for bill in (10, 20, 50, 100) if bill > amount]
    if not bills:
        raise _Retry
    return bills[1] if len(bills) > 1 and rng.random() < 0.25 else bills[0]


def _shopping(rng: random.Random, plan: Plan, work: _Work) -> str:
    (buyer,) = _people(rng, 1)
    goods = rng.sample(_GOODS, 1 + ("second" in plan) + ("third" in plan))
    counts = [rng.randint(2, 8) for _ in goods]
    prices = [rng.randint(low, high) for _, low, high in goods]
    listing = _join(
        [
            f"{n} {item} for ${price} each"
            for n, (item, _, _), price in zip(counts, goods, prices, strict=True)
        ]
    )
    facts = [f"{buyer.name} goes to {rng.choice(_STORES)} and buys {listing}."]
    if len(goods) == 1:
        total = work.step(f"{buyer.name} spends", "*", counts[0], prices[0], money=True)
        ask = f"How much money does {buyer.name} spend?"
    else:
        costs = [
            work.step(f"The {item} cost", "*", n, price, money=True)
            for n, (item, _, _), price in zip(counts, goods, prices, strict=True)
        ]
        total = work.step(f"In total, {buyer.she} spends", "+", *costs, money=True)
        ask = f"How much money does {buyer.name} spend in all?"
    if "coupon" in plan:
        off = rng.choice([off for off in (2, 3, 4, 5, 10, 15) if off < total] or [1])
        facts.append(f"{buyer.She} uses a coupon for ${off} off the whole purchase.")
        total = work.step(f"With the coupon, {buyer.she} pays", "-", total, off, money=True)
        ask = f"How much does {buyer.she} pay after using the coupon?"
    if "change" in plan:
        bill = _bill(rng, total)
        facts.append(f"{buyer.She} pays with a ${bill} bill.")
        work.step(f"{buyer.She} gets back", "-", bill, total, after="in change", money=True)
        ask = f"How much change does {buyer.she} get?"
    return _question(facts, ask)


# --- rates (production) ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Producer:
    name: str  # "printer": "A printer prints ...", "the printer"
    verb: str  # "print"
    item: str
    items: str
    bad: str  # what the rejected ones are
    unit: str  # time unit of the rate
    rate: tuple[int, int]
    time: tuple[int, int]  # how long it works a day, in `unit`s
    pack: str  # container, "box" -> "boxes"
    packs: str
    pack_size: tuple[int, int]


_PRODUCERS = (
    _Producer("printer", "print", "flyer", "flyers", "smudged", "minute", (10, 40), (15, 60),
              "bundle", "bundles", (10, 50)),
    _Producer("bottling machine", "fill", "bottle", "bottles", "cracked", "minute", (8, 30), (20, 90),
              "crate", "crates", (6, 24)),
    _Producer("bakery", "bake", "muffin", "muffins", "burnt", "hour", (12, 60), (4, 10),
              "box", "boxes", (4, 12)),
    _Producer("factory robot", "assemble", "toy car", "toy cars", "faulty", "hour", (5, 25), (6, 12),
              "carton", "cartons", (4, 20)),
    _Producer("candle workshop", "pour", "candle", "candles", "chipped", "hour", (6, 20), (3, 8),
              "box", "boxes", (3, 12)),
    _Producer("pottery studio", "make", "bowl", "bowls", "cracked", "hour", (3, 10), (4, 8),
              "crate", "crates", (4, 10)),
    _Producer("jam factory", "fill", "jar of jam", "jars of jam", "badly sealed", "minute", (5, 20),
              (30, 90), "case", "cases", (6, 24)),
)  # fmt: skip
_RATES_PLANS = _plans({"days": 1, "defects": 1, "packs": 1, "price": 1})


def _verb_s(verb: str) -> str:
    return verb + ("es" if verb.endswith(("sh", "ch", "s", "x")) else "s")


def _rates(rng: random.Random, plan: Plan, work: _Work) -> str:
    p = rng.choice(_PRODUCERS)
    the = f"the {p.name}"
    rate, time = rng.randint(*p.rate), rng.randint(*p.time)
    facts = [f"{_a(p.name).capitalize()} {_verb_s(p.verb)} {rate} {p.items} every {p.unit} "
             f"and works {time} {p.unit}s a day."]  # fmt: skip
    stock = work.step(f"In one day, {the} {_verb_s(p.verb)}", "*", rate, time, after=p.items)
    ask = f"How many {p.items} does {the} {p.verb} in one day?"
    if "days" in plan:
        days = rng.randint(2, 7)
        facts.append(f"It keeps up this pace for {days} days.")
        stock = work.step(f"In {days} days, it makes", "*", stock, days, after=p.items)
        ask = f"How many {p.items} does {the} {p.verb} in {days} days?"
    # Choose the pack size before the rejects, so the rejects can make the packing come out exact.
    size = rng.randint(*p.pack_size) if "packs" in plan else 1
    noun, nouns = p.item, p.items
    if "defects" in plan:
        if "packs" in plan:
            rejects = stock % size + size * rng.randint(0, 2) or size
        else:
            rejects = rng.randint(1, max(1, stock // 8))
        facts.append(f"Of these, {rejects} are {p.bad} and get thrown away.")
        stock = work.step("That leaves", "-", stock, rejects, after=f"good {p.items}")
        nouns = f"good {p.items}"
        ask = f"How many good {p.items} are left?"
    if "packs" in plan:
        if "defects" not in plan and stock % size:
            size = _divisor(rng, stock, *p.pack_size)
        facts.append(f"The {nouns} are packed into {p.packs} of {size}.")
        stock = work.step("They fill", "/", stock, size, after=p.packs)
        noun, nouns = p.pack, p.packs
        ask = f"How many {p.packs} are filled?"
    if "price" in plan:
        price = rng.randint(10, 40) if "packs" in plan else rng.randint(1, 5)
        facts.append(f"Each {noun} sells for ${price}.")
        work.step("Selling all of them brings in", "*", stock, price, money=True)
        ask = f"How much money does {the} make by selling all the {nouns}?"
    return _question(facts, ask)


# --- sharing --------------------------------------------------------------------------------------------

# (items, the packs they come in)
_COLLECTIONS = (
    ("stickers", "packs"), ("marbles", "bags"), ("trading cards", "packs"), ("candies", "bags"),
    ("beads", "boxes"), ("pencils", "boxes"), ("seashells", "buckets"), ("cookies", "boxes"),
    ("crayons", "boxes"), ("stamps", "albums"),
)  # fmt: skip
_GROUPS = ("friends", "cousins", "classmates", "teammates", "neighbors")
_GIVERS = ("grandmother", "uncle", "aunt", "neighbor", "teacher", "older cousin")
_SHARING_PLANS = _plans({"packs": 1, "gift": 1, "keep": 1, "already": 1})


def _sharing(rng: random.Random, plan: Plan, work: _Work) -> str:
    (owner,) = _people(rng, 1)
    items, packs = rng.choice(_COLLECTIONS)
    group = rng.choice(_GROUPS)
    if "packs" in plan:
        count, per_pack = rng.randint(2, 8), rng.randint(5, 20)
        facts = [f"{owner.name} buys {count} {packs} of {items} with {per_pack} {items} in each."]
        stock = work.step(f"{owner.name} starts with", "*", count, per_pack, after=items)
    else:
        stock = rng.randint(12, 120)
        facts = [f"{owner.name} has {stock} {items}."]
    if "gift" in plan:
        extra = rng.randint(2, 20)
        facts.append(f"{owner.Her} {rng.choice(_GIVERS)} gives {owner.him} {extra} more.")
        stock = work.step(f"After the gift, {owner.she} has", "+", stock, extra, after=items)
    if "keep" in plan:
        friends = rng.randint(2, 8)
        # Keeping the remainder (plus maybe a few whole rounds) makes the equal share come out exact.
        kept = stock % friends + friends * rng.randint(0, 2) or friends
        facts.append(f"{owner.She} keeps {kept} for {owner.herself} and shares the rest equally "
                     f"among {owner.her} {friends} {group}.")  # fmt: skip
        stock = work.step(f"{owner.She} has", "-", stock, kept, after=f"{items} left to share")
    else:
        friends = _divisor(rng, stock, 2, 8)
        facts.append(f"{owner.She} shares them equally among {owner.her} {friends} {group}.")
    share = work.step(f"Each of {owner.her} {group} gets", "/", stock, friends, after=items)
    ask = f"How many {items} does each of {owner.her} {group} get?"
    if "already" in plan:
        had = rng.randint(2, 15)
        facts.append(f"Each of them already had {had} {items}.")
        work.step("Now each of them has", "+", share, had, after=items)
        ask = f"How many {items} does each of {owner.her} {group} have now?"
    return _question(facts, ask)


# --- ages -----------------------------------------------------------------------------------------------

_AGES_PLANS = _plans(
    {"parent": 1, "grand": 1, "total": 1, "later": 2}, requires={"grand": "parent", "later": "total"}
)
_NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}


def _times(factor: int) -> str:
    return "twice" if factor == 2 else f"{_NUMBER_WORDS[factor]} times"


def _ages(rng: random.Random, plan: Plan, work: _Work) -> str:
    kid, sib = _people(rng, 2)
    age = rng.randint(4, 15)
    gap = rng.randint(1, 9)
    older = age - gap < 2 or rng.random() < 0.6
    facts = [f"{kid.name} is {age} years old.",
             f"{kid.name}'s {sib.sibling} {sib.name} is {_count(gap, 'year')} {'older' if older else 'younger'} "
             f"than {kid.him}."]  # fmt: skip
    sib_age = work.step(f"{sib.name} is", "+" if older else "-", age, gap, after="years old")
    ask = f"How old is {sib.name}?"
    family = [(kid.name, age), (sib.name, sib_age)]
    if "parent" in plan:
        parent = rng.choice(("mother", "father", "aunt", "uncle"))
        times = rng.choice([m for m in (2, 3, 4, 5) if 24 <= sib_age * m <= 60] or [0])
        if not times:
            raise _Retry
        facts.append(f"Their {parent} is {_times(times)} as old as {sib.name}.")
        parent_age = work.step(f"Their {parent} is", "*", sib_age, times, after="years old")
        family.append((f"their {parent}", parent_age))
        ask = f"How old is their {parent}?"
    if "grand" in plan:
        grand = rng.choice(("grandmother", "grandfather"))
        gap = rng.randint(20, min(32, 95 - parent_age))
        facts.append(f"Their {grand} is {gap} years older than their {parent}.")
        grand_age = work.step(f"Their {grand} is", "+", parent_age, gap, after="years old")
        family.append((f"their {grand}", grand_age))
        ask = f"How old is their {grand}?"
    if "total" in plan:
        names = [name for name, _ in family]
        total = work.step("Together they are", "+", *(a for _, a in family), after="years old")
        ask = f"What is the combined age of {_join(names)}?"
    if "later" in plan:
        years = rng.randint(2, 10)
        count = len(family)
        added = work.step(f"In {years} years, each of the {_NUMBER_WORDS[count]} will be {years} years older, "
                          "which adds", "*", count, years, after="years")  # fmt: skip
        work.step("Their combined age will then be", "+", total, added, after="years")
        ask = f"What will the combined age of {_join(names)} be in {years} years?"
    return _question(facts, ask)


# --- savings --------------------------------------------------------------------------------------------

_GOALS = (
    "bike", "video game", "art set", "skateboard", "tablet", "tent", "guitar", "telescope", "pair of skates",
    "camera", "keyboard", "scooter",
)  # fmt: skip
_SAVINGS_PLANS = _plans({"start": 1, "spend": 1, "need": 1, "weeks": 1}, requires={"weeks": "need"})
_SOURCES = (
    "from {her} birthday",
    "in {her} piggy bank",
    "from helping {her} neighbors",
    "from a school prize",
)
_TREATS = ("a book", "a board game", "a gift for a friend", "lunch with friends", "art supplies", "a new cap")


def _savings(rng: random.Random, plan: Plan, work: _Work) -> str:
    (saver,) = _people(rng, 1)
    period = rng.choice(("week", "month"))
    amount, periods = rng.randint(3, 25), rng.randint(2, 12)
    facts: list[str] = []
    if "start" in plan:
        start = rng.randint(5, 60)
        source = rng.choice(_SOURCES).format(her=saver.her)
        facts.append(f"{saver.name} has ${start} {source}.")
    who = saver.She if "start" in plan else saver.name
    facts.append(f"{who} saves ${amount} every {period} for {periods} {period}s.")
    money = work.step(f"In {periods} {period}s, {saver.she} saves", "*", amount, periods, money=True)
    ask = f"How much money does {saver.she} save in {periods} {period}s?"
    if "start" in plan:
        money = work.step(f"Now {saver.she} has", "+", start, money, money=True)
        ask = f"How much money does {saver.name} have now?"
    if "spend" in plan:
        cost = rng.randint(3, min(40, money - 1))  # what the treats above plausibly cost
        facts.append(f"Then {saver.she} spends ${cost} on {rng.choice(_TREATS)}.")
        money = work.step(
            f"After spending ${cost}, {saver.she} has", "-", money, cost, after="left", money=True
        )
        ask = f"How much money does {saver.name} have left?"
    if "need" in plan:
        goal = rng.choice(_GOALS)
        more_periods = rng.randint(2, 10)
        # With "weeks" the missing amount must be a whole number of savings periods.
        missing = amount * more_periods if "weeks" in plan else rng.randint(5, 80)
        facts.append(f"{saver.She} wants to buy {_a(goal)} that costs ${money + missing}.")
        work.step(f"{saver.She} still needs", "-", money + missing, money, money=True)
        ask = f"How much more money does {saver.she} need to buy the {goal}?"
    if "weeks" in plan:
        facts.append(f"{saver.She} keeps saving ${amount} every {period}.")
        work.step("That will take", "/", missing, amount, after=f"more {period}s")
        ask = f"How many more {period}s does {saver.she} need to save to buy the {goal}?"
    return _question(facts, ask)


# --- baking ---------------------------------------------------------------------------------------------

# (what is baked, possible batch sizes)
_BAKES = (
    ("cookies", (12, 18, 24, 36)), ("muffins", (6, 12)), ("cupcakes", (12, 24)), ("brownies", (9, 16, 20)),
    ("pancakes", (8, 10, 12)), ("scones", (8, 12)), ("dinner rolls", (12, 16)), ("waffles", (6, 8)),
)  # fmt: skip
# The main ingredient is one any of the bakes needs; the second one adds variety.
_MAIN_INGREDIENTS = ("flour", "sugar", "milk")
_OTHER_INGREDIENTS = ("oats", "chocolate chips", "butter", "raisins", "chopped nuts", "blueberries")
_BAKING_PLANS = _plans(
    {"guests": 1, "batches": 1, "second": 2, "buy": 1},
    requires={"guests": "batches"},
    excludes=(("second", "buy"),),
)


def _baking(rng: random.Random, plan: Plan, work: _Work) -> str:
    (baker,) = _people(rng, 1)
    baked, sizes = rng.choice(_BAKES)
    main, other = rng.choice(_MAIN_INGREDIENTS), rng.choice(_OTHER_INGREDIENTS)
    batches, per_batch = rng.randint(2, 8), rng.choice(sizes)
    cups, other_cups = rng.randint(2, 4), rng.randint(1, 3)
    wanted = batches * per_batch
    facts: list[str] = []
    if "guests" in plan:
        each = rng.choice([k for k in (2, 3, 4) if wanted % k == 0 and 4 <= wanted // k <= 40] or [0])
        if not each:
            raise _Retry
        guests = wanted // each
        facts.append(
            f"{baker.name} is baking {baked} for {guests} guests and wants each guest to get {each}."
        )
        work.step(f"{baker.She} needs", "*", guests, each, after=baked)
    elif "batches" in plan:
        facts.append(f"{baker.name} wants to bake {wanted} {baked}.")
    else:
        facts.append(f"{baker.name} is baking {batches} batches of {baked}.")
    recipe = [_count(cups, "cup") + f" of {main}"]
    if "second" in plan:
        recipe.append(_count(other_cups, "cup") + f" of {other}")
    facts.append(f"One batch takes {_join(recipe)}.")
    if "batches" in plan:
        facts.append(f"Each batch makes {per_batch} {baked}.")
        work.step("That is", "/", wanted, per_batch, after="batches")
    need = work.step(f"{baker.She} needs", "*", batches, cups, after=f"cups of {main}")
    ask = f"How many cups of {main} does {baker.she} need?"
    if "buy" in plan:
        has = rng.randint(1, need - 1)
        facts.append(f"{baker.She} has only {_count(has, 'cup')} of {main} at home.")
        work.step(f"{baker.She} has to buy", "-", need, has, after=f"more cups of {main}")
        ask = f"How many more cups of {main} does {baker.she} need to buy?"
    if "second" in plan:
        other_need = work.step(f"{baker.She} needs", "*", batches, other_cups, after=f"cups of {other}")
        work.step("Altogether, that is", "+", need, other_need, after=f"cups of {main} and {other}")
        ask = f"How many cups of {main} and {other} does {baker.she} need altogether?"
    return _question(facts, ask)


# --- travel ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Units:
    distance: str
    speeds: tuple[int, int]  # lowest and highest speed, multiples of 5
    fuel: str
    efficiency: tuple[int, int]  # distance per unit of fuel
    fuel_price: tuple[int, int]


_UNITS = (
    _Units("miles", (30, 70), "gallon", (20, 40), (3, 5)),
    _Units("kilometers", (40, 110), "liter", (8, 20), (1, 2)),
)
_TOWNS = (
    "Oakville", "Millbrook", "Riverton", "Cedar Falls", "Lakeside", "Pinecrest", "Brookfield", "Fairview",
    "Ashford", "Westport", "Greenhill", "Maple Bay", "Stonebridge", "Elm Grove",
)  # fmt: skip
_VEHICLES = ("car", "van", "truck", "camper van", "pickup truck")
_TRAVEL_PLANS = _plans({"leg2": 2, "left": 1, "fuel": 1, "cost": 1}, requires={"cost": "fuel"})


def _travel(rng: random.Random, plan: Plan, work: _Work) -> str:
    (driver,) = _people(rng, 1)
    units = rng.choice(_UNITS)
    start, end = rng.sample(_TOWNS, 2)
    vehicle = rng.choice(_VEHICLES)
    # At least 2 hours, so the first step is not a trivial "60 * 1".
    speed, hours = 5 * rng.randint(units.speeds[0] // 5, units.speeds[1] // 5), rng.randint(2, 5)
    drive = f"{driver.She} drives at {speed} {units.distance} per hour for {_count(hours, 'hour')}"
    if "leg2" in plan:
        speed2, hours2 = 5 * rng.randint(units.speeds[0] // 5, units.speeds[1] // 5), rng.randint(1, 4)
        drive += f", then at {speed2} {units.distance} per hour for {_count(hours2, 'more hour')}"
        first = work.step(f"First, {driver.she} covers", "*", speed, hours, after=units.distance)
        second = work.step(f"Then {driver.she} covers", "*", speed2, hours2, after=units.distance)
        distance = work.step(f"In total, {driver.she} drives", "+", first, second, after=units.distance)
        ask = f"How many {units.distance} does {driver.she} drive in total?"
    else:
        distance = work.step(f"{driver.She} drives", "*", speed, hours, after=units.distance)
        ask = f"How many {units.distance} does {driver.she} drive?"
    per_fuel = rng.randint(*units.efficiency)
    if "left" in plan:
        # With fuel for the rest of the trip, the rest must be a whole number of fuel units.
        rest = per_fuel * rng.randint(1, 6) if "fuel" in plan else rng.randint(10, 200)
        trip = (f"{driver.name} is driving {distance + rest} {units.distance} from {start} to {end} "
                f"in {driver.her} {vehicle}.")  # fmt: skip
        distance = work.step(f"{driver.She} still has", "-", distance + rest, distance,
                             after=f"{units.distance} to go")  # fmt: skip
        ask = f"How many more {units.distance} does {driver.she} have to drive to reach {end}?"
    else:
        trip = f"{driver.name} is driving from {start} to {end} in {driver.her} {vehicle}."
        if "fuel" in plan:
            per_fuel = _divisor(rng, distance, *units.efficiency)
    facts = [trip, drive + "."]
    rest_of = " for the rest of the trip" if "left" in plan else ""
    if "fuel" in plan:
        facts.append(f"The {vehicle} uses 1 {units.fuel} of fuel for every {per_fuel} {units.distance}.")
        fuel = work.step(f"{driver.She} needs", "/", distance, per_fuel, after=f"{units.fuel}s of fuel")
        ask = f"How many {units.fuel}s of fuel does {driver.she} need{rest_of or ' for this drive'}?"
    if "cost" in plan:
        price = rng.randint(*units.fuel_price)
        facts.append(f"Fuel costs ${price} per {units.fuel}.")
        work.step(f"{driver.She} pays", "*", fuel, price, money=True)
        ask = f"How much does {driver.she} spend on fuel{rest_of or ' for this drive'}?"
    return _question(facts, ask)


# --- reading --------------------------------------------------------------------------------------------

_BOOKS = (
    "a mystery novel", "a book about space", "a fantasy novel", "a biography", "a history book",
    "an adventure story", "a book about dinosaurs", "a book of fairy tales", "a science fiction novel",
)  # fmt: skip
_READING_PLANS = _plans(
    {"chapters": 1, "more": 2, "left": 1, "days": 1}, requires={"chapters": "left", "days": "left"}
)


def _reading(rng: random.Random, plan: Plan, work: _Work) -> str:
    (reader,) = _people(rng, 1)
    book = rng.choice(_BOOKS)
    pace, days = rng.randint(5, 40), rng.randint(2, 7)
    if "chapters" in plan:
        chapters, per_chapter = rng.randint(8, 30), rng.randint(6, 25)
        facts = [f"{reader.name} is reading {book} with {chapters} chapters of {per_chapter} pages each."]
        pages = work.step("The book has", "*", chapters, per_chapter, after="pages")
    else:
        facts = [f"{reader.name} is reading {book}."]
    facts.append(f"{reader.She} reads {pace} pages a day for {days} days.")
    read = work.step(f"{reader.She} reads", "*", pace, days, after="pages")
    ask = f"How many pages does {reader.she} read in {days} days?"
    if "more" in plan:
        pace2, days2 = rng.randint(5, 50), rng.randint(2, 5)
        facts.append(f"Then {reader.she} reads {pace2} pages a day for {days2} more days.")
        more = work.step(f"Then {reader.she} reads", "*", pace2, days2, after="more pages")
        read = work.step(f"So far {reader.she} has read", "+", read, more, after="pages")
        ask = f"How many pages has {reader.she} read so far?"
    if "left" in plan:
        if "chapters" not in plan:
            # With "days" the rest must split into whole days at the new pace.
            rest = rng.randint(5, 40) * rng.randint(2, 10) if "days" in plan else rng.randint(10, 300)
            pages = read + rest
            facts[0] = f"{reader.name} is reading {book} that has {pages} pages."
        left = work.step(f"{reader.She} has", "-", pages, read, after="pages left")
        ask = f"How many pages does {reader.she} have left to read?"
    if "days" in plan:
        new_pace = _divisor(rng, left, 5, 60)
        facts.append(f"From now on, {reader.she} plans to read {new_pace} pages a day.")
        work.step("It will take", "/", left, new_pace, after="more days")
        ask = f"How many more days will it take {reader.him} to finish the book?"
    return _question(facts, ask)


# --- the benchmark --------------------------------------------------------------------------------------

_Builder = Callable[[random.Random, Plan, _Work], str]
_BUILDERS: dict[str, tuple[_Builder, dict[int, tuple[Plan, ...]]]] = {
    "shopping": (_shopping, _SHOPPING_PLANS),
    "rates": (_rates, _RATES_PLANS),
    "sharing": (_sharing, _SHARING_PLANS),
    "ages": (_ages, _AGES_PLANS),
    "savings": (_savings, _SAVINGS_PLANS),
    "baking": (_baking, _BAKING_PLANS),
    "travel": (_travel, _TRAVEL_PLANS),
    "reading": (_reading, _READING_PLANS),
}
TEMPLATES: tuple[str, ...] = tuple(_BUILDERS)


def _owner(question: str) -> str:
    """The one split a question may appear in: a stable hash partitions all questions, so 'train' and
    'test' never share one, whatever the seeds."""
    return SPLITS[zlib.crc32(question.encode()) % len(SPLITS)]


def _row(index: int, seed: int, split: str, seen: set[str]) -> dict:
    # One RNG stream per row (not one for the whole list) makes generate(k) a prefix of generate(n).
    rng = random.Random(f"{split}:{seed}:{index}")
    template = rng.choice(TEMPLATES)
    steps = rng.randint(1, MAX_STEPS)
    build, plans = _BUILDERS[template]
    # Redraws continue the same stream with template and step count fixed, so rejections (inexact
    # divisions, the other split's questions) never skew the template or step-count mix.
    for _ in range(_MAX_TRIES):
        work = _Work()
        try:
            question = build(rng, rng.choice(plans[steps]), work)
        except _Retry:
            continue
        if question in seen or _owner(question) != split:
            continue
        if len(work.lines) != steps:
            raise RuntimeError(f"arith template {template!r} wrote {len(work.lines)} steps, planned {steps}")
        answer = "\n".join([*work.lines, f"#### {work.value}"])
        return {"id": f"arith-{split}-{index}", "question": question, "answer": answer,
                "template": template, "steps": steps}  # fmt: skip
    raise RuntimeError(f"arith template {template!r} found no clean {steps}-step problem")


def generate(n: int, seed: int = 0, split: str = "test") -> list[dict]:
    """`n` word problems, deterministic for (n, seed, split).

    The first k rows of generate(n) equal generate(k) (so `--limit` picks a prefix), questions are unique
    within a split, and 'train' and 'test' never share a question.
    """
    if split not in SPLITS:
        raise ValueError(f"arith has splits {SPLITS}, not {split!r}")
    seen: set[str] = set()
    rows = []
    for index in range(n):
        row = _row(index, seed, split, seen)
        seen.add(row["question"])
        rows.append(row)
    return rows
