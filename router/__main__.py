"""`python -m router --index N --listen-fd FD --control-fd FD`: a worker process.

The supervisor coordinates reload (SIGHUP) and stop (SIGINT, SIGTERM) and tells its workers over
the control channel, so a worker ignores SIGHUP and SIGINT: a `pkill -HUP routerd`, a terminal's
hangup or Ctrl-C, or a signal to the whole process group must not kill it. The supervisor
starts it with both blocked (supervisor/worker_process.py); here, before anything else is
imported, they become ignored, which also discards any that arrived during start-up, and only
then are they unblocked.
"""

import signal

for signum in (signal.SIGHUP, signal.SIGINT):
    signal.signal(signum, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP, signal.SIGINT})

from router.worker import main  # noqa: E402 - only once the signals are ignored

main()
