"""Jobs: each long command (build, train, sweep, evaluate, predict, fetch, export, quantize) as a typed spec.

A spec (:mod:`eoengine.jobs.specs`) holds what the command's flags hold and serialises to JSON,
so a job runner can store it and run it again; :func:`eoengine.jobs.run.run_spec` runs one
in-process and returns a small typed result (:mod:`eoengine.jobs.results`). This layer sits
above every stage and below the adapters: the CLI builds specs from its flags and runs them here.
"""
