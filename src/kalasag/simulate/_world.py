"""The populations of the synthetic world and their transfers (vectorised numpy).

Each generator creates its people and accounts, then emits a chunk of transfer events:
sender account, receiver account, local day and second (in the *sender's* local time), USD amount,
a round-amount flag, a reference, and how the channel is chosen. `assemble` turns the chunks into
the canonical transfer table.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import numpy as np

from kalasag.simulate import _calib as C
from kalasag.simulate._people import People, PH_SURNAME_P, pick

DAYS_PER_MONTH = 30.4375

# channel mixes used when the channel is not the receiving account's own (e.g. a card top-up)
MIXES: dict[str, dict[str, float]] = {
    "family": {"bank": 0.5, "mto": 0.35, "ewallet": 0.15},
    "partner": {"bank": 0.3, "mto": 0.4, "ewallet": 0.2, "card": 0.1},
    "business": {"bank": 0.6, "other": 0.2, "ewallet": 0.15, "crypto": 0.05},
    "donor": {"card": 0.65, "bank": 0.3, "other": 0.05},
    "shop": {"card": 0.45, "ewallet": 0.45, "other": 0.1},
    "friend": {"mto": 0.4, "card": 0.3, "ewallet": 0.2, "bank": 0.1},
    "domestic": {"ewallet": 0.7, "bank": 0.2, "mto": 0.1},
    "customer": {"mto": 0.5, "ewallet": 0.3, "card": 0.12, "crypto": 0.04, "other": 0.04},
}
MIX_NAMES = tuple(MIXES)

KINDS = {
    "family": {"bank": 0.5, "mto": 0.32, "ewallet": 0.18},
    "partner": {"bank": 0.4, "mto": 0.32, "ewallet": 0.28},
    "romance": {"mto": 0.5, "ewallet": 0.43, "bank": 0.07},
    "freelancer": {"ewallet": 0.5, "bank": 0.4, "other": 0.1},
    "charity": {"bank": 0.85, "ewallet": 0.15},
    "seller": {"ewallet": 0.7, "bank": 0.2, "other": 0.1},
    "friend": {"mto": 0.45, "ewallet": 0.35, "bank": 0.2},
    "facilitator": {"mto": 0.45, "ewallet": 0.4, "bank": 0.15},
}


@dataclass
class World:
    rng: np.random.Generator
    params: dict
    scale: float
    start: date
    months: int
    people: People = field(default_factory=People)
    acc_person: list = field(default_factory=list)
    acc_role: list = field(default_factory=list)
    acc_group: list = field(default_factory=list)
    acc_kind: list = field(default_factory=list)
    acc_region: list = field(default_factory=list)
    chunks: list = field(default_factory=list)
    phone_links: list = field(default_factory=list)
    switches: list = field(default_factory=list)
    n_acc: int = 0
    n_groups: int = 0

    def __post_init__(self) -> None:
        y, m = self.start.year, self.start.month
        starts = [0]
        self.month_num = []
        d0 = date(y, m, 1)
        cur = d0
        for _ in range(self.months):
            self.month_num.append(cur.month)
            nd = calendar.monthrange(cur.year, cur.month)[1]
            starts.append(starts[-1] + nd)
            cur = date(cur.year + (cur.month == 12), cur.month % 12 + 1, 1)
        self.month_start = np.array(starts)
        self.month_num = np.array(self.month_num)
        self.month_len = np.diff(self.month_start)
        self.ndays = int(self.month_start[-1])
        self.start_epoch = int(datetime(d0.year, d0.month, 1, tzinfo=timezone.utc).timestamp())
        self.start_weekday = d0.weekday()

    # ---------------------------------------------------------------- helpers
    def n(self, key: str, minimum: int = 1) -> int:
        return max(minimum, int(round(self.params[key] * self.scale)))

    def groups(self, k: int) -> np.ndarray:
        g = np.arange(self.n_groups, self.n_groups + k)
        self.n_groups += k
        return g

    def accounts(self, persons, role, group, kind=None, region=None) -> np.ndarray:
        persons = np.asarray(persons)
        k = len(persons)
        idx = np.arange(self.n_acc, self.n_acc + k)
        self.n_acc += k
        self.acc_person.append(persons)
        self.acc_role.append(np.full(k, role, dtype=object))
        self.acc_group.append(np.broadcast_to(np.asarray(group), (k,)).copy())
        if kind is None:
            kinds = np.full(k, "", dtype=object)
        elif isinstance(kind, str):
            kinds = pick(self.rng, KINDS[kind], k) if kind in KINDS else np.full(k, kind, dtype=object)
        else:
            kinds = np.asarray(kind, dtype=object)
        self.acc_kind.append(kinds)
        self.acc_region.append(np.full(k, "", dtype=object) if region is None else np.asarray(region, dtype=object))
        return idx

    def acc_person_of(self, accs) -> np.ndarray:
        return np.concatenate(self.acc_person)[accs]

    def add_switch(self, accs, frac: float, role: str, group) -> None:
        """A share `frac` of these sending accounts move to a new account of the same person on a
        random day (a new app, a closed account): entity resolution must link them."""
        accs = np.asarray(accs)
        sel = np.flatnonzero(self.rng.random(len(accs)) < frac)
        if len(sel) == 0:
            return
        persons = self.acc_person_of(accs[sel])
        new = self.accounts(persons, role, np.broadcast_to(np.asarray(group), (len(accs),))[sel])
        self.switches.append((accs[sel], new, self.rng.uniform(30, max(self.ndays - 30, 31), len(sel))))

    def regions(self, k: int, tilt: float = 1.0) -> np.ndarray:
        table = dict(C.PH_REGIONS)
        if tilt != 1.0:
            for r in C.CASE_REGIONS:
                table[r] *= tilt
        reg = pick(self.rng, table, k)
        ncr = reg == "Metro Manila"
        reg[ncr] = np.array(C.NCR_SPELLINGS, dtype=object)[self.rng.integers(0, len(C.NCR_SPELLINGS), int(ncr.sum()))]
        return reg

    def tod(self, n: int, night_share, profile: str = "day") -> np.ndarray:
        """Local seconds of the day; `night_share` (scalar or per event) are sent 22:00-06:00."""
        rng = self.rng
        if profile == "business":
            h = rng.uniform(8.5, 17.5, n)
        elif profile == "evening":
            h = np.clip(rng.normal(19.0, 2.2, n), 7.0, 21.99)
        else:
            h = np.clip(rng.normal(13.0, 3.3, n), 6.2, 21.99)
        night = rng.random(n) < night_share
        h = np.where(night, (22.0 + rng.random(n) * 8.0) % 24.0, h)
        return (h * 3600).astype(np.int64)

    def span_events(self, rate, start, end, growth=None, min1=True):
        """Poisson events between start and end day (floats) with a linearly growing rate.

        rate is per month at the start; growth g means the rate ends g times higher.
        Returns owner index, day (float), and t in [0, 1] (position in the span)."""
        rng = self.rng
        rate = np.asarray(rate, float)
        g = np.ones_like(rate) if growth is None else np.asarray(growth, float)
        length = np.maximum(np.asarray(end, float) - np.asarray(start, float), 0.0)
        lam = rate * length / DAYS_PER_MONTH * (1.0 + g) / 2.0
        cnt = rng.poisson(lam)
        if min1:
            cnt = np.where(length > 0, np.maximum(cnt, 1), 0)
        owner = np.repeat(np.arange(len(rate)), cnt)
        u = rng.random(len(owner))
        a = (g - 1.0)[owner]
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(a > 1e-9, (-1.0 + np.sqrt(1.0 + 2.0 * a * u * (1.0 + a / 2.0))) / np.where(a > 1e-9, a, 1.0), u)
        day = np.asarray(start, float)[owner] + t * length[owner]
        return owner, day, t

    def grid_events(self, start, end, period, jitter=1.0):
        """Regular events every `period` days from a random phase after start until end."""
        rng = self.rng
        start = np.asarray(start, float)
        period = np.asarray(period, float)
        phase = rng.random(len(start)) * period
        cnt = np.maximum(np.floor((np.asarray(end, float) - start - phase) / period) + 1, 0).astype(int)
        owner = np.repeat(np.arange(len(start)), cnt)
        offs = np.repeat(np.cumsum(cnt) - cnt, cnt)
        k = np.arange(len(owner)) - offs
        day = start[owner] + phase[owner] + k * period[owner] + rng.normal(0, jitter, len(owner))
        day = np.clip(day, start[owner], np.asarray(end, float)[owner] - 1e-3)
        return owner, day, k

    def cluster_days(self, owner, day, bursty, mean_size: float = 3.0, spread_days: float = 2.0):
        """Pull the events of `bursty` owners into binges: runs of ~mean_size consecutive events
        land within `spread_days` of the run's first event (gaps between binges grow)."""
        owner = np.asarray(owner)
        day = np.asarray(day, float).copy()
        if len(owner) == 0:
            return day
        order = np.lexsort((day, owner))
        o, d = owner[order], day[order]
        first = np.r_[True, o[1:] != o[:-1]]
        start = first | (self.rng.random(len(o)) < 1.0 / mean_size) | ~bursty[o]
        head = np.maximum.accumulate(np.where(start, np.arange(len(o)), 0))
        new = np.where(start, d, d[head] + self.rng.random(len(o)) * spread_days)
        day[order] = np.maximum(new, d[head])
        return day

    def monthly_days(self, owners, payday, m_idx, jitter=1.3):
        rng = self.rng
        dim = payday[owners] + np.clip(np.rint(rng.normal(0, jitter, len(owners))), -3, 3)
        dim = np.clip(dim, 1, self.month_len[m_idx])
        return self.month_start[m_idx] + dim - 1

    def months_of(self, calendar_month: int) -> np.ndarray:
        return np.flatnonzero(self.month_num == calendar_month)

    def refs(self, n: int, vocab, empty_p: float) -> np.ndarray:
        v = np.array(vocab, dtype=object)
        out = v[self.rng.integers(0, len(v), n)]
        out[self.rng.random(n) < empty_p] = ""
        return out

    def emit(self, s, r, day, sec, usd, roundf, ref, mix: str, rk_p: float = 0.85) -> None:
        s = np.asarray(s)
        n = len(s)
        if n == 0:
            return
        dayf = np.asarray(day, float)
        self.chunks.append({
            "s": s.astype(np.int64), "r": np.asarray(r).astype(np.int64),
            "day": np.floor(dayf).astype(np.int64), "sec": np.asarray(sec, np.int64),
            "usd": np.asarray(usd, float), "round": np.asarray(roundf, bool),
            "ref": np.asarray(ref, dtype=object),
            "mix": np.full(n, MIX_NAMES.index(mix), np.int8),
            "rk": self.rng.random(n) < rk_p,
        })

    def lognormal(self, median, sigma, n=None):
        return np.exp(np.log(median) + sigma * self.rng.standard_normal(n))

    def beta_mean(self, mean: float, n: int, conc: float = 2.5) -> np.ndarray:
        mean = min(max(mean, 1e-3), 1 - 1e-3)
        return self.rng.beta(mean * conc, (1 - mean) * conc, n)


