"""The eoengine platform server: projects, people, roles, jobs, lineage and the web app, over one database.

``eoengine server init`` makes the database (SQLite under the server's home by default, or
PostgreSQL with ``--db``) and the first admin; ``eoengine server run`` serves the API under
``/api/v1`` and the web app at ``/``, and starts one worker; ``eoengine worker`` adds more.
Artefacts stay in the project folders, in the formats the CLI writes; the database indexes them.
"""
