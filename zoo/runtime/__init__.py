"""Runtime services every layer may use: atomic writes, cache locks and manifests, CPU threads, processes, memory."""
