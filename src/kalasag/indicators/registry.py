"""The indicator registry: id → indicator object. Adding an indicator = one class + one line here."""

from __future__ import annotations

from kalasag.indicators.base import Indicator
from kalasag.indicators.beneficiary import AreaAnomaly, ForeignMicroInflows, SeveralAccounts
from kalasag.indicators.profile import CountryRisk, Crypto
from kalasag.network.features import CoMovingBursts, SharedCustomers, WatchlistLinkage
from kalasag.network.propagation import SuspiciousLinks, TwoHopExposure
from kalasag.indicators.transfer_pattern import (
    Channel, Escalation, FanIn, FanOut, Frequency, Irregular, LongRunning, LowValue, Narrative, Night,
    RoundAmounts, Unrelated,
)

INDICATORS: dict[str, Indicator] = {
    ind.id: ind
    for ind in (
        LowValue(), Frequency(), FanIn(), FanOut(), Unrelated(), Irregular(), Night(), RoundAmounts(),
        Narrative(), Escalation(), LongRunning(), Channel(), CountryRisk(), Crypto(),
        ForeignMicroInflows(), SeveralAccounts(), AreaAnomaly(),
        # network evidence (docs/network.md): N-01, N-02, I-23 run with the others; N-03 and N-04
        # (stage "network") need first-pass scores and run in kalasag.network.network_evidence
        WatchlistLinkage(), SharedCustomers(), CoMovingBursts(), SuspiciousLinks(), TwoHopExposure(),
    )
}

# In the research catalogue but not expressible with the canonical transfer schema (docs/indicators.md).
NOT_IMPLEMENTED: dict[str, str] = {
    "I-13": "needs sender sex and age (KYC), absent from the transfer schema",
    "I-15": "needs travel bookings and card spending abroad",
    "I-16": "needs card/merchant (MCC) spending of the sender",
    "I-17": "needs KYC, adverse-media and account-closure history",
    "I-20": "needs beneficiary gender/role; by the research note context only, never a trigger",
}


def for_side(side: str, stage: str = "transfers") -> list[Indicator]:
    """Indicators of one side and stage: "transfers" (computed by compute_evidence) or "network"
    (need first-pass scores; computed by kalasag.network.network_evidence)."""
    return [ind for ind in INDICATORS.values() if side in ind.sides and getattr(ind, "stage", "transfers") == stage]
