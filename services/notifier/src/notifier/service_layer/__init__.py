"""Use cases of the notifier service: async handlers taking a command or event and their ports."""
