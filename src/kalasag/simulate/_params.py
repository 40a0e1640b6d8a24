"""Parameters of the synthetic world and the named regimes (a regime = a dict of overrides)."""

from __future__ import annotations

import copy
from typing import Any


class SimulationError(ValueError):
    """A bad simulator argument (one-line message)."""


# Counts are at scale 1.0 (about 300,000 transfers over 12 months) and are multiplied by `scale`.
DEFAULT_PARAMS: dict[str, Any] = {
    # --- legitimate populations (numbers of senders / receivers at scale 1) ---
    "n_ofw_senders": 9400,
    "ofw_amount_median_usd": 350.0,        # research note §2.3: median ~USD 250-350 (ADB USD 340)
    "ofw_amount_sigma": 0.45,              # between-sender spread (log-normal)
    "ofw_beneficiaries_p": [0.62, 0.27, 0.11],  # 1, 2, 3 beneficiaries
    "ofw_same_surname_p": 0.75,            # beneficiary shares the sender's surname
    "ofw_semimonthly_p": 0.15,             # sends on two paydays a month
    "ofw_skip_month_p": 0.08,
    "ofw_december_extra_p": 0.6,           # extra Christmas transfer (Dec ~1.2x the monthly mean)
    "ofw_june_extra_p": 0.15,              # school-opening transfer (June)
    "ofw_small_frequent_p": 0.08,          # also sends small "load"/"pang-gatas" top-ups, weekly-ish
    "ofw_night_shift_p": 0.12,             # shift workers: half their transfers at local night
    "n_spouse_senders": 1200,
    "spouse_small_frequent_p": 0.35,
    "spouse_night_p": 0.2,
    "n_romance_senders": 500,
    "romance_shared_receiver_p": 0.15,     # receiver gets money from 2-4 unrelated romance senders
    "romance_night_mean": 0.42,
    "n_freelancers": 360,
    "freelance_clients_mean": 3.0,
    "freelance_agency_p": 0.15,            # clients that pay several freelancers (fan-out)
    "n_charities": 12,
    "n_sponsor_donors": 1400,
    "n_online_sellers": 260,
    "n_shop_customers": 7000,
    "n_tourist_senders": 4000,
    "n_domestic_senders": 1500,
    # --- OSEC (research note §1) ---
    "customer_share": 0.0035,              # of sending accounts (brief: 0.2-0.5%)
    "facilitator_share": 0.002,            # of receiving accounts (brief: 0.1-0.3%)
    "min_customers": 4,
    "min_operations": 2,
    "facilitator_accounts_p": [0.35, 0.30, 0.20, 0.10, 0.05],  # 1..5 receiving accounts per operation
    "facilitator_accounts_range": None,    # e.g. [4, 10] overrides the distribution above
    "facilitator_same_surname_p": 0.6,
    "facilitator_shared_phone_p": 0.35,
    "facilitator_household_ofw_p": 0.5,    # the household also receives ordinary OFW remittances
    "facilitator_region_tilt": 1.5,        # mild weight on provinces named in case reports
    "customer_ops_p": [0.5, 0.25, 0.13, 0.07, 0.03, 0.02],  # pays 1..6 operations
    "customer_rate_median": 3.5,           # payments per month at the start (Westpac ~3.5, Qld ~23)
    "customer_rate_sigma": 0.8,
    "customer_rate_max": 30.0,
    "customer_escalation_p": 0.35,
    "customer_amount_median_usd": 40.0,    # AMLC P1,000-10,000; AUSTRAC A$10-100; FATF EUR 10-200
    "customer_amount_factor": 1.0,         # regime knob: multiply customers' amounts
    "customer_night_mean": 0.45,           # share of a customer's payments at local night (mean)
    "customer_round_mean": 0.6,
    "customer_bursty_p": 0.5,              # binges: runs of ~3 payments within 2 days, then a gap
    "romance_bursty_p": 0.3,
    "customer_burst_mean": 0.3,            # extra payments in the same session (Poisson mean)
    "customer_has_partner_p": 0.15,        # also sends regular money to a PH partner
    # --- data-quality knobs ---
    "name_variant_person_p": 0.3,          # persons whose name is typed differently across transfers
    "missing": {"sender_name": 0.02, "receiver_name": 0.01, "channel": 0.03,
                "receiver_region": 0.08, "sender_phone": 0.35, "receiver_phone": 0.2},
    "domestic_share_other_country": 0.04,  # share of tourist/friend transfers to TH/VN/ID/MY
}

REGIMES: dict[str, dict[str, Any]] = {
    "baseline": {},
    "daytime_payers": {"customer_night_mean": 0.06},
    "high_amounts": {"customer_amount_factor": 2.5},
    # more accounts per operation; the account share rises so the number of operations stays similar
    "many_accounts": {"facilitator_accounts_range": [4, 10], "facilitator_share": 0.0045},
    "more_lookalikes": {"n_freelancers": 900, "n_romance_senders": 1300, "n_sponsor_donors": 450,
                        "romance_shared_receiver_p": 0.25},
    # extra regimes for generalisation checks
    "calm_customers": {"customer_rate_median": 2.0, "customer_rate_sigma": 0.5,
                       "customer_ops_p": [0.8, 0.15, 0.05, 0.0, 0.0, 0.0], "customer_bursty_p": 0.15,
                       "customer_escalation_p": 0.15, "customer_burst_mean": 0.1},
    "noisy_data": {"name_variant_person_p": 0.6,
                   "missing": {"sender_name": 0.08, "receiver_name": 0.05, "channel": 0.15,
                               "receiver_region": 0.3, "sender_phone": 0.6, "receiver_phone": 0.5}},
}


def resolve_regime(regime: str | dict) -> tuple[str, dict[str, Any]]:
    """Return (name, full parameter dict) for a regime name or an override dict.

    An override dict may name a base regime with the key "regime" (default "baseline").
    """
    if isinstance(regime, str):
        if regime not in REGIMES:
            raise SimulationError(f"unknown regime {regime!r}; choose one of {', '.join(REGIMES)}")
        name, overrides = regime, REGIMES[regime]
    elif isinstance(regime, dict):
        overrides = dict(regime)
        base = overrides.pop("regime", "baseline")
        if base not in REGIMES:
            raise SimulationError(f"unknown base regime {base!r}; choose one of {', '.join(REGIMES)}")
        name = overrides.pop("name", "custom" if overrides else base)
        overrides = {**REGIMES[base], **overrides}
    else:
        raise SimulationError("regime must be a regime name or a dict of parameter overrides")
    unknown = sorted(set(overrides) - set(DEFAULT_PARAMS))
    if unknown:
        raise SimulationError(f"unknown regime parameter(s): {', '.join(unknown)}")
    params = copy.deepcopy(DEFAULT_PARAMS)
    for k, v in overrides.items():
        params[k] = {**params[k], **v} if isinstance(params[k], dict) and isinstance(v, dict) else v
    return name, params
