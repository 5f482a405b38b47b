"""The training service."""
