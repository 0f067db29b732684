"""`edgekit optimize`: an accuracy-budgeted search over students, precisions and engines.

``space`` lists the candidates, ``trials`` runs one ``convert`` per candidate model (cached on
disk by its inputs), ``executor`` runs trials here or on a cluster (``ray_executor``), ``search``
orders and prunes them and measures the survivors together, ``pareto`` picks the front and the
recommendation, ``report`` writes optimize.json/.md, report.html and ``recommended/``.
"""
