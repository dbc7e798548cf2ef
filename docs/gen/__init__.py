"""The documentation pages that list what the code holds, generated from it so that they cannot drift.

    python -m docs.gen            # write every generated page and README.md's methods table
    python -m docs.gen --check    # exit 1, naming them, when a committed page is not what the code gives

Generated: one page per built-in method (``docs/methods/<name>.md``: its module docstring, its config's
fields and defaults, its capability flags, its benchmark rows), the methods overview
(``docs/methods/index.md``), the methods table of README.md (between ``<!-- methods-table -->``
markers), and the roles a plugin's method can target (``docs/plugins/roles.md``, :mod:`docs.gen.roles`). The figures come from the committed benchmark records, ``benchmarks/results/default_task/RESULTS.md``
and ``benchmarks/RESULTS.md``. The family tables of docs/models.md and docs/peft-bridge.md come from the contract
tests instead: ``python -m benchmarks.family_table``.
"""
