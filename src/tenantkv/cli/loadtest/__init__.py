"""``tenantkv loadtest``: proof that enumeration does not block the server.

The pieces, in the order a run uses them:

- :mod:`.config`: the validated options (sizes, strategies, counts, paths);
- :mod:`.servers`: private, throwaway servers and clusters (no ``--url``);
- :mod:`.target`: the Redis under test (a private server, or ``--url`` with
  its safety checks and cleanup);
- :mod:`.dataset`: transaction-shaped keys, and a bitmap that checks a
  listing found each of them exactly once;
- :mod:`.seed`: pipelined seeding with a progress bar;
- :mod:`.probe`: the open-loop GET probe in its own process;
- :mod:`.slowlog`: the server's own view of its longest command;
- :mod:`.strategies`: what is measured (KEYS, SCAN, index, scan_iter, clears);
- :mod:`.runner`: one scenario per size, every strategy on the same data;
- :mod:`.results` and :mod:`.report`: the figures, as a table, JSON and a chart.

Nothing is imported here, so that a module needing one piece (the command
line's error reporting needs :mod:`.servers`) does not load them all.
"""
