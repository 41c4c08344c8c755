"""The ``seq-export`` operator command line (Click and Rich): run and backfill the export of every
source, check days, look up scores, move a lake from before sources, against a deployed stack or
the local one. Installed beside the function, never in its zip.

``main`` builds the command group and maps failures to exit codes (``errors``); ``options`` holds
the argument types and the shared options; ``app`` resolves where commands point (and which
sources the stack has) and holds the AWS clients; ``output`` prints the answer (JSON, Rich
tables, plain lines) and progress; ``run``, ``backfill``, ``status``, ``report``, ``sources``,
``scores`` (lookup, low-scores) and ``migrate`` (migrate-lake) are the commands; ``waiting``
follows queued days until exported; ``invoke`` calls the function, deployed or in this process;
``s3_objects`` reads days and sources from S3.
"""
