"""Use cases of the analytics service: async handlers taking a command or event and their ports."""
