"""People and accounts of the synthetic world: names, typed variants, phones, regions, ids."""

from __future__ import annotations

import numpy as np

from kalasag.simulate import _calib as C

N_VARIANTS = 6


def _zipf_p(n: int, a: float = 0.9) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** a
    return w / w.sum()


PH_SURNAME_P = _zipf_p(len(C.PH_SURNAMES), 0.8)


def pick(rng: np.random.Generator, table: dict[str, float], n: int) -> np.ndarray:
    keys = np.array(list(table), dtype=object)
    p = np.array(list(table.values()), dtype=float)
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


class People:
    """Column store of persons (and companies). Indices are positions in the arrays."""

    def __init__(self) -> None:
        self.cols: dict[str, list[np.ndarray]] = {k: [] for k in (
            "first", "second", "middle", "last", "kind", "country", "tz", "dst", "phone")}
        self.n = 0

    def _add(self, **cols: np.ndarray) -> np.ndarray:
        n = len(cols["first"])
        for k in self.cols:
            self.cols[k].append(np.asarray(cols[k], dtype=object))
        idx = np.arange(self.n, self.n + n)
        self.n += n
        return idx

    def _tz(self, rng, countries):
        tz = np.empty(len(countries), dtype=float)
        dst = np.empty(len(countries), dtype=object)
        for c in np.unique(countries):
            m = countries == c
            info = C.COUNTRY[c]
            zones = np.array(info["tz"], dtype=float)
            w = np.array(info.get("tzw", [1.0] * len(zones)))
            tz[m] = zones[rng.choice(len(zones), size=m.sum(), p=w / w.sum())]
            dst[m] = info["dst"]
        # Perth (AU, +8) has no DST
        dst[(countries == "AU") & (tz == 8)] = ""
        return tz, dst

    def _phone(self, rng, countries):
        out = np.empty(len(countries), dtype=object)
        ph = countries == "PH"
        n_ph = int(ph.sum())
        pref = np.array(C.PH_MOBILE_PREFIXES, dtype=object)[rng.integers(0, len(C.PH_MOBILE_PREFIXES), n_ph)]
        num = rng.integers(0, 10**7, n_ph)
        out[ph] = [f"63{p}{x:07d}" for p, x in zip(pref, num)]
        other = np.flatnonzero(~ph)
        nums = rng.integers(10**8, 10**10, len(other))
        out[other] = [C.DIAL_CODE[countries[i]] + str(x) for i, x in zip(other, nums)]
        return out

    def add_filipinos(self, rng, n, *, country="PH", female_p=0.556, surnames=None, countries=None):
        female = rng.random(n) < female_p
        first = np.where(female, np.array(C.PH_FEMALE, dtype=object)[rng.integers(0, len(C.PH_FEMALE), n)],
                         np.array(C.PH_MALE, dtype=object)[rng.integers(0, len(C.PH_MALE), n)])
        p2 = np.where(first == "Maria", 0.9, 0.3)
        sec_f = np.array(C.PH_SECOND_F, dtype=object)[rng.integers(0, len(C.PH_SECOND_F), n)]
        sec_m = np.array(C.PH_SECOND_M, dtype=object)[rng.integers(0, len(C.PH_SECOND_M), n)]
        multi = np.char.find(first.astype(str), " ") >= 0          # "Mary Ann", "John Paul"
        second = np.where((rng.random(n) < p2) & ~multi, np.where(female, sec_f, sec_m), "")
        sur = np.array(C.PH_SURNAMES, dtype=object)
        middle = sur[rng.choice(len(sur), size=n, p=PH_SURNAME_P)]
        last = sur[rng.choice(len(sur), size=n, p=PH_SURNAME_P)] if surnames is None else np.asarray(surnames, dtype=object)
        if countries is None:
            countries = np.full(n, country, dtype=object)
        tz, dst = self._tz(rng, countries)
        return self._add(first=first, second=second, middle=middle, last=last,
                         kind=np.full(n, "ph", dtype=object), country=countries, tz=tz, dst=dst,
                         phone=self._phone(rng, countries))

    def add_foreigners(self, rng, n, countries, *, male_p=0.9):
        countries = np.asarray(countries, dtype=object)
        first = np.empty(n, dtype=object)
        last = np.empty(n, dtype=object)
        male = rng.random(n) < male_p
        for c in np.unique(countries):
            m = np.flatnonzero(countries == c)
            culture = C.COUNTRY[c]["names"]
            if culture == "us":
                males, females, surs = C.FOREIGN_NAMES["en"]
                hisp = C.FOREIGN_NAMES["us"][2]
                s = np.array(surs, dtype=object)[rng.integers(0, len(surs), len(m))]
                h = rng.random(len(m)) < 0.2
                s[h] = np.array(hisp, dtype=object)[rng.integers(0, len(hisp), int(h.sum()))]
            else:
                males, females, surs = C.FOREIGN_NAMES[culture]
                s = np.array(surs, dtype=object)[rng.integers(0, len(surs), len(m))]
            fm = np.array(males, dtype=object)[rng.integers(0, len(males), len(m))]
            ff = np.array(females, dtype=object)[rng.integers(0, len(females), len(m))]
            first[m] = np.where(male[m], fm, ff)
            last[m] = s
        # a middle initial for some (typed only in some variants)
        letters = np.array(list("ABCDEFGHJKLMNPRSTW"), dtype=object)
        middle = np.where(rng.random(n) < 0.4, letters[rng.integers(0, len(letters), n)], "")
        tz, dst = self._tz(rng, countries)
        return self._add(first=first, second=np.full(n, "", dtype=object), middle=middle, last=last,
                         kind=np.full(n, "foreign", dtype=object), country=countries, tz=tz, dst=dst,
                         phone=self._phone(rng, countries))

    def add_companies(self, rng, n, countries, names=None):
        countries = np.asarray(countries, dtype=object)
        if names is None:
            a = np.array(C.COMPANY_WORDS_A, dtype=object)[rng.integers(0, len(C.COMPANY_WORDS_A), n)]
            b = np.array(C.COMPANY_WORDS_B, dtype=object)[rng.integers(0, len(C.COMPANY_WORDS_B), n)]
            k = np.array(C.COMPANY_KIND, dtype=object)[rng.integers(0, len(C.COMPANY_KIND), n)]
            names = np.array([f"{x}{y} {z}" for x, y, z in zip(a, b, k)], dtype=object)
        suffix = np.array([C.COMPANY_SUFFIX.get(c, "Ltd") for c in countries], dtype=object)
        tz, dst = self._tz(rng, countries)
        return self._add(first=np.asarray(names, dtype=object), second=np.full(n, "", dtype=object),
                         middle=np.full(n, "", dtype=object), last=suffix,
                         kind=np.full(n, "company", dtype=object), country=countries, tz=tz, dst=dst,
                         phone=self._phone(rng, countries))

    def finish(self) -> dict[str, np.ndarray]:
        return {k: np.concatenate(v) if v else np.empty(0, dtype=object) for k, v in self.cols.items()}


