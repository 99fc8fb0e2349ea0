"""Use cases of the ingest service: async handlers taking a command or event and their ports."""
