"""The `tuneflow` command line: the composition root that wires services, workers and the demo."""