# ====================================================================================== OFW
def gen_ofw(w: World, senders: np.ndarray, benef: np.ndarray, alt: np.ndarray) -> None:
    """OFW senders -> family. benef: (S, 3) receiving accounts (-1 = none); alt: second account of
    the primary beneficiary (-1 = none)."""
    p, rng = w.params, w.rng
    S = len(senders)
    if S == 0:
        return
    k = (benef >= 0).sum(1)
    payday = rng.choice([1, 5, 10, 15, 20, 25, 28, 30], size=S, p=[.1, .1, .1, .2, .1, .15, .1, .15])
    semi = rng.random(S) < p["ofw_semimonthly_p"]
    med = w.lognormal(p["ofw_amount_median_usd"], p["ofw_amount_sigma"], S)
    noise = np.where(rng.random(S) < 0.25, 0.0, 0.2)
    roundp = np.where(rng.random(S) < 0.55, 0.95, 0.05)
    night = np.where(rng.random(S) < p["ofw_night_shift_p"], 0.5, 0.04)
    split_all = rng.random(S) < 0.4

    M = w.months
    own = np.repeat(np.arange(S), M)
    m = np.tile(np.arange(M), S)
    skip = np.where(np.isin(w.month_num[m], (1, 2)), 1.6, 1.0) * p["ofw_skip_month_p"]   # post-holiday lull
    keep = rng.random(S * M) > skip
    own, m = own[keep], m[keep]
    day = w.monthly_days(own, payday, m)
    sm = semi[own]
    own2, m2 = own[sm], m[sm]
    day2 = w.monthly_days(own2, (payday + 14) % 28 + 1, m2)
    own = np.concatenate([own, own2])
    day = np.concatenate([day, day2])
    # beneficiaries of the regular transfers
    rec_own, rec_day, rec_slot = [own], [day], [np.zeros(len(own), int)]
    for j in (1, 2):
        sel = (k[own] > j) & (split_all[own] | (rng.random(len(own)) < 0.35))
        rec_own.append(own[sel])
        rec_day.append(day[sel] + rng.random(sel.sum()) * 0.2)
        rec_slot.append(np.full(sel.sum(), j))
    own = np.concatenate(rec_own)
    day = np.concatenate(rec_day)
    slot = np.concatenate(rec_slot)
    usd = med[own] * np.exp(noise[own] * rng.standard_normal(len(own)))
    usd = np.where(split_all[own] & (k[own] > 1), usd * 0.6, usd)
    ref = w.refs(len(own), C.REFS_FAMILY[:12], 0.45)
    _ofw_emit(w, senders, benef, alt, own, day, slot, usd, roundp, night, ref)

    # December and June extras
    for cal_m, prob, lo, hi, factor, vocab in (
        (12, p["ofw_december_extra_p"], 8, 23, 1.4, ("Merry Christmas", "gift", "pang-noche buena", "")),
        (6, p["ofw_june_extra_p"], 1, 14, 1.0, ("tuition", "school fees", "school", "enrollment", "")),
    ):
        for mi in w.months_of(cal_m):
            eo = np.flatnonzero(rng.random(S) < prob)
            d = w.month_start[mi] + rng.uniform(lo, hi, len(eo))
            sl = np.floor(rng.random(len(eo)) * k[eo]).astype(int)
            u = med[eo] * factor * np.exp(0.25 * rng.standard_normal(len(eo)))
            r = np.array(vocab, dtype=object)[rng.integers(0, len(vocab), len(eo))]
            _ofw_emit(w, senders, benef, alt, eo, d, sl, u, roundp, night, r)

    # small, frequent top-ups (the frequency/low-value look-alike)
    sf = np.flatnonzero(rng.random(S) < p["ofw_small_frequent_p"])
    if len(sf):
        o, d, _ = w.span_events(rng.uniform(2, 6, len(sf)), np.zeros(len(sf)), np.full(len(sf), w.ndays))
        eo = sf[o]
        sl = np.floor(rng.random(len(eo)) * k[eo]).astype(int)
        u = np.clip(w.lognormal(20, 0.45, len(eo)), 3, 80)
        r = w.refs(len(eo), ("load", "pang-gatas", "food", "baon", "for the kids"), 0.4)
        _ofw_emit(w, senders, benef, alt, eo, d, sl, u, roundp, night, r, mix_rk=0.5)


