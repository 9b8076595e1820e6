"""The HTTP model server (``eoengine serve``)."""
