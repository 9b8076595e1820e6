"""Your project's own components, imported by dotted path from the config.

For example ``extensions.models.SmallUNet``: the config's folder is on the import path.
"""