def _ofw_emit(w, senders, benef, alt, own, day, slot, usd, roundp, night, ref, mix_rk=0.85):
    rng = w.rng
    rec = benef[own, slot]
    use_alt = (slot == 0) & (alt[own] >= 0) & (rng.random(len(own)) < 0.4)
    rec = np.where(use_alt, alt[own], rec)
    sec = w.tod(len(own), night[own])
    w.emit(senders[own], rec, day, sec, usd, rng.random(len(own)) < roundp[own], ref, "family", mix_rk)


def build_ofw(w: World) -> None:
    p, rng = w.params, w.rng
    S = w.n("n_ofw_senders")
    countries = pick(rng, C.OFW_COUNTRIES, S)
    sp = w.people.add_filipinos(rng, S, countries=countries)
    last_all = w.people.cols["last"][-1]
    grp = w.groups(S)
    sacc = w.accounts(sp, "ofw_sender", grp)
    w.add_switch(sacc, 0.05, "ofw_sender", grp)
    k = rng.choice([1, 2, 3], size=S, p=p["ofw_beneficiaries_p"])
    benef = np.full((S, 3), -1, np.int64)
    alt = np.full(S, -1, np.int64)
    region = w.regions(S)
    for j in range(3):
        who = np.flatnonzero(k > j)
        same = rng.random(len(who)) < p["ofw_same_surname_p"]
        sur = np.array(C.PH_SURNAMES, dtype=object)[rng.choice(len(C.PH_SURNAMES), len(who), p=PH_SURNAME_P)]
        sur = np.where(same, last_all[who], sur)
        bp = w.people.add_filipinos(rng, len(who), female_p=0.65, surnames=sur)
        benef[who, j] = w.accounts(bp, "ofw_family", grp[who], kind="family", region=region[who])
        if j == 0:
            a2 = np.flatnonzero(rng.random(len(who)) < 0.08)
            alt[who[a2]] = w.accounts(bp[a2], "ofw_family", grp[who[a2]], kind="ewallet", region=region[who[a2]])
        else:
            # some relatives share one phone (a household phone)
            sh = np.flatnonzero(rng.random(len(who)) < 0.15)
            if len(sh):
                first_person = np.asarray(w.acc_person_of(benef[who[sh], 0]))
                w.phone_links.append((bp[sh], first_person))
    w.ofw_family_accounts = benef[benef >= 0]
    gen_ofw(w, sacc, benef, alt)


