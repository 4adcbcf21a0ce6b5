"""``copyguard daemon``: every stage on its schedule, around the clock (APScheduler 3.11).

- :mod:`monitor.daemon.jobs`: one function per stage, run by the scheduler from its job store,
  each run recorded (``stage_runs``) with backoff after a failure;
- :mod:`monitor.daemon.scheduler`: the scheduler, its job store in the ledger database, and
  the jobs kept in line with the targets and settings;
- :mod:`monitor.daemon.leader`: one scheduler per ledger (a file lock on SQLite, an advisory
  lock on PostgreSQL);
- :mod:`monitor.daemon.run`: start-up, signals, heartbeat and a bounded shutdown.
"""
