"""Annotation in the browser: label sets on the block grid, tasks, versioned label features and their review.

- :mod:`.grid`: a set's block grid (the blocks of ``dataset.split: blocks``) and its cells;
- :mod:`.checks`: the checks every label feature passes before it is stored (drawn or imported);
- :mod:`.store`: the writes of sets, tasks, features and comments, each with its event;
- :mod:`.schemas`: the API's request and response bodies.
"""