# ================================================================================== partners
def gen_spouse(w: World, senders: np.ndarray, receivers: np.ndarray) -> None:
    p, rng = w.params, w.rng
    S = len(senders)
    if S == 0:
        return
    payday = rng.choice([1, 5, 15, 25, 30], size=S)
    med = np.clip(w.lognormal(350, 0.5, S), 80, 2500)
    roundp = np.where(rng.random(S) < 0.65, 0.95, 0.1)
    night = np.where(rng.random(S) < p["spouse_night_p"], rng.uniform(0.35, 0.8, S), 0.06)
    own = np.repeat(np.arange(S), w.months)
    m = np.tile(np.arange(w.months), S)
    keep = rng.random(len(own)) > 0.1
    own, m = own[keep], m[keep]
    day = w.monthly_days(own, payday, m, jitter=2.5)
    usd = med[own] * np.exp(0.25 * rng.standard_normal(len(own)))
    w.emit(senders[own], receivers[own], day, w.tod(len(own), night[own], "evening"), usd,
           rng.random(len(own)) < roundp[own], w.refs(len(own), C.REFS_PARTNER, 0.5), "partner")
    for mi in w.months_of(12):
        eo = np.flatnonzero(rng.random(S) < 0.4)
        d = w.month_start[mi] + rng.uniform(5, 24, len(eo))
        w.emit(senders[eo], receivers[eo], d, w.tod(len(eo), night[eo], "evening"), med[eo] * 1.3,
               rng.random(len(eo)) < 0.8, w.refs(len(eo), ("gift", "Merry Christmas", "for you"), 0.3), "partner")
    sf = np.flatnonzero(rng.random(S) < p["spouse_small_frequent_p"])
    if len(sf):
        o, d, _ = w.span_events(rng.uniform(2, 9, len(sf)), np.zeros(len(sf)), np.full(len(sf), w.ndays))
        d = np.minimum(w.cluster_days(o, d, rng.random(len(sf)) < 0.3), w.ndays - 1e-3)
        eo = sf[o]
        w.emit(senders[eo], receivers[eo], d, w.tod(len(eo), night[eo]), np.clip(w.lognormal(35, 0.5, len(eo)), 5, 200),
               rng.random(len(eo)) < roundp[eo], w.refs(len(eo), ("load", "food", "for you", "grab", "help", "bills"), 0.45),
               "partner", 0.6)


def build_spouses(w: World) -> None:
    rng = w.rng
    S = w.n("n_spouse_senders")
    ctry = pick(rng, C.FOREIGN_COUNTRIES, S)
    sp = w.people.add_foreigners(rng, S, ctry, male_p=0.9)
    g = w.groups(S)
    sacc = w.accounts(sp, "spouse_sender", g)
    w.add_switch(sacc, 0.05, "spouse_sender", g)
    # 30% of partners carry the sender's surname (married, took the name)
    took = rng.random(S) < 0.3
    sur = np.array(C.PH_SURNAMES, dtype=object)[rng.choice(len(C.PH_SURNAMES), S, p=PH_SURNAME_P)]
    sur = np.where(took, w.people.cols["last"][-1], sur)
    rp = w.people.add_filipinos(rng, S, female_p=0.9, surnames=sur)
    racc = w.accounts(rp, "spouse_receiver", g, kind="partner", region=w.regions(S))
    gen_spouse(w, sacc, racc)


