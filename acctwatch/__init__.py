"""acctwatch: find and stop compromised mail accounts from Postfix and Dovecot logs.

The pipeline, in the order the data flows (one module per stage):

    sources/    -> lines from files (plain, compressed, followed) and journald
    headers.py  -> framing of each line (syslog, RFC3339, journald JSON, ...)
    parsing.py  -> typed events (events.py), driven by the data in patterns/*.toml
    geo.py      -> enrichment: country, city, ASN of each client IP
    detectors/  -> sliding-window detectors, pure functions of the event stream
    incidents   -> deduplicated findings with evidence (engine.py)
    actions/    -> lockers and notifiers
    store.py    -> the one SQL store (SQLAlchemy)
    cli/        -> the click command line, a thin layer over the above
"""

__version__ = "0.1.0"
