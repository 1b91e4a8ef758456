"""Start buildpack processes: the Runner seam and the CNB executor over it."""