def name_variants(P: dict[str, np.ndarray]) -> np.ndarray:
    """(n_persons, N_VARIANTS) object array of ways the person's name gets typed."""
    n = len(P["first"])
    out = np.empty((n, N_VARIANTS), dtype=object)
    for i in range(n):
        f, s, m, last, kind = P["first"][i], P["second"][i], P["middle"][i], P["last"][i], P["kind"][i]
        if kind == "ph":
            given = f"{f} {s}" if s else f
            short = ("Ma. " + s) if (f == "Maria" and s) else (f"{f} {m[0]}." if m else f)
            parts = last.split(" ")
            compound = len(parts) > 1
            if compound:
                alt = f"{s or f} {parts[0][0]}. {' '.join(parts[1:])}"     # Cristina D. Cruz
            else:
                alt = f"{s or f} {last}"                                 # goes by the second name
            gi = (s or f)[0] if s else ""
            out[i] = (
                f"{given} {last}",
                f"{short} {last}" if f == "Maria" and s else f"{given} {m[0]}. {last}",
                f"{given} {last.replace(' ', '')}".upper(),
                alt,
                (f"{last}, {f} {gi}." if gi else f"{last}, {f}").upper(),
                f"{given} {m[0]}. {last}".lower(),
            )
        elif kind == "foreign":
            mi = f" {m}." if m else ""
            out[i] = (
                f"{f} {last}",
                f"{f}{mi} {last}",
                f"{f} {last}".upper(),
                f"{f[0]}. {last}",
                f"{last}, {f}".upper(),
                f"{f} {last}".lower(),
            )
        else:  # company: first = name, last = legal suffix
            full = f"{f} {last}".strip()
            out[i] = (full, full, full.upper(), f, f.upper(), full.replace(".", ""))
    return out


def phone_styles(digits: np.ndarray, country: np.ndarray) -> np.ndarray:
    """(n, 4) object array of typed formats of each phone number."""
    n = len(digits)
    out = np.empty((n, 4), dtype=object)
    for i in range(n):
        d = digits[i]
        if country[i] == "PH":
            nat = d[2:]                       # 9171234567
            out[i] = (f"0{nat}", f"+63 {nat[:3]} {nat[3:6]} {nat[6:]}", d, f"{nat[:3]}-{nat[3:6]}-{nat[6:]}")
        else:
            cc = C.DIAL_CODE[country[i]]
            nat = d[len(cc):]
            out[i] = (f"+{d}", f"+{cc} {nat[:3]} {nat[3:6]} {nat[6:]}", d, f"00{d}")
    return out


def hex_ids(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """n unique lowercase hex strings of `width` characters (opaque, random)."""
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        k = n - len(out)
        raw = rng.bytes(k * ((width + 1) // 2)).hex()
        step = 2 * ((width + 1) // 2)
        for i in range(k):
            x = raw[i * step:i * step + width]
            if x not in seen:
                seen.add(x)
                out.append(x)
    return np.array(out, dtype=object)
