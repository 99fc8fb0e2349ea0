"""Use cases of the crm service: async handlers taking a command or event and their ports."""
