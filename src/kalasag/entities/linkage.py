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

from kalasag.engine import Engine
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
        # (a shared phone, the same name words in one country, one account id on both sides)
        blocking_rules_to_generate_predictions=[
            block_on("phone_e164"),
            block_on("name_sig", "country"),
            block_on("account_id"),
        ],
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
        additional_columns_to_retain=["account_id", "side", "surname_core"],
    )


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
    # m by EM: once blocked on phone (learns name/region/country), once on name words and country
    # (learns phone and region; without the country EM took "same country" for the match signal)
    train("EM on phone blocks", lambda: linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("phone_e164"), max_pairs=config.u_max_pairs
    ))
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
    try:
        pred = linker.inference.predict(threshold_match_probability=None if not trained else config.predict_threshold)
    except Exception as exc:  # Splink raises many types; one line for the user
        raise LinkageError(f"entity resolution failed in Splink: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    preds = engine.con.table(pred.physical_name)
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
