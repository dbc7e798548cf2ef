"""Third-party log lines that say nothing to a zoo user, quieted when zoo is imported.

bitsandbytes (installed with galore-torch or the ``gpu`` extra) logs on every CPU run that it could not fetch a 4-bit
kernel from the model hub, and the ``kernels`` package it asks logs, offline, that it skipped the publisher check. zoo
quantizes on CUDA only (zoo.models.quantization), so on a CPU these lines are noise in every command, and they would
come before a user error's one line. Their errors still show.
"""

from __future__ import annotations

import logging

for _name in ("bitsandbytes.backends.cpu.ops", "kernels._internals.hf_hub"):
    logging.getLogger(_name).setLevel(logging.ERROR)
