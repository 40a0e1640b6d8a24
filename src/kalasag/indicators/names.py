"""Name normalization and the "related" rule (I-05), as portable Ibis string expressions.

Rule (documented in docs/indicators.md):

1. Normalize a name: lower-case; strip accents (á→a, ñ→n…); drop apostrophes; a comma means
   "SURNAME, GIVEN [MIDDLE]" and is reordered to "GIVEN [MIDDLE] SURNAME"; everything that is not a
   letter becomes a space; "ma"→"maria", "sta"→"santa", "sto"→"santo"; generational suffixes
   (jr, sr, ii, iii, iv) are dropped; surname particles are glued to the word after them
   ("de la cruz", "dela cruz", "delacruz" → "delacruz"; "de los santos"/"delos santos" →
   "delossantos"; "del rosario" → "delrosario"; "san juan" → "sanjuan"; "sta. maria" →
   "santamaria"; "van der berg" → "vanderberg"); spaces are collapsed.
2. Tokens: the last token is the surname; with three or more tokens the one before it is the middle
   name (Filipino usage: the mother's maiden surname). Tokens of one letter are initials and are
   never family names (a name whose surname is an initial has no usable family name).
3. Two names are *related* iff their family-name sets {surname, middle name} intersect (the
   middle name is used only when `use_middle_name` is true). If either side has no usable surname
   (name missing, empty or only initials) the relation is *unknown* (NULL).

Only lower, translate, re_replace, re_extract, nullif and comparisons are used: all
exist in DuckDB and Spark SQL. Replacements never use back-references (their syntax differs).

The same functions run on one Python string for the real-time service: pass
`kalasag.indicators.ops.Text(raw)` instead of a column (and `X=SCALAR` where a function takes `X`).
"""

from __future__ import annotations

import ibis.expr.types as ir

from kalasag.indicators.ops import IBIS

_ACCENT_MAP = {
    "a": "áàâäãåāăą", "e": "éèêëēėę", "i": "íìîïīį", "o": "óòôöõøō", "u": "úùûüūų",
    "n": "ñń", "c": "çćč", "y": "ýÿ", "s": "š", "z": "ž", "d": "đ",
}
ACCENTED = "".join(v for v in _ACCENT_MAP.values())
PLAIN = "".join(k * len(v) for k, v in _ACCENT_MAP.items())

# Abbreviations expanded as whole tokens.
ABBREVIATIONS: tuple[tuple[str, str], ...] = (("ma", "maria"), ("sta", "santa"), ("sto", "santo"))
SUFFIXES = r"\b(jr|sr|ii|iii|iv)\b"
# Surname particles, glued to the next word. Order matters: simple particles first, then the
# compounds the first pass produces ("de la" → "dela" → glued again).
PARTICLES: tuple[str, ...] = (
    "de", "di", "da", "do", "du", "van", "von", "san", "santa", "santo",
    "la", "las", "los", "der", "den", "del", "dela", "delas", "delos", "vander", "vanden", "vonder",
)


def normalize_name(name: ir.StringValue) -> ir.StringValue:
    """Normalized form of a personal name (NULL when nothing usable is left).

    Written so that every step refers to the previous one once: the SQL stays small."""
    s = name.lower().translate(ACCENTED, PLAIN).re_replace(r"['’`]", "")
    # "surname, given middle" → "given middle surname"; without a comma: "" + " " + name.
    # (re_extract, not split + element_at: Spark's ANSI mode fails on a missing array element.)
    s = s.re_extract(r",(.*)$", 1) + " " + s.re_extract(r"^([^,]*)", 1)
    s = s.re_replace(r"[^a-z]+", " ")
    s = " " + s + " "
    for short, full in ABBREVIATIONS:
        s = s.re_replace(rf" {short} ", f" {full} ")
    s = s.re_replace(SUFFIXES, " ").re_replace(r"\s+", " ")
    for p in PARTICLES:
        s = s.re_replace(rf"\b{p} ", p)
    return s.strip().nullif("")


def surname(norm: ir.StringValue) -> ir.StringValue:
    """Last token of a normalized name, NULL when missing or an initial."""
    return norm.re_extract(r"(?:^| )([a-z]{2,})$", 1).nullif("")


def middle_name(norm: ir.StringValue) -> ir.StringValue:
    """Second-to-last token of a normalized name of ≥ 3 tokens, NULL when absent or an initial."""
    return norm.re_extract(r"^[a-z]+ (?:[a-z]+ )*([a-z]{2,}) [a-z]+$", 1).nullif("")