def build_romance(w: World) -> None:
    p, rng = w.params, w.rng
    S = w.n("n_romance_senders")
    ctry = pick(rng, C.FOREIGN_COUNTRIES, S)
    sp = w.people.add_foreigners(rng, S, ctry, male_p=0.93)
    g = w.groups(S)
    sacc = w.accounts(sp, "romance_sender", g)
    # receivers: most get one sender; some receive from 2-4 unrelated romance senders
    shared = rng.random(S) < p["romance_shared_receiver_p"]
    n_shared_recv = max(1, int(shared.sum() / 2.8)) if shared.any() else 0
    n_recv = int((~shared).sum()) + n_shared_recv
    rp = w.people.add_filipinos(rng, n_recv, female_p=0.85)
    racc = w.accounts(rp, "romance_receiver", w.groups(n_recv), kind="romance", region=w.regions(n_recv))
    rec = np.empty(S, np.int64)
    rec[~shared] = racc[: int((~shared).sum())]
    if shared.any():
        rec[shared] = racc[int((~shared).sum()) + rng.integers(0, n_shared_recv, int(shared.sum()))]
    start = rng.uniform(-60, w.ndays - 45, S).clip(0)
    end = np.minimum(start + rng.uniform(60, 300, S), w.ndays)
    growth = rng.uniform(1.5, 4.0, S)
    o, d, t = w.span_events(rng.uniform(0.8, 3.0, S), start, end, growth)
    d = np.minimum(w.cluster_days(o, d, rng.random(S) < p["romance_bursty_p"]), end[o] - 1e-3)
    med = rng.uniform(40, 150, S)
    usd = np.clip(med[o] * (1 + (growth[o] - 1) * 0.5 * t) * np.exp(0.45 * rng.standard_normal(len(o))), 10, 1500)
    night = w.beta_mean(p["romance_night_mean"], S)
    w.emit(sacc[o], rec[o], d, w.tod(len(o), night[o], "evening"), usd, rng.random(len(o)) < 0.55,
           w.refs(len(o), C.REFS_PARTNER, 0.5), "partner", 0.8)


# ================================================================================= freelance
def build_freelance(w: World) -> None:
    p, rng = w.params, w.rng
    F = w.n("n_freelancers")
    fp = w.people.add_filipinos(rng, F, female_p=0.55)
    facc = w.accounts(fp, "freelancer", w.groups(F), kind="freelancer", region=w.regions(F))
    k = np.minimum(1 + rng.poisson(max(p["freelance_clients_mean"] - 1, 0), F), 10)
    L = int(k.sum())
    n_cl = max(1, int(L * 0.8))
    agency = rng.random(n_cl) < p["freelance_agency_p"]
    cw = np.where(agency, 6.0, 1.0)
    ctry = pick(rng, C.FOREIGN_COUNTRIES, n_cl)
    comp = rng.random(n_cl) < 0.6
    persons = np.empty(n_cl, np.int64)
    ci = np.flatnonzero(comp)
    ii = np.flatnonzero(~comp)
    persons[ci] = w.people.add_companies(rng, len(ci), ctry[ci])
    persons[ii] = w.people.add_foreigners(rng, len(ii), ctry[ii], male_p=0.6)
    cacc = w.accounts(persons, "freelance_client", w.groups(n_cl))
    pair_f = np.repeat(np.arange(F), k)
    pair_c = rng.choice(n_cl, size=L, p=cw / cw.sum())
    cad = rng.choice(4, size=L, p=[0.2, 0.3, 0.35, 0.15])
    period = np.array([7.0, 14.0, DAYS_PER_MONTH, 0.0])[cad]
    start = rng.uniform(-400, w.ndays - 30, L)
    end = np.minimum(start + rng.uniform(60, 730, L), w.ndays)
    start = np.minimum(start.clip(0), end)
    med = np.clip(w.lognormal(220, 0.6, L), 50, 1500) * np.where(cad == 0, 0.35, np.where(cad == 1, 0.6, 1.0))
    reg = cad < 3
    ri = np.flatnonzero(reg)
    o1, d1, k1 = w.grid_events(start[ri], end[ri], period[ri])
    o1 = ri[o1]
    ii2 = np.flatnonzero(~reg)
    o2, d2, _ = w.span_events(rng.uniform(0.5, 2.0, len(ii2)), start[ii2], end[ii2])
    o2 = ii2[o2]
    own = np.concatenate([o1, o2])
    day = np.concatenate([d1, d2])
    noise = np.where(reg[own], 0.08, 0.4)
    usd = np.clip(med[own] * np.exp(noise * rng.standard_normal(len(own))), 15, 3000)
    # business days in the client's time zone
    dow = (w.start_weekday + np.floor(day).astype(int)) % 7
    day = day + np.where(dow == 5, 2, np.where(dow == 6, 1, 0))
    keep = day < w.ndays
    own, day, usd = own[keep], day[keep], usd[keep]
    n = len(own)
    inv0 = rng.integers(1000, 9000, L)
    seq = np.arange(n)
    style = rng.random(n)
    ref = np.where(style < 0.4, np.array([f"INV-{inv0[o] + (i % 97)}" for o, i in zip(own, seq)], dtype=object),
                   np.where(style < 0.7, np.array(C.REFS_FREELANCE_TEXT, dtype=object)[rng.integers(0, len(C.REFS_FREELANCE_TEXT), n)], ""))
    night = np.where(rng.random(L) < 0.05, 0.3, 0.02)
    w.emit(cacc[pair_c[own]], facc[pair_f[own]], day, w.tod(n, night[own], "business"), usd,
           rng.random(n) < 0.15, ref, "business", 0.7)


