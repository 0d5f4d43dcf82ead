"""Experiments: the paper's studies and the machinery that runs and reads them.

* ``methods``  what a study trains (``METHODS``, ``build_agent``) and one run → one flat row (``execute_run``)
* ``studies``  RQ1–RQ5 and the energy study, each a function returning a DataFrame
* ``runner``   ``execute``: runs on local processes or a Ray cluster, resumable run tables
* ``paired``   paired differences over seeds with Student-t intervals; the verdict vocabulary
* ``claims``   the paper's numbers (Tables 1–4) and claims, checked with paired intervals
* ``results``  saved results (``results/<preset>``) read back; tables as ``mean ± std``
* ``energy_diagnosis``  why guidance lowers the return on RecSim-v0: the critic's Q, f_ψ's quality, fatigue
  drivers and distance from the data at each guidance scale (``diagnose_guidance``; notebook 07)
* ``guidance`` energy-guided sampling on the corner bandit (notebook 05; notebook 07's contrast)
* ``analysis`` data behind the notebooks' figures (approximation errors, critic grids, …)
* ``timing``   what updates and samplers cost on this machine
"""