def given_name(norm: ir.StringValue) -> ir.StringValue:
    """First token of a normalized name of ≥ 2 tokens."""
    return norm.re_extract(r"^([a-z]+) ", 1).nullif("")


def identity_key(norm: ir.StringValue) -> ir.StringValue:
    """"first-given|surname": the same person typed differently ("Ma. Cristina Dela Cruz",
    "DELA CRUZ, MARIA C.") gets the same key (used by I-21)."""
    return given_name(norm) + "|" + surname(norm)


def _eq(a: ir.StringValue, b: ir.StringValue, X=IBIS) -> ir.BooleanValue:
    return X.fill_null(X.eq(a, b), False)


def related(
    sur_a: ir.StringValue,
    mid_a: ir.StringValue,
    sur_b: ir.StringValue,
    mid_b: ir.StringValue,
    use_middle_name: bool,
    X=IBIS,
) -> ir.BooleanValue:
    """True/False by the family-name rule; NULL (unknown) when either surname is missing.
    (Stream: X = SCALAR and the four names as Python strings or None.)"""
    rel = _eq(sur_a, sur_b, X)
    if use_middle_name:
        rel = X.or_(rel, _eq(mid_a, sur_b, X), _eq(sur_a, mid_b, X), _eq(mid_a, mid_b, X))
    return X.ifelse(X.or_(X.isnull(sur_a), X.isnull(sur_b)), X.null("boolean"), rel)


def name_parts(table: ir.Table, column: str, prefix: str, engine=None) -> ir.Table:
    """Distinct names of `column` with their normalized form, surname, middle name and identity key.
    With an `engine`, the normalized names are materialized first (keeps the SQL small)."""
    d = table.select(raw=table[column]).filter(lambda t: t.raw.notnull()).distinct()
    d = d.mutate(norm=normalize_name(d.raw))
    if engine is not None:
        d = engine.materialize(d)
    return d.select(
        **{
            column: d.raw,
            f"{prefix}_norm": d.norm,
            f"{prefix}_surname": surname(d.norm),
            f"{prefix}_middle": middle_name(d.norm),
            f"{prefix}_key": identity_key(d.norm),
        }
    )


def phone_key(phone: ir.StringValue, digits: int, X=IBIS) -> ir.StringValue:
    """The last `digits` digits of a phone number (so +63 917…, 0917… and 917… agree)."""
    d = phone.re_replace(r"[^0-9]", "")
    return X.ifelse(X.ge(d.length(), digits), d.right(digits), X.null("string"))


# ---- comparison keys for entity resolution (kalasag.entities) --------------------------------
# Public helpers added for issue 4. Same portability rules as above (no lambdas, no array
# indexing, no back-references).

# Particles a glued surname may start with, longest first (RE2 and Java take the first
# alternative that lets the whole pattern match).
CORE_PARTICLES: tuple[str, ...] = (
    "delos", "delas", "dela", "del", "de", "vander", "vanden", "van", "von", "santa", "santo", "san",
)


def _drop_initials(s: ir.StringValue) -> ir.StringValue:
    return s.re_replace(r"\b[a-z]\b", " ").re_replace(r"\s+", " ").strip().nullif("")


def name_signature(norm: ir.StringValue) -> ir.StringValue:
    """The words of a normalized name (initials dropped) sorted alphabetically: the same for
    "DELA CRUZ MARIA CRISTINA" (surname first, no comma) and "Maria Cristina Dela Cruz"."""
    return _drop_initials(norm).split(" ").sort().join(" ")


def given_tokens(norm: ir.StringValue) -> ir.ArrayValue:
    """The given names (every word before the surname, initials dropped) as an array; NULL when
    there are none ("J. Smith", "Santos")."""
    return _drop_initials(norm.re_replace(r" ?[a-z]+$", "")).split(" ")


def given_initial(norm: ir.StringValue) -> ir.StringValue:
    """First letter of the first word of a name of two words or more ("J. Smith" → "j")."""
    return norm.re_extract(r"^([a-z])[a-z]* [a-z]", 1).nullif("")


def surname_core(sur: ir.StringValue) -> ir.StringValue:
    """A surname without its leading particle when at least four letters remain:
    "delacruz" → "cruz" (so "Cristina D. Cruz" meets "Dela Cruz"), "delossantos" → "santos",
    "santos" stays "santos". A comparison key only: "delgado" → "gado", "sanchez" → "chez" are
    harmless because the same rule applies to both names compared."""
    alt = "|".join(CORE_PARTICLES)
    core = sur.re_extract(rf"^(?:{alt})([a-z]{{4,}})$", 1).nullif("")
    return core.coalesce(sur)
