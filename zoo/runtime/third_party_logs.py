"""Third-party log lines that say nothing to a zoo user, quieted when zoo is imported.

bitsandbytes (installed with galore-torch or the ``gpu`` extra) logs on every CPU run that it could not fetch a 4-bit
kernel from the model hub. zoo quantizes on CUDA only (zoo.models.quantization), so on a CPU that line is noise in every
command, and it would come before a user error's one line. Its errors still show.
"""

from __future__ import annotations

import logging

logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
