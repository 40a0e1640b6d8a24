"""Splink model: comparisons, blocking, EM training, prediction, clustering.

Splink runs on the engine's own connection (DuckDB) or Spark session, so its tables live next
to Kalasag's and are read back as Ibis tables.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir

from kalasag.engine import Engine, error_chain
from kalasag.model.config import EntitiesConfig

# gamma values of the name comparison (Splink numbers levels from the last = 0 upwards; NULL = -1)
NAME_LEVELS = (
    # label, description used in the evidence text
    ("exact", "same name"),
    ("words", "same name words (order and initials aside)"),
    ("given", "same surname, the given names of one are among the other's"),
    ("jw_high", "similar names"),
    ("initial", "same surname and given initial"),
    ("jw_low", "somewhat similar names"),
    ("surname", "same surname only"),
)


def name_gamma(label: str) -> int:
    """Gamma value Splink gives the name level `label` (higher = more similar)."""
    labels = [lab for lab, _ in NAME_LEVELS]
    return len(labels) - labels.index(label)


class LinkageError(RuntimeError):
    """Splink could not be set up or run (one-line message)."""


@dataclass
class SplinkRun:
    predictions: ir.Table          # unique_id_l, unique_id_r, match_probability, gamma_*, compared values
    clusters: ir.Table             # unique_id, cluster_id
    parameters: dict[str, Any]     # the trained model (Splink settings dict, m/u per level)
    notes: list[str]               # training steps skipped (too few pairs) and what that means


def _settings(config: EntitiesConfig):
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    hi, *rest = config.name_jaro_winkler
    lo = rest[0] if rest else hi
    name = cl.CustomComparison(
        output_column_name="name",
        comparison_description="Filipino-aware name comparison",
        comparison_levels=[
            cll.NullLevel("name_norm"),
            cll.ExactMatchLevel("name_norm", term_frequency_adjustments=True).configure(label_for_charts="exact"),
            cll.ExactMatchLevel("name_sig").configure(label_for_charts="words"),
            cll.And(
                cll.ExactMatchLevel("surname_core"),
                cll.ArraySubsetLevel("given_tokens"),
            ).configure(label_for_charts="given"),
            cll.JaroWinklerLevel("name_norm", hi).configure(label_for_charts="jw_high"),
            cll.And(cll.ExactMatchLevel("surname_core"), cll.ExactMatchLevel("given_initial")).configure(
                label_for_charts="initial"
            ),
            cll.JaroWinklerLevel("name_norm", lo).configure(label_for_charts="jw_low"),
            cll.ExactMatchLevel("surname_core").configure(label_for_charts="surname"),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=[
            name,
            cl.ExactMatch("phone_e164"),
            cl.ExactMatch("region"),
            cl.ExactMatch("country"),
        ],
        # candidate pairs grow with the square of the largest block: only tight rules here
        # (a shared phone, the same name words in one country — in one region too where that block
        # is large: records.with_name_block —, one account id on both sides)
        blocking_rules_to_generate_predictions=[
            block_on("phone_e164"),
            block_on("name_block"),
            block_on("account_id"),
        ],
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=["account_id", "side", "surname_core", "name_block"],
    )


EXACT_COLUMNS = ("phone_e164", "region", "country")
# the blocking rules of `_settings` whose pairs may be deterministic links (a shared phone, one account id)
DETERMINISTIC_BLOCKS = ('l."phone_e164" = r."phone_e164"', 'l."account_id" = r."account_id"')   # the ExactMatch comparisons of `_settings`


def exact_u(engine: Engine, records: ir.Table, columns: tuple[str, ...]) -> dict[str, float]:
    """For each column: the share of pairs of records (both values known) that agree,
    Σ n_v (n_v − 1) / (M (M − 1)), computed in the engine. Columns where no pair, or every pair,
    agrees are left out (the share 0 or 1 carries no information, and Splink refuses a u of 0)."""
    out: dict[str, float] = {}
    for col in columns:
        g = records.filter(records[col].notnull()).group_by(col).aggregate(n=ibis._.count())
        agg = engine.fetch(g.aggregate(m=g.n.sum(), same=(g.n * (g.n - 1)).sum()))
        m, same = agg["m"].iloc[0], agg["same"].iloc[0]
        if m is not None and m == m and m > 1 and same and same == same:
            share = float(same) / (float(m) * (float(m) - 1.0))
            if 0.0 < share < 1.0:
                out[col] = share
    return out


def _with_exact_u(model: dict[str, Any], u: dict[str, float]) -> dict[str, Any]:
    """The Splink model with the u probabilities of the exact-match comparisons in `u` replaced:
    the first non-null level (exact match) gets u, the last (all other) 1 − u."""
    for comp in model.get("comparisons", []):
        name = comp.get("output_column_name")
        if name not in u:
            continue
        levels = [lv for lv in comp.get("comparison_levels", []) if not lv.get("is_null_level")]
        if len(levels) == 2:
            levels[0]["u_probability"] = u[name]
            levels[1]["u_probability"] = 1.0 - u[name]
    return model


# records per chunk side when Splink scores the candidate pairs (predict): k × k chunks for
# k = ⌈records / PREDICT_CHUNK_RECORDS⌉. It bounds temporary disk, not a detection threshold; the
# 10M world (1.6M records) is one chunk, the 100M world (16.2M records) 5 × 5
PREDICT_CHUNK_RECORDS = 4_000_000


def predict_chunks(n_records: int, per_chunk: int | None = None) -> int:
    """Chunks per side for Splink's predict (1 = unchunked)."""
    return max(1, -(-int(n_records) // (per_chunk or PREDICT_CHUNK_RECORDS)))


def _root_line(exc: BaseException) -> str:
    """The first line of the innermost error `exc` was raised from (Splink's own first line is only
    "Error executing the following sql for table …")."""
    last = error_chain(exc)[-1]
    text = str(last).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(last).__name__


def _db_api(engine: Engine):
    if engine.kind == "duckdb":
        from splink import DuckDBAPI

        return DuckDBAPI(connection=engine.duckdb)
    from splink import SparkAPI  # pragma: no cover - needs the spark engine

    session = engine.spark
    # "persist": intermediate tables stay in Spark memory, no checkpoint directory needed
    return SparkAPI(spark_session=session, break_lineage_method="persist")


def _native(engine: Engine, table: ir.Table):
    """The engine's own handle on a materialized table (Splink cannot introspect DuckDB temp
    tables by name)."""
    return engine.native(table)


def run_splink(engine: Engine, records: ir.Table, config: EntitiesConfig, *, progress: bool = False) -> SplinkRun:
    """Train a Splink model on `records` (EM) and return the predictions and the clusters."""
    from splink import Linker, block_on

    logging.getLogger("splink").setLevel(logging.INFO if progress else logging.ERROR)
    db_api = _db_api(engine)
    sdf = db_api.register(_native(engine, records))
    notes: list[str] = []
    trained = True

    def train(what: str, step) -> None:
        nonlocal trained
        try:
            step()
        except Exception as exc:  # too few pairs in a small or name-less file: say so, link deterministically only
            trained = False
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            notes.append(f"{what} skipped: {first}")

    try:
        linker = Linker(sdf, _settings(config), log_level=None)
    except Exception as exc:
        raise LinkageError(f"entity resolution could not set up Splink: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    # prior: share of pairs matched by strict deterministic rules, corrected by their recall
    train("prior (λ) estimation", lambda: linker.training.estimate_probability_two_random_records_match(
        [block_on("phone_e164", "name_norm"), block_on("name_norm", "country", "region")],
        recall=config.prior_recall,
    ))
    # u from all u_max_pairs random pairs: Splink's early stop (min_count_per_level) can settle on a
    # few dozen records of one chunk, and then u(country) came out 0.32-0.47 for a true 0.28
    train("u estimation", lambda: linker.training.estimate_u_using_random_sampling(
        max_pairs=config.u_max_pairs, seed=config.seed, min_count_per_level=config.u_min_count_per_level or None))
    if config.u_exact_for_exact_matches and trained:
        # the exact-match comparisons (phone, region, country): u is the share of record pairs that
        # agree, counted over all records (no sampling noise). A shared phone is so rare (u ≈ 1e-6)
        # that a sample of 1e6 pairs may hold none, and Splink then falls back to a default u.
        linker = Linker(sdf, _with_exact_u(linker.misc.save_model_to_json(), exact_u(engine, records, EXACT_COLUMNS)),
                        log_level=None)
    # m by EM: once blocked on phone (learns name/region/country), once on name words and country
    # (learns phone and region; without the country EM took "same country" for the match signal)
    train("EM on phone blocks", lambda: linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("phone_e164"), max_pairs=config.u_max_pairs
    ))
    # (on the whole name blocks, sampled to u_max_pairs pairs, not on `name_block`: Splink leaves out
    # of an EM session the comparisons whose columns its blocking rule names; blocked on the derived
    # key it also estimated m of the name and country from pairs that all agree on them, and at 10M
    # transfers the link precision fell from 0.950 to 0.870-0.915; docs/entities.md, Blocking)
    train("EM on name blocks", lambda: linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("name_sig", "country"), max_pairs=config.u_max_pairs
    ))
    model = linker.misc.save_model_to_json()
    if not model.get("probability_two_random_records_match"):
        trained = False
        notes.append("no pair matched the strict rules: the prior match rate is unknown")
    if not trained:
        notes.append("probabilistic links disabled: only deterministic links (same phone, compatible names) are made")
        model["probability_two_random_records_match"] = model.get("probability_two_random_records_match") or 1e-9
        linker = Linker(sdf, model, log_level=None)
    # the candidate pairs are scored in chunks (left × right hash classes of the records) when the
    # records are many: unchunked, the 100M world's 157 million pairs took the temporary disk past 67 GB
    k = predict_chunks(engine.count(records))
    chunks = {"num_chunks_left": k, "num_chunks_right": k} if k > 1 else {}
    try:
        pred = linker.inference.predict(threshold_match_probability=None if not trained else config.predict_threshold,
                                        **chunks)
        preds = engine.con.table(pred.physical_name)
        if trained and config.deterministic_before_threshold:
            # the deterministic links (same phone and compatible names; one account id on both sides)
            # are made whatever Splink's own probability: the candidate pairs of those two blocking
            # rules are all predicted (few: a phone is on max_accounts_per_phone records at most), and
            # predict_threshold is applied to them after the deterministic rule, below. Predicting
            # every pair of the name blocks too would grow with the square of the largest name block.
            det_model = linker.misc.save_model_to_json()
            det_model["blocking_rules_to_generate_predictions"] = [
                r for r in det_model.get("blocking_rules_to_generate_predictions", [])
                if str(r.get("blocking_rule", r) if isinstance(r, dict) else r) in DETERMINISTIC_BLOCKS]
            det_pred = Linker(sdf, det_model, log_level=None).inference.predict(threshold_match_probability=None, **chunks)
            extra = engine.con.table(det_pred.physical_name)
            extra = extra.anti_join(preds, ["unique_id_l", "unique_id_r"]).select(*preds.columns)
            preds = preds.union(extra)
    except Exception as exc:  # Splink raises many types; one line for the user
        raise LinkageError(f"entity resolution failed in Splink: {_root_line(exc)}") from exc
    # Splink leaves out comparisons it could not use (e.g. a column that is NULL throughout):
    # put their columns back as "no information"
    fill: dict[str, Any] = {}
    for col, kind in (("name_norm", "string"), ("phone_e164", "string"), ("region", "string"), ("country", "string"),
                      ("given_tokens", "array<string>")):
        for end in ("_l", "_r"):
            if col + end not in preds.columns:
                fill[col + end] = ibis.null(kind)
    for g in ("gamma_name", "gamma_phone_e164", "gamma_region", "gamma_country"):
        if g not in preds.columns:
            fill[g] = ibis.literal(-1)
    if fill:
        preds = preds.mutate(**fill)

    # deterministic links: same E.164 phone and compatible names → probability 1
    same_account = preds.account_id_l == preds.account_id_r
    # veto: two known names whose given names disagree (no shared given name or initial) are never the
    # same person, whatever the phone and region say: they are relatives (households), not one holder
    # (same surname and initial counts only when one side has no full given name: "J. Smith")
    both_given = preds.given_tokens_l.notnull() & preds.given_tokens_r.notnull()
    veto = (
        (preds.gamma_name >= 0)
        & ((preds.gamma_name <= name_gamma("jw_low")) | ((preds.gamma_name == name_gamma("initial")) & both_given))
        & ~same_account
    )
    det = (preds.gamma_phone_e164 == 1) & (preds.gamma_name >= name_gamma("initial")) & ~veto
    if not config.deterministic_phone_links:
        det = ibis.literal(False)
    preds = preds.mutate(
        splink_probability=preds.match_probability,
        deterministic=det | same_account,
        name_veto=veto,
        match_probability=ibis.ifelse(
            det | same_account, 1.0, ibis.ifelse(veto | ibis.literal(not trained), 0.0, preds.match_probability)
        ),
    )
    if trained and config.deterministic_before_threshold:
        preds = preds.filter(preds.deterministic | (preds.splink_probability >= config.predict_threshold))
    preds = engine.materialize(preds)
    edges = db_api.register(_native(engine, preds))
    from splink.clustering import cluster_pairwise_predictions_at_threshold

    cc = cluster_pairwise_predictions_at_threshold(
        sdf, edges, db_api, node_id_column_name="unique_id",
        threshold_match_probability=config.match_threshold,
    )
    clusters = engine.con.table(cc.physical_name).select("unique_id", "cluster_id")
    return SplinkRun(predictions=preds, clusters=engine.materialize(clusters), parameters=linker.misc.save_model_to_json(),
                     notes=notes)
