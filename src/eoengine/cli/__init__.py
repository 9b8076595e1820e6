"""The command line: ``eoengine`` and its sub-commands, each a thin layer over the stages."""
