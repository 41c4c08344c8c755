"""The ``seq-export`` operator command line (Click and Rich): run and backfill the export, check
days, look up scores, against a deployed stack or the local one. Installed beside the function,
never in its zip.

``main`` builds the command group and maps failures to exit codes (``errors``); ``options`` holds
the argument types and the shared options; ``app`` resolves where commands point and holds the
AWS clients; ``output`` prints the answer (JSON, Rich tables, plain lines) and progress; ``run``,
``backfill``, ``status`` and ``scores`` (lookup, low-scores) are the commands; ``waiting``
follows queued days until exported; ``invoke`` calls the function, deployed or in this process;
``s3_objects`` reads days from S3.
"""
