"""Contracts every TuneFlow service shares: settings, storage, queue, schemas, database and model kit."""
