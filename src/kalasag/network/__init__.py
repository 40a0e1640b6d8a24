"""The network room: evidence from the sender–receiver graph and network alerts (docs/network.md).

Entry points:
- indicators N-01 (shared customers), N-02 (co-moving bursts), I-23 (watchlist linkage), registered
  in `kalasag.indicators.INDICATORS` and computed by `compute_evidence(..., watchlist=)`;
- `network_evidence(engine, transfers, evidence, config)` → Evidence with N-03 (links to suspicious
  receivers) and N-04 (two-hop risk propagation), which need first-pass scores;
- `detect_operations(engine, transfers, scored, config)` → one row per network alert (Leiden
  communities on the reduced suspicious subgraph);
- `load_watchlist(engine, path)` / `read_watchlist(path)`; errors: `WatchlistError`.
"""

import kalasag.indicators  # noqa: F401  (first: its registry imports this room's indicator modules)
from kalasag.network.features import CoMovingBursts, SharedCustomers, WatchlistLinkage
from kalasag.network.operations import NETWORK_COLUMNS, NetworkError, detect_operations
from kalasag.network.propagation import FirstPassMissing, SuspiciousLinks, TwoHopExposure, first_pass_logit
from kalasag.network.stage import network_evidence
from kalasag.network.watchlist import WATCHLIST_COLUMNS, WatchlistError, load_watchlist, read_watchlist

__all__ = [
    "NETWORK_COLUMNS", "WATCHLIST_COLUMNS", "CoMovingBursts", "FirstPassMissing", "NetworkError", "SharedCustomers",
    "SuspiciousLinks", "TwoHopExposure", "WatchlistError", "WatchlistLinkage", "detect_operations",
    "first_pass_logit", "load_watchlist", "network_evidence", "read_watchlist",
]
