"""Annotation: sets of block-grid tasks, versioned label features, review, and their import and export."""