# ================================================================================== charity
def build_charity(w: World) -> None:
    rng = w.rng
    Cn = w.n("n_charities")
    names = np.array([C.CHARITY_NAMES[i % len(C.CHARITY_NAMES)] + ("" if i < len(C.CHARITY_NAMES) else f" {i // len(C.CHARITY_NAMES) + 1}")
                      for i in range(Cn)], dtype=object)
    cp = w.people.add_companies(rng, Cn, np.full(Cn, "PH", dtype=object), names=names)
    w.people.cols["last"][-1][:] = ""
    cacc = w.accounts(cp, "charity", w.groups(Cn), kind="charity", region=w.regions(Cn))
    D = w.n("n_sponsor_donors")
    ctry = pick(rng, C.FOREIGN_COUNTRIES, D)
    diaspora = rng.random(D) < 0.1
    persons = np.empty(D, np.int64)
    di, fi = np.flatnonzero(diaspora), np.flatnonzero(~diaspora)
    persons[fi] = w.people.add_foreigners(rng, len(fi), ctry[fi], male_p=0.5)
    persons[di] = w.people.add_filipinos(rng, len(di), countries=ctry[di])
    dacc = w.accounts(persons, "sponsor_donor", w.groups(D))
    pz = 1.0 / np.arange(1, Cn + 1) ** 0.8
    ch1 = rng.choice(Cn, size=D, p=pz / pz.sum())
    two = rng.random(D) < 0.1
    ch2 = rng.choice(Cn, size=D)
    base = rng.choice([25, 30, 35, 40, 50, 60, 75, 100], size=D, p=[.2, .2, .1, .12, .2, .06, .06, .06])
    start = rng.uniform(-700, w.ndays - 20, D)
    end = np.minimum(start + rng.uniform(120, 1100, D), w.ndays)
    gone = end < 20                          # lapsed before the period: re-draw inside it
    start[gone] = rng.uniform(0, w.ndays - 20, int(gone.sum()))
    end[gone] = np.minimum(start[gone] + rng.uniform(120, 1100, int(gone.sum())), w.ndays)
    start = start.clip(0)
    batch = rng.random(D) < 0.3            # recurring card charges processed at night
    batch_sec = rng.integers(1 * 3600, 4 * 3600, D)
    for which, sel in ((ch1, np.arange(D)), (ch2, np.flatnonzero(two))):
        o, d, _ = w.grid_events(start[sel], end[sel], np.full(len(sel), DAYS_PER_MONTH), jitter=0.3)
        o = sel[o]
        sec = np.where(batch[o], batch_sec[o] + rng.integers(0, 300, len(o)), w.tod(len(o), 0.05))
        w.emit(dacc[o], cacc[which[o]], d, sec, base[o].astype(float), np.ones(len(o), bool),
               w.refs(len(o), C.REFS_DONOR, 0.35), "donor", 0.3)
    for mi in w.months_of(12):
        eo = np.flatnonzero((rng.random(D) < 0.25) & (start < w.month_start[mi + 1]) & (end > w.month_start[mi]))
        d = w.month_start[mi] + rng.uniform(1, 24, len(eo))
        w.emit(dacc[eo], cacc[ch1[eo]], d, w.tod(len(eo), 0.08), base[eo] * 2.0, np.ones(len(eo), bool),
               w.refs(len(eo), ("christmas gift", "gift", "donation"), 0.2), "donor", 0.3)


# ===================================================================================== shops
def build_shops(w: World) -> None:
    rng = w.rng
    Sn = w.n("n_online_sellers")
    sp = w.people.add_filipinos(rng, Sn, female_p=0.6)
    sacc = w.accounts(sp, "online_seller", w.groups(Sn), kind="seller", region=w.regions(Sn))
    N = w.n("n_shop_customers")
    dias = rng.random(N) < 0.3
    persons = np.empty(N, np.int64)
    di, fi = np.flatnonzero(dias), np.flatnonzero(~dias)
    persons[fi] = w.people.add_foreigners(rng, len(fi), pick(rng, C.FOREIGN_COUNTRIES, len(fi)), male_p=0.5)
    persons[di] = w.people.add_filipinos(rng, len(di), countries=pick(rng, C.OFW_COUNTRIES, len(di)))
    cacc = w.accounts(persons, "shop_customer", w.groups(N))
    pz = 1.0 / np.arange(1, Sn + 1) ** 0.7
    pz = rng.permutation(pz / pz.sum())
    nsel = 1 + (rng.random(N) < 0.15) * rng.integers(1, 3, N)
    own = np.repeat(np.arange(N), nsel)
    seller = rng.choice(Sn, size=len(own), p=pz)
    times = 1 + rng.poisson(0.6, len(own))
    own2 = np.repeat(own, times)
    sel2 = np.repeat(seller, times)
    first = rng.uniform(0, w.ndays, len(own))
    day = np.clip(np.repeat(first, times) + rng.exponential(25, len(own2)) * (np.arange(len(own2)) != np.repeat(np.cumsum(times) - times, times)), 0, w.ndays - 1e-3)
    n = len(own2)
    usd = np.clip(w.lognormal(25, 0.6, n), 4, 250)
    charm = rng.random(n) < 0.3
    usd = np.where(charm, np.maximum(np.round(usd) - 0.01, 0.99), usd)
    w.emit(cacc[own2], sacc[sel2], day, w.tod(n, 0.12), usd, rng.random(n) < 0.25,
           w.refs(n, C.REFS_SHOP, 0.6), "shop", 0.6)


# ================================================================================== tourists
def build_tourists(w: World) -> None:
    p, rng = w.params, w.rng
    N = w.n("n_tourist_senders")
    ctry = pick(rng, C.FOREIGN_COUNTRIES, N)
    sp = w.people.add_foreigners(rng, N, ctry, male_p=0.7)
    g = w.groups(N)
    sacc = w.accounts(sp, "tourist_sender", g)
    abroad = rng.random(N) < p["domestic_share_other_country"]
    rctry = np.where(abroad, np.array(C.OTHER_RECEIVER_COUNTRIES, dtype=object)[rng.integers(0, 4, N)], "PH")
    rp = np.empty(N, np.int64)
    ai, pi = np.flatnonzero(abroad), np.flatnonzero(~abroad)
    rp[pi] = w.people.add_filipinos(rng, len(pi), female_p=0.6)
    if len(ai):
        rp[ai] = w.people.add_foreigners(rng, len(ai), np.full(len(ai), "SG", dtype=object), male_p=0.5)
        w.people.cols["country"][-1][:] = rctry[ai]
    region = np.where(abroad, "", w.regions(N))
    racc = w.accounts(rp, "friend_receiver", g, kind="friend", region=region)
    times = 1 + rng.poisson(0.4, N)
    own = np.repeat(np.arange(N), times)
    day = np.clip(np.repeat(rng.uniform(0, w.ndays, N), times) + rng.uniform(0, 20, len(own)), 0, w.ndays - 1e-3)
    n = len(own)
    w.emit(sacc[own], racc[own], day, w.tod(n, 0.15), np.clip(w.lognormal(80, 0.7, n), 10, 1500),
           rng.random(n) < 0.5, w.refs(n, C.REFS_FRIEND, 0.5), "friend")


