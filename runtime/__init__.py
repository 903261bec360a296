"""What both routerd processes run with: the config model, component logs, TLS contexts, the
control and hand-off channels between supervisor and workers, GC tuning and log rate limits.

router/ (the workers) and supervisor/ both import this package; neither imports the other.
"""
