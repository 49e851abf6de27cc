"""The literal guard: what must match exactly before a paraphrase may share a cached answer.

Static embeddings average word vectors, so "transfer $100 to Alice" and "transfer $1000
to Alice" score 0.997: no single similarity threshold separates them. The semantic
cache therefore answers a prompt from another one only when both carry the same
*literals*:

- numbers (``1,000`` = ``1000``, ``two`` = ``2``, ``3rd`` = ``3``), percentages;
- currencies (``$``, ``USD``, ``dollars`` are one currency), so amounts match as
  a number plus a currency;
- dates: month and weekday names, ``today``, ``tomorrow``, ``next week``…, years and
  day numbers (numbers);
- named entities: capitalised words inside a sentence, words with inner digits or
  capitals (``iPhone``, ``B12``), and a built-in list of places and drug names that
  users often type in lower case; two or more entities also count in order, so "from
  Paris to Rome" never answers "from Rome to Paris";
- negation (``not``, ``no``, ``never``, ``without``, ``n't``…): "can I take X" never
  answers "can I not take X";
- opposite-direction words (before/after, more/less, buy/sell, …);
- the words and phrases listed in ``llm.cache.literal_terms`` (e.g. drug names).

:func:`literals` returns them as a frozenset of normalised strings; the cache requires
equal sets for a semantic hit (an exact hit needs no guard).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["literals"]

_WORD = re.compile(
    r"[$€£¥₹]?\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th|%|k|m)?|[A-Za-z][A-Za-z0-9'’\-]*|[$€£¥₹]"
)
_NUMBER = re.compile(r"^([$€£¥₹]?)(\d[\d,]*(?:\.\d+)?)(st|nd|rd|th|%|k|m)?$")
_SENTENCE_END = re.compile(r"[.!?:;\n]\s*$")

_CURRENCIES = {
    "$": "usd", "usd": "usd", "dollar": "usd", "dollars": "usd", "bucks": "usd",
    "€": "eur", "eur": "eur", "euro": "eur", "euros": "eur",
    "£": "gbp", "gbp": "gbp", "pound": "gbp", "pounds": "gbp", "quid": "gbp",
    "¥": "jpy", "jpy": "jpy", "yen": "jpy", "₹": "inr", "inr": "inr", "rupees": "inr",
    "chf": "chf", "francs": "chf", "cad": "cad", "aud": "aud", "btc": "btc", "bitcoin": "btc",
}  # fmt: skip
_NUMBER_WORDS = {
    "zero": "0", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17",
    "eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40",
    "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000",
    "first": "1", "third": "3", "fourth": "4", "fifth": "5", "half": "0.5",
    "twice": "2", "dozen": "12", "double": "2", "triple": "3",
}  # fmt: skip
_MONTHS = {
    "jan": "1", "january": "1", "feb": "2", "february": "2", "mar": "3", "march": "3",
    "apr": "4", "april": "4", "may": "5", "jun": "6", "june": "6", "jul": "7", "july": "7",
    "aug": "8", "august": "8", "sep": "9", "sept": "9", "september": "9", "oct": "10",
    "october": "10", "nov": "11", "november": "11", "dec": "12", "december": "12",
}  # fmt: skip
_DAYS = {
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "today",
    "tomorrow", "yesterday", "tonight", "weekend", "morning", "afternoon", "evening",
    "night", "noon", "midnight", "spring", "summer", "autumn", "winter",
}  # fmt: skip
_RELATIVE = {"next", "last", "this", "previous", "coming"}
_PERIODS = {"week", "month", "year", "quarter", "decade", "century"}
_NEGATIONS = {
    "not", "no", "never", "without", "none", "nor", "neither", "nothing", "nobody",
    "cannot", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont",
    "cant", "couldnt", "shouldnt", "wouldnt", "mustnt", "havent", "hasnt", "hadnt",
}  # fmt: skip
# Each word stands for its side of an opposition; a paraphrase keeps its side.
_POLES = {
    "before": "before", "after": "after", "above": "above", "below": "below",
    "more": "more", "less": "less", "fewer": "less", "increase": "up", "raise": "up",
    "decrease": "down", "reduce": "down", "lower": "down", "buy": "buy", "sell": "sell",
    "maximum": "max", "max": "max", "minimum": "min", "min": "min", "earliest": "first",
    "latest": "last", "import": "import", "export": "export", "deposit": "in",
    "withdraw": "out", "upload": "up", "download": "down", "encrypt": "enc",
    "decrypt": "dec", "inside": "in", "outside": "out", "hot": "hot", "cold": "cold",
    "male": "m", "female": "f", "adult": "adult", "adults": "adult", "child": "child",
    "children": "child",
    "kids": "child", "left": "left", "right": "right", "north": "n", "south": "s",
    "east": "e", "west": "w", "upgrade": "up", "downgrade": "down", "open": "open",
    "opens": "open", "opening": "open", "close": "close", "closes": "close",
    "closing": "close", "closed": "close", "over": "above", "under": "below",
    "start": "start", "starts": "start", "begin": "start", "began": "start",
    "end": "end", "ends": "end", "finish": "end", "ended": "end", "finished": "end",
}  # fmt: skip
# Places and drugs users type in lower case; capitalised names are found without a list.
_KNOWN_NAMES = frozenset(
    """
    paris london rome berlin madrid lisbon amsterdam brussels vienna prague warsaw budapest
    dublin oslo stockholm copenhagen helsinki athens istanbul moscow kyiv cairo lagos
    nairobi tokyo osaka kyoto beijing shanghai seoul delhi mumbai bangalore bangkok
    singapore jakarta manila sydney melbourne auckland toronto vancouver montreal chicago
    boston seattle miami denver dallas houston atlanta austin york francisco angeles vegas
    mexico lima bogota santiago dubai zurich geneva munich milan barcelona france germany
    spain italy portugal ireland england scotland wales britain netherlands belgium austria
    switzerland poland greece turkey russia ukraine egypt nigeria kenya japan china korea
    india thailand vietnam indonesia australia zealand canada usa america brazil argentina
    chile peru colombia ibuprofen paracetamol acetaminophen aspirin naproxen codeine
    tramadol morphine oxycodone amoxicillin penicillin azithromycin doxycycline
    ciprofloxacin metformin insulin lisinopril amlodipine atorvastatin simvastatin
    omeprazole pantoprazole warfarin heparin sertraline fluoxetine citalopram escitalopram
    diazepam alprazolam lorazepam melatonin prednisone cetirizine loratadine diphenhydramine
    levothyroxine metoprolol losartan gabapentin tylenol advil motrin xanax zoloft prozac
    viagra sildenafil
    """.split()  # noqa: SIM905 (a word list reads better as text)
)
_ORDINARY_CAPITALS = {"i", "i'm", "i've", "i'd", "i'll", "ok", "okay", "hi", "hello", "dear"}


def literals(text: str, terms: Iterable[str] = ()) -> frozenset[str]:
    """The literals of ``text`` that must match exactly, as normalised strings.

    ``terms`` are extra words or phrases (case-insensitive, whole words) that count
    when present, e.g. the configured ``literal_terms``.
    """
    found: set[str] = set()
    entities: list[str] = []
    phrases = [" ".join(m.group(0).lower() for m in _WORD.finditer(term)) for term in terms]
    term_words = {word for phrase in phrases for word in phrase.split()}
    words = list(_WORD.finditer(text))
    for index, match in enumerate(words):
        token = match.group(0)
        lower = token.lower().replace("’", "'").removesuffix("'s")
        bare = lower.replace("'", "")
        number = _NUMBER.match(lower)
        if number:
            currency, digits, suffix = number.groups()
            value = _number(digits, suffix)
            found.add(f"num:{value}")
            if currency:
                found.add(f"cur:{_CURRENCIES[currency]}")
            if suffix == "%":
                found.add("unit:%")
        elif lower in _CURRENCIES:
            found.add(f"cur:{_CURRENCIES[lower]}")
        elif lower in _NUMBER_WORDS:
            found.add(f"num:{_NUMBER_WORDS[lower]}")
        elif lower in _MONTHS and (lower != "may" or token == "May"):
            found.add(f"month:{_MONTHS[lower]}")
        elif lower in _DAYS:
            found.add(f"day:{lower}")
        elif lower in _PERIODS and index and words[index - 1].group(0).lower() in _RELATIVE:
            found.add(f"when:{words[index - 1].group(0).lower()}-{lower}")
        elif bare in _NEGATIONS or lower.endswith("n't"):
            found.add("neg")
        elif lower in _POLES:
            found.add(f"pole:{_POLES[lower]}")
        elif lower in term_words:
            continue  # counted as a configured term below, however it is capitalised
        elif lower in _KNOWN_NAMES or _is_name(token, text, match.start()):
            entities.append(lower)
    found.update(f"name:{entity}" for entity in entities)
    if len(set(entities)) > 1:
        found.add("order:" + ">".join(dict.fromkeys(entities)))
    folded = " " + " ".join(m.group(0).lower() for m in words) + " "
    for phrase in phrases:
        if phrase and f" {phrase} " in folded:
            found.add(f"term:{phrase}")
    return frozenset(found)


def _number(digits: str, suffix: str | None) -> str:
    value = float(digits.replace(",", ""))
    if suffix == "k":
        value *= 1_000
    elif suffix == "m":
        value *= 1_000_000
    return f"{value:g}" if value != int(value) else str(int(value))


def _is_name(token: str, text: str, start: int) -> bool:
    """A capitalised word inside a sentence, or a word with inner capitals or digits."""
    if any(c.isdigit() for c in token) or any(c.isupper() for c in token[1:]):
        return not token.isupper() or len(token) > 1
    if not token[0].isupper() or token.lower() in _ORDINARY_CAPITALS:
        return False
    before = text[:start]
    return bool(before.strip()) and not _SENTENCE_END.search(before)