# ================================================================================== domestic
def build_domestic(w: World) -> None:
    rng = w.rng
    N = w.n("n_domestic_senders")
    sp = w.people.add_filipinos(rng, N)
    g = w.groups(N)
    sacc = w.accounts(sp, "domestic_sender", g)
    rp = w.people.add_filipinos(rng, N)
    racc = w.accounts(rp, "domestic_receiver", g, kind="ewallet", region=w.regions(N))
    times = 1 + rng.poisson(1.5, N)
    own = np.repeat(np.arange(N), times)
    to_family = rng.random(len(own)) < 0.4
    fam = w.ofw_family_accounts
    rec = np.where(to_family & (len(fam) > 0), fam[rng.integers(0, max(len(fam), 1), len(own))], racc[own])
    n = len(own)
    w.emit(sacc[own], rec, rng.uniform(0, w.ndays, n), w.tod(n, 0.1), np.clip(w.lognormal(40, 0.7, n), 2, 800),
           rng.random(n) < 0.7, w.refs(n, C.REFS_DOMESTIC, 0.5), "domestic")
    # some OFW-family accounts pass money on to relatives at home (they also appear as senders)
    k = max(1, N // 4)
    src = fam[rng.integers(0, max(len(fam), 1), k)] if len(fam) else sacc[:k]
    dst = racc[rng.integers(0, N, k)]
    w.emit(src, dst, rng.uniform(0, w.ndays, k), w.tod(k, 0.1), np.clip(w.lognormal(30, 0.6, k), 2, 500),
           rng.random(k) < 0.7, w.refs(k, C.REFS_DOMESTIC, 0.5), "domestic")


# ====================================================================================== OSEC
def build_osec(w: World) -> dict:
    p, rng = w.params, w.rng
    senders_legit = len(np.unique(np.concatenate([c["s"] for c in w.chunks])))
    receivers_legit = len(np.unique(np.concatenate([c["r"] for c in w.chunks])))
    fs, cs = p["facilitator_share"], p["customer_share"]
    target_acc = max(int(round(fs / (1 - fs) * receivers_legit)), 1)
    # operations and their receiving accounts
    sizes: list[int] = []
    rng_sizes = p["facilitator_accounts_range"]
    while sum(sizes) < target_acc or len(sizes) < p["min_operations"]:
        if rng_sizes:
            size, smallest = int(rng.integers(rng_sizes[0], rng_sizes[1] + 1)), int(rng_sizes[0])
        else:
            size, smallest = int(rng.choice(len(p["facilitator_accounts_p"]), p=p["facilitator_accounts_p"]) + 1), 1
        if len(sizes) + 1 >= p["min_operations"]:      # the last operation does not overshoot the share
            size = min(size, max(smallest, target_acc - sum(sizes)))
        sizes.append(size)
    O = len(sizes)
    op_group = w.groups(O)
    op_acc = np.full((O, max(sizes)), -1, np.int64)
    op_w = np.zeros((O, max(sizes)))
    op_sur = np.array(C.PH_SURNAMES, dtype=object)[rng.choice(len(C.PH_SURNAMES), O, p=PH_SURNAME_P)]
    op_region = w.regions(O, p["facilitator_region_tilt"])
    op_person0 = np.zeros(O, np.int64)
    for o, na in enumerate(sizes):
        npers = int(min(na, 1 + rng.binomial(max(na - 1, 0), 0.6), 4)) if na > 1 else 1
        same = rng.random(npers) < p["facilitator_same_surname_p"]
        same[0] = True
        sur = np.where(same, op_sur[o], np.array(C.PH_SURNAMES, dtype=object)[rng.choice(len(C.PH_SURNAMES), npers, p=PH_SURNAME_P)])
        pers = w.people.add_filipinos(rng, npers, female_p=0.8, surnames=sur)
        op_person0[o] = pers[0]
        if npers > 1 and rng.random() < p["facilitator_shared_phone_p"]:
            w.phone_links.append((pers[1:], np.full(npers - 1, pers[0])))
        owner = pers[np.arange(na) % npers]
        reg = np.where(rng.random(na) < 0.9, op_region[o], w.regions(na))
        acc = w.accounts(owner, "osec_facilitator", op_group[o], kind="facilitator", region=reg)
        op_acc[o, :na] = acc
        op_w[o, :na] = rng.dirichlet(np.ones(na))
    op_pop = w.lognormal(1.0, 1.0, O)
    # customers
    Cn = max(p["min_customers"], int(round(cs / (1 - cs) * senders_legit)))
    ctry = pick(rng, C.CUSTOMER_COUNTRIES, Cn)
    cp = w.people.add_foreigners(rng, Cn, ctry, male_p=0.97)
    kops = np.minimum(rng.choice(len(p["customer_ops_p"]), size=Cn, p=p["customer_ops_p"]) + 1, O)
    cust_ops = np.full((Cn, 6), -1, np.int64)
    cust_w = np.zeros((Cn, 6))
    main = np.zeros(Cn, np.int64)
    for c in range(Cn):
        ops = rng.choice(O, size=kops[c], replace=False, p=op_pop / op_pop.sum())
        wts = np.sort(rng.dirichlet(np.ones(kops[c])))[::-1]
        cust_ops[c, : kops[c]] = ops
        cust_w[c, : kops[c]] = wts
        main[c] = ops[0]
    cacc = w.accounts(cp, "osec_customer", op_group[main])
    w.add_switch(cacc, 0.1, "osec_customer", op_group[main])
    rate0 = np.clip(w.lognormal(p["customer_rate_median"], p["customer_rate_sigma"], Cn), 1.0, p["customer_rate_max"])
    start = (rng.uniform(-6, w.months - 2, Cn) * DAYS_PER_MONTH).clip(0)
    end = np.minimum(start + rng.uniform(3, 24, Cn) * DAYS_PER_MONTH, w.ndays)
    start = np.minimum(start, end - 30).clip(0)
    esc = rng.random(Cn) < p["customer_escalation_p"]
    growth = np.where(esc, rng.uniform(2.0, 4.0, Cn), 1.0)
    o, d, t = w.span_events(rate0, start, end, growth)
    d = np.minimum(w.cluster_days(o, d, rng.random(Cn) < p["customer_bursty_p"]), end[o] - 1e-3)
    # sessions: a few extra payments minutes to hours after the first
    extra = rng.poisson(p["customer_burst_mean"], len(o))
    o2 = np.repeat(o, extra)
    d2 = np.repeat(d, extra) + rng.uniform(10, 180, len(o2)) / 1440.0
    t2 = np.repeat(t, extra)
    own = np.concatenate([o, o2])
    day = np.concatenate([d, d2])
    t = np.concatenate([t, t2])
    keep = day < w.ndays
    own, day, t = own[keep], day[keep], t[keep]
    n = len(own)
    # receiver: operation by the customer's weights, then account by the operation's rotation
    cw = np.cumsum(cust_w, 1)[own]
    oi = np.minimum((rng.random(n)[:, None] > cw).sum(1), kops[own] - 1)
    op = cust_ops[own, oi]
    aw = np.cumsum(op_w, 1)[op]
    na = (op_acc[op] >= 0).sum(1)
    ai = np.minimum((rng.random(n)[:, None] > aw).sum(1), na - 1)
    rec = op_acc[op, ai]
    factor = p["customer_amount_factor"]
    med = w.lognormal(p["customer_amount_median_usd"], 0.45, Cn) * factor
    fixed = rng.random(Cn) < 0.2
    usd = med[own] * np.exp(np.where(fixed[own], 0.0, 0.4) * rng.standard_normal(n)) * (1 + 0.8 * t * esc[own])
    tail = rng.random(n) < 0.03
    usd = np.where(tail, usd * rng.uniform(3, 8, n), usd)
    usd = np.clip(usd, 8 * factor, 600 * factor)
    night = w.beta_mean(p["customer_night_mean"], Cn)
    roundp = w.beta_mean(p["customer_round_mean"], Cn, conc=2.0)
    w.emit(cacc[own], rec, day, w.tod(n, night[own], "evening"), usd, rng.random(n) < roundp[own],
           w.refs(n, C.REFS_CUSTOMER, 0.55), "customer")
    # households of facilitators also receive ordinary OFW remittances
    hh = np.flatnonzero(rng.random(O) < p["facilitator_household_ofw_p"])
    if len(hh):
        sp = w.people.add_filipinos(rng, len(hh), countries=pick(rng, C.OFW_COUNTRIES, len(hh)), surnames=op_sur[hh])
        sacc = w.accounts(sp, "ofw_sender", op_group[hh])
        benef = np.full((len(hh), 3), -1, np.int64)
        own_acc = rng.random(len(hh)) < 0.6
        benef[own_acc, 0] = op_acc[hh[own_acc], 0]
        sep = np.flatnonzero(~own_acc)
        if len(sep):
            bp = w.people.add_filipinos(rng, len(sep), female_p=0.7, surnames=op_sur[hh[sep]])
            benef[sep, 0] = w.accounts(bp, "ofw_family", op_group[hh[sep]], kind="family", region=op_region[hh[sep]])
        gen_ofw(w, sacc, benef, np.full(len(hh), -1, np.int64))
    # like any household, facilitators' accounts get the odd domestic transfer from relatives/friends
    fac = op_acc[op_acc >= 0]
    nd = rng.poisson(1.0, len(fac))
    if nd.sum():
        k = int(nd.sum())
        dp = w.people.add_filipinos(rng, k)
        dacc = w.accounts(dp, "domestic_sender", w.groups(k))
        w.emit(dacc, np.repeat(fac, nd), rng.uniform(0, w.ndays, k), w.tod(k, 0.1),
               np.clip(w.lognormal(40, 0.7, k), 2, 800), rng.random(k) < 0.7, w.refs(k, C.REFS_DOMESTIC, 0.5), "domestic")
    # some customers also keep a partner in the Philippines
    pc = np.flatnonzero(rng.random(Cn) < p["customer_has_partner_p"])
    if len(pc):
        rp = w.people.add_filipinos(rng, len(pc), female_p=0.9)
        racc = w.accounts(rp, "spouse_receiver", w.groups(len(pc)), kind="partner", region=w.regions(len(pc)))
        gen_spouse(w, cacc[pc], racc)
    return {"operations": O, "facilitator_accounts": int(sum(sizes)), "customers": int(Cn)}

