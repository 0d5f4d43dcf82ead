"""The paper's studies, RQ1–RQ5, and the energy study: moved to ``dac4rec_lite.experiments`` (runs and
methods in ``experiments.methods``, the studies in ``experiments.studies``, saved results in
``experiments.results``, paired intervals in ``experiments.paired``, the paper's numbers and claims in
``experiments.claims``). This module keeps the old import path ``dac4rec_lite.studies`` working."""
from .experiments.claims import (PAPER_PROSE, PAPER_RQ1_BASELINES, VERDICTS, check_claims, claims_summary,
                                 compare_claims, paper_table)
from .experiments.methods import (BEHAVIOUR_LOGS, METHOD_BATCH_SIZE, METHODS, METRICS, STUDY_SETTINGS, EnergyRun,
                                  Run, batch_size_for, build_agent, execute_run)
from .experiments.paired import paired_contrast, paired_differences
from .experiments.results import format_summary, format_table, load_or_run, load_saved
from .experiments.studies import (ENERGY_METHODS, ENERGY_SCALES, RQ1_METHODS, RQ2_METHODS, RQ4_METHODS, RQ5_METHODS,
                                  STUDIES, bucket_runs, energy, energy_runs_long, energy_summary, energy_table, rq1, rq2, rq3, rq4,
                                  rq5, run_study, summarise_runs)

__all__ = ["STUDIES", "STUDY_SETTINGS", "METHODS", "METHOD_BATCH_SIZE", "METRICS", "BEHAVIOUR_LOGS", "batch_size_for",
           "Run", "EnergyRun", "execute_run", "run_study", "rq1", "rq2", "rq3", "rq4", "rq5", "energy",
           "RQ1_METHODS", "RQ2_METHODS", "RQ4_METHODS", "RQ5_METHODS", "ENERGY_METHODS", "ENERGY_SCALES",
           "summarise_runs", "bucket_runs", "energy_runs_long", "energy_table", "energy_summary", "format_table", "build_agent",
           "load_saved", "load_or_run", "paper_table", "PAPER_PROSE", "PAPER_RQ1_BASELINES", "VERDICTS",
           "check_claims", "compare_claims", "claims_summary", "format_summary", "paired_differences",
           "paired_contrast"]
