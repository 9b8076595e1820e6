"""Subscriptions: an area × a model × a schedule; each run maps the new imagery, measures it, compares it and notifies."""
