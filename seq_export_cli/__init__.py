"""The ``seq-export`` operator command line: run and backfill the export, look up scores, check
days, against a deployed stack or the local one. Installed beside the function, never in its zip.

``main`` parses and dispatches; ``app`` resolves where commands point and holds the AWS clients;
``commands`` (run, backfill, status) and ``scores`` (lookup, low-scores) are the commands;
``waiting`` follows a backfill until its days are exported; ``invoke`` calls the function,
deployed or in this process; ``errors`` maps failures to one line and an exit code.
"""
