"""The stateless HTTP apps (adapters), which import the pipeline stages and are imported by none.

The model server (``eoengine serve``: ``app.py``, its routers in ``routes/``), the STAC API
with its fetch jobs (``eoengine source serve``: ``stac_api.py``, ``fetch_jobs.py``), their
one API-key check (``auth.py``) and their one error mapper (``errors.py``).
"""
